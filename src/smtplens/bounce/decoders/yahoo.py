"""Yahoo Mail's plain-text bounces ("Failure Notice" from ``MAILER-DAEMON@yahoo...``).

A qmail-like letter: "Sorry, we were unable to deliver your message to the following address." and then, per
recipient, the address in angle brackets followed by a colon on a line of its own and the explanation on the
next lines: the remote server's reply ("Remote host said: 550 5.1.1 <...>... User Unknown [RCPT_TO]", the
reply sometimes on the next line, or a bare "550: 5.2.2 ... Mailbox Full", the reply code and a colon before the
rest of the reply, read as the reply "550 5.2.2 ... Mailbox Full"), or Yahoo's own words ("Unable to deliver
message after multiple retries, giving up."). A bracketed tag names the SMTP command the reply answered
(``[RCPT_TO]``, ``[MAIL_FROM]``, ``[DATA]``). "--- Below this line is a copy of the message." ends the report.

Yahoo's newer notice (its consumer mail, HTML or text, without a subject at times) has no recipient blocks: "I'm
afraid I wasn't able to deliver the following message. This is a permanent error; I've given up." and a summary
of the message ("Subject: …", "To: …") before the copy; the summary's To addresses are the recipients.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, sections
from smtplens.bounce.mime import Mail, addresses
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["decode", "detect", "name"]

name = "yahoo"

_START = re.compile(r"Sorry, we were unable to deliver your message to the following address(?:es)?\.?", re.I)
_GIVEN_UP = re.compile(r"I'm afraid I wasn't able to deliver the following message\.", re.I)
_SUMMARY_TO = re.compile(r"^To:[ \t]*(\S[^\n]*)$", re.I | re.M)
_END = re.compile(r"^-{2,}[ \t]*Below this line is a copy of the message", re.I | re.M)
_RECIPIENT = re.compile(r"^[ \t]*<([^\s<>@]+@[^\s<>]+)>:?[ \t]*$", re.M)
_REMOTE_SAID = re.compile(r"^\s*Remote host said:\s*", re.I)
_CODE_COLON = re.compile(r"^([2-5][0-9][0-9]): ")  # Yahoo's "550: TEXT" for the remote reply "550 TEXT"
_TAG = re.compile(r"\[(RCPT_TO|MAIL_FROM|DATA|CONNECT|HELO|EHLO|STARTTLS|AUTH)\]\s*$", re.I)
_STAGES = {
    "rcpt_to": Stage.RCPT,
    "mail_from": Stage.MAIL,
    "data": Stage.DATA,
    "connect": Stage.CONNECT,
    "helo": Stage.HELO,
    "ehlo": Stage.HELO,
    "starttls": Stage.STARTTLS,
    "auth": Stage.AUTH,
}
MAX_TEXT = 200_000
_SENDER = "mailer-daemon@yahoo.com"


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("failure notice", _SENDER)
# ... and unless one of these is in its readable text (dispatch.py)
TEXT_GATE = (
    "sorry, we were unable to deliver your message to the following address",
    "i'm afraid i wasn't able to deliver the following message.",
)


def detect(mail: Mail) -> bool:
    if "failure notice" in mail.lowered("subject"):
        return _START.search(mail.text[:MAX_TEXT]) is not None
    return _SENDER in mail.lowered("from") and _GIVEN_UP.search(mail.text[:MAX_TEXT]) is not None


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    start = _START.search(text)
    if start is None:
        return _given_up(mail, text)
    end = _END.search(text, start.end())
    report = text[start.end() : end.start() if end else len(text)]
    findings = []
    for m, stop in sections(_RECIPIENT, report):
        diagnostic = _CODE_COLON.sub(r"\1 ", " ".join(_REMOTE_SAID.sub("", report[m.end() : stop]).split()))
        stage = None
        tag = _TAG.search(diagnostic)
        if tag:
            stage = _STAGES.get(tag.group(1).lower())
            diagnostic = diagnostic[: tag.start()].strip()
        findings.append(
            Finding(
                recipient=m.group(1),
                action=Action.FAILED,
                diagnostic=diagnostic or None,
                stage=stage,
            )
        )
    return findings


def _given_up(mail: Mail, text: str) -> list[Finding]:
    """Yahoo's newer notice: the recipients are the To addresses of the message summary before the copy."""
    given_up = _GIVEN_UP.search(text)
    if given_up is None:
        return []
    end = _END.search(text, given_up.end())
    summary = text[given_up.end() : end.start() if end else len(text)]
    to = _SUMMARY_TO.search(summary)
    if to is None:
        return []
    explanation = summary[: to.start()].split("\n\n", 1)[0]
    diagnostic = " ".join(explanation.split()) or None
    return [
        Finding(recipient=address, action=Action.FAILED, diagnostic=diagnostic)
        for address in addresses(to.group(1))[:MAX_RECIPIENTS]
    ]
