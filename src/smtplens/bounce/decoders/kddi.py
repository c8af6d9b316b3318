"""KDDI's au one net mail (``dion.ne.jp``, ``auone-net.jp``) error notices.

Sent from ``no-reply@….dion.ne.jp`` with ``Reply-To: no-reply@app.auone-net.jp``, as a ``multipart/mixed``
whose first part is the notice (sometimes a Japanese paragraph first) and the second the returned message.
The notice names each recipient on a line ``Could not be delivered to: <address>``, after ``Your mail sent on:
<date>`` (or ``Your mail attempted to be delivered on: <date>``), and explains on the following indented lines
("As their mailbox is full.", "As the remote domain doesnt exist.", "Due to the following SMTP relay error." and
the remote reply). The same notice may come from another address through the carrier's relays, which name
themselves in their Received fields ("by lsean.ezweb.ne.jp (EZweb Mail)"); ``X-SPASIGN: NG`` marks a mail the
carrier's filter refused.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address, parse_date
from smtplens.bounce.decoders.ezweb import FILTERED, filter_marked
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "kddi"

_DOMAINS = ("dion.ne.jp", "auone-net.jp")
_RECIPIENT = re.compile(r"^\s*Could not be delivered to:\s*<?([^\s<>\"]+@[^\s<>\"]+?)>?\s*$", re.I)
_SENT_ON = re.compile(r"^\s*Your mail (?:sent on|attempted to be delivered on):\s*(.+?)\s*$", re.I)
MAX_TEXT = 100_000


# The carrier's relays name themselves in the Received fields they add: "by lsean.ezweb.ne.jp (EZweb Mail)"
_RELAYS = ("ezweb.ne.jp (", ".au.com (")

# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = (*_DOMAINS, "no-reply@", "ezweb.ne.jp", ".au.com")


def detect(mail: Mail) -> bool:
    headers = mail.headers
    for field in ("from", "reply-to"):
        value = headers.get(field)
        if value and any(domain in value.lower() for domain in _DOMAINS):
            return True
    # the same notice relayed from another of the carrier's domains (au.com), or sent from another address through
    # the carrier's relays: its own recipient line decides
    if "no-reply@" not in mail.lowered("from") and not any(mail.in_header(relay) for relay in _RELAYS):
        return False
    return "could not be delivered to: <" in mail.head(3000)


def decode(mail: Mail) -> list[Finding]:
    findings: list[Finding] = []
    sent_on = None
    explaining = False
    for line in mail.text[:MAX_TEXT].split("\n"):
        date = _SENT_ON.match(line)
        if date is not None:
            sent_on = parse_date(date.group(1))
            explaining = False
            continue
        m = _RECIPIENT.match(line)
        if m is not None:
            address = clean_address(m.group(1))
            if address is not None and len(findings) <= MAX_RECIPIENTS:
                findings.append(Finding(recipient=address, action=Action.FAILED, timestamp=sent_on))
                explaining = True
            continue
        if not explaining:
            continue
        if not line.strip():
            explaining = False
            continue
        last = findings[-1]
        last.diagnostic = f"{last.diagnostic} {line.strip()}" if last.diagnostic else line.strip()
    if filter_marked(mail):  # the carrier's mark of a mail its filter refused, as on its EZweb notices
        for finding in findings:
            finding.reason = FILTERED
    return findings
