"""Bounces of an unidentified qmail-like MTA (Sisimai's "X2").

A plain-text mail from ``MAILER-DAEMON@domain`` with a short subject ("Delivery failure", "failed delivery",
"failure delivery", "Permanent Delivery Failure"). The body opens "Message from DOMAIN." and "Unable to deliver
message to the following address(es).", then, as qmail writes them, one paragraph per recipient: the address
alone on a line as ``<address>:`` and the account of the failure below it (the remote reply, or the MTA's own
words with a status such as ``[#4.1.9]`` or ``(#4.4.1)``, and "I'm not going to try again; this message has
been in the queue too long." when it gave up). The line "--- Original message follows." ends the report.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders.qmail import read_paragraphs
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Finding

__all__ = ["decode", "detect", "name"]

name = "x2"

_SUBJECTS = ("delivery failure", "failure delivery", "failed delivery", "permanent delivery failure")
_START = re.compile(r"^Unable to deliver message to the following address(?:\(es\)|es)?\.?[ \t]*$", re.M | re.I)
_FROM_DOMAIN = re.compile(r"^Message from[ \t]+([\w.-]+?)\.?[ \t]*$", re.M | re.I)
MAX_BODY = 200_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mailer-daemon@", *_SUBJECTS)
# ... and unless this is in its readable text (dispatch.py)
TEXT_GATE = ("unable to deliver message to the following address",)


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    subject = mail.lowered("subject").strip()
    if "mailer-daemon@" not in sender and not subject.startswith(_SUBJECTS):
        return False
    return "unable to deliver message to the following address" in mail.head(2000)


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_BODY]
    start = _START.search(text)
    if start is None:
        return []
    origin = _FROM_DOMAIN.search(text, 0, start.start())
    return read_paragraphs(mail, text, start.end(), origin.group(1) if origin else None)
