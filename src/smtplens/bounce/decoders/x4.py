"""Bounces of an unidentified qmail-based MTA (Sisimai's "X4"): qmail's paragraphs without qmail's greeting.

A plain-text mail from ``MAILER-DAEMON@host`` with the subject "failure notice". Instead of qmail-send's "Hi.
This is the qmail-send program at HOST." the body opens with the provider's own sentences ("Your mail message to
the following address(es) could not be delivered. This is a permanent error. …"); then, as qmail writes them,
one paragraph per recipient: ``<address>:`` alone on a line and the account below it (for a local delivery the
exit status of the delivery program, "child status 100...", and its message). "--- Below this line is a copy of
the message." ends the report.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders.qmail import read_paragraphs
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Finding

__all__ = ["decode", "detect", "name"]

name = "x4"

_START = re.compile(r"following address(?:\(es\)|es)?\b[^\n]*?(?:could not be delivered|delivery failed)", re.I)
_SENDER = re.compile(r"mailer-daemon@([\w.-]+)", re.I)
MAX_BODY = 200_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mailer-daemon",)


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    if "mailer-daemon" not in sender:
        return False
    if mail.lowered("subject").strip() != "failure notice":
        return False
    head = mail.head(2000)
    return "qmail-send program" not in head and _START.search(head) is not None


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_BODY]
    start = _START.search(text, 0, 2000)
    if start is None:
        return []
    host = _SENDER.search(mail.headers.get("from") or "")
    return read_paragraphs(mail, text, start.end(), host.group(1) if host else None)
