"""Verizon Wireless MMS gateway (``vzwpix.com``) non-delivery notices.

Sent by ``MMSC NDR Administrator <sysadmin@….vzwpix.com>`` with the subject ``Undeliverable Message``: the text
part says ``Message could not be delivered to mobile.`` and ``Error: <reason>``, then quotes the original under
``Original Message:`` with its ``To:`` line, the only place the recipient is named.

The SMS gateway (``post_master@vtext.com``) answers in Apache James's layout instead: ``Error: <summary>``,
"Error message below:" and the reply, then "Message details:" whose ``RCPT TO:`` line names the recipient;
those are read as the James decoder reads them.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, apachejames, clean_address
from smtplens.bounce.mime import Mail, addresses
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "verizon"

_ERROR = re.compile(r"^\s*Error:\s*(.+?)\s*$", re.I | re.M)
_ORIGINAL = re.compile(r"^\s*Original Message:\s*$", re.I | re.M)
_TO = re.compile(r"^\s*To:\s*(.+?)\s*$", re.I | re.M)
MAX_TEXT = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("vzwpix.com", "vtext.com")


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    return "vzwpix.com" in sender or "@vtext.com" in sender


def decode(mail: Mail) -> list[Finding]:
    james = apachejames.decode(mail)  # the SMS gateway's layout: recipients only under its "Message details:"
    if james:
        return james
    text = mail.text[:MAX_TEXT]
    original = _ORIGINAL.search(text)
    if original is None:
        return []
    to = _TO.search(text, original.end())
    if to is None:
        return []
    error = _ERROR.search(text, 0, original.start())
    diagnostic = error.group(1) if error else None
    findings: list[Finding] = []
    for value in addresses(to.group(1))[: MAX_RECIPIENTS + 1]:
        address = clean_address(value)
        if address is not None:
            findings.append(Finding(recipient=address, action=Action.FAILED, diagnostic=diagnostic))
    return findings
