"""Mimecast email security gateway delivery-failure alerts.

A plain-text (quoted-printable) mail with the subject ``[Postmaster] Email Delivery Failure``, Mimecast's
headers (``X-Mimecast-Originator``, ``X-MC-System``, a Message-ID at ``….mimecast.lan``; not always kept when
the alert is relayed): ``An email that you attempted to send to the following address could not be
delivered:`` then the address on a line of its own after ``-- ``; ``The problem appears to be :`` and
``Additional information follows :`` each followed by a ``-- `` line (the summary, then the remote server's
reply); and how many attempts were made over how long.
One alert per failed recipient.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "mimecast"

_RECIPIENTS = re.compile(r"following address(?:es)? could not be delivered:\s*\n((?:[ \t]*--[ \t]*\S+\s*\n?)+)", re.I)
_PROBLEM = re.compile(r"The problem appears to be\s*:\s*\n[ \t]*--[ \t]*(.+?)\s*(?:\n[ \t]*\n|\Z)", re.I | re.S)
_MORE = re.compile(r"Additional information follows\s*:\s*\n[ \t]*--[ \t]*(.+?)\s*(?:\n[ \t]*\n|\Z)", re.I | re.S)
MAX_TEXT = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("x-mimecast-originator", "x-mc-system", ".mimecast.", "email delivery failure")
# ... and unless the alert's sentence is in its readable text, or one of its fields in the header (dispatch.py)
TEXT_GATE = (" could not be delivered:",)
HEADER_SIGNS = ("x-mimecast-originator", "x-mc-system", ".mimecast.")


def detect(mail: Mail) -> bool:
    headers = mail.headers
    if "x-mimecast-originator" in headers or "x-mc-system" in headers:
        return True
    if ".mimecast." in mail.lowered("message-id"):
        return True
    # relayed alerts may lose Mimecast's own fields: the subject and the alert's fixed sentence remain
    return "email delivery failure" in mail.lowered("subject") and _RECIPIENTS.search(mail.head(5000)) is not None


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    block = _RECIPIENTS.search(text)
    if block is None:
        return []
    problem = _PROBLEM.search(text, block.end())
    more = _MORE.search(text, block.end())
    parts = [" ".join(m.group(1).split()) for m in (more, problem) if m is not None]
    diagnostic = "; ".join(parts) or None  # the remote reply first: its code is read from the start
    findings: list[Finding] = []
    for line in block.group(1).split("\n"):
        address = clean_address(line.strip().lstrip("-").strip())
        if address is not None and "@" in address and len(findings) <= MAX_RECIPIENTS:
            findings.append(Finding(recipient=address, action=Action.FAILED, diagnostic=diagnostic))
    return findings
