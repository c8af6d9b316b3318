"""Bounces of an unidentified MTA (Sisimai's "X1"): one ``address [reason]`` line per recipient.

Sent by "Mail Deliver(y) System" <MAILER-DAEMON@…> with a subject such as ``Returned Mail: User unknown`` or
``Mail Delivery Failure``, as plain text or as the first part of a ``multipart/mixed``. The body says "The
original message was received at DATE from SENDER", then a line ``---The following addresses had delivery
errors---`` and one line per recipient: the address, a space, and the reason in square brackets
(``kijitora@example.co.jp [User unknown]``). The returned message, when present, follows in the next part.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address, parse_date
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "x1"

_MARKER = re.compile(r"^-{2,}[ \t]*The following addresses had delivery errors[ \t]*-{2,}[ \t]*$", re.M | re.I)
_LINE = re.compile(r"^[ \t]*<?([^\s<>@\[\]]+@[^\s<>\[\]]+?)>?[ \t]+\[([^\]\n]*)\][ \t]*$")
_RECEIVED = re.compile(r"^The original message was received at (.+?)[ \t]*\n(?:from (\S+))?", re.M | re.I)
MAX_BODY = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mailer-daemon", "mail deliver", "returned mail")
# ... and unless this is in its readable text (dispatch.py)
TEXT_GATE = ("---the following addresses had delivery errors---",)


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    subject = mail.lowered("subject")
    if "mailer-daemon" not in sender and "mail deliver" not in sender and not subject.startswith("returned mail"):
        return False
    return "---the following addresses had delivery errors---" in mail.head(5000)


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_BODY]
    marker = _MARKER.search(text)
    if marker is None:
        return []
    received = _RECEIVED.search(text, 0, marker.start())
    timestamp = parse_date(received.group(1)) if received else None
    sender = clean_address(received.group(2)) if received and received.group(2) else None
    findings: list[Finding] = []
    for line in text[marker.end() :].split("\n"):
        if not line.strip():
            if findings:
                break
            continue
        m = _LINE.match(line)
        if m is None:
            break
        recipient = clean_address(m.group(1))
        if recipient is None or len(findings) > MAX_RECIPIENTS:
            continue
        findings.append(
            Finding(
                recipient=recipient,
                action=Action.FAILED,
                diagnostic=" ".join(m.group(2).split()) or None,
                timestamp=timestamp,
                sender=sender,
            )
        )
    return findings
