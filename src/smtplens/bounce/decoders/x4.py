"""Bounces of an unidentified qmail-based MTA (Sisimai's "X4"): qmail's paragraphs without qmail's greeting.

A plain-text mail from ``MAILER-DAEMON@host`` with the subject "failure notice" (some: "Permanent Delivery
Failure"; others any subject, with qmail's trace "Received: (qmail N invoked for bounce)"). Instead of
qmail-send's "Hi. This is the qmail-send program at HOST." the body opens with the provider's own sentences:
"Your mail message to the following address(es) could not be delivered. This is a permanent error. …", "Your
message to the following addresses …", "Unfortunately, your mail was not delivered to the following address:",
"We're sorry. …", "This is the mail delivery agent at HOST.", "This is the machine generated message from mail
service.", "unable to deliver your message to the following addresses", in Spanish "Su mensaje no pudo ser
entregado", or "He/Her is not DOMAIN user, or the mailbox has a problem."; then, as qmail writes them, one
paragraph per recipient: ``<address>:`` (some: ``To:<address>:``) alone on a line and the account below it (for a
local delivery the exit status of the delivery program, "child status 100...", and its message). "--- Below this
line is a copy of the message." ends the report.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders.qmail import read_paragraphs
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Finding

__all__ = ["decode", "detect", "name"]

name = "x4"

_START = re.compile(
    r"following address(?:\(es\)|es)?\b[^\n]*?(?:could not be delivered|delivery failed)"
    r"|Your message to the following address"
    r"|(?:was|were) not delivered to the following address"
    r"|unable to deliver (?:your )?message to the following address"
    r"|^[ \t]*We're sorry\."
    r"|This is the mail delivery agent at\b"
    r"|This is the machine generated message from mail service"
    r"|Su mensaje no pudo ser entregado"
    r"|^[ \t]*He/Her is not \S[^\n]* user\b",
    re.I | re.M,
)
_SUBJECTS = ("failure notice", "permanent delivery failure")
_BOUNCE_TRACE = "invoked for bounce)"
_SENDER = re.compile(r"mailer-daemon@([\w.-]+)", re.I)
MAX_BODY = 200_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mailer-daemon",)
# ... and unless one of these (a piece of each of _START's sentences) is in its readable text (dispatch.py)
TEXT_GATE = (
    "following address",
    "we're sorry.",
    "this is the mail delivery agent at",
    "this is the machine generated message from mail service",
    "su mensaje no pudo ser entregado",
    "he/her is not ",
)


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    if "mailer-daemon" not in sender:
        return False
    # qmail's own trace of a bounce, "Received: (qmail 4711 invoked for bounce)", stands for the subject
    if not mail.lowered("subject").strip().startswith(_SUBJECTS) and not mail.in_header(_BOUNCE_TRACE):
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
