"""Bounces of qmail-send (qmail, netqmail, notqmail, indimail and other qmail descendants).

A plain-text mail from ``MAILER-DAEMON@host``, usually with the subject "failure notice", whose body begins
"Hi. This is the qmail-send program at HOST." and a few fixed sentences ("I'm afraid I wasn't able to deliver
your message to the following addresses. This is a permanent error; …"). Then one paragraph per recipient:
the address alone on a line as ``<address>:``, followed by qmail's account of what happened, quoting the
remote server ("192.0.2.1 does not like recipient. Remote host said: 550 …", "… failed after I sent the
message.", "Connected to 192.0.2.1 but sender was rejected.") or its own local error with a status in the
form ``(#5.1.1)``. A line starting with ``---`` ("--- Below this line is a copy of the message.", "… of the mail
header.", "--- Below the next line is a copy of the message.", indimail's "--- Enclosed is a copy of the
message.") ends the report. Some descendants put the text in the first part of a ``multipart/mixed`` mail, the
message after it as ``message/rfc822``.

Patched qmail-remote programs (netqmail/notqmail with the TLS and AUTH patches, sagredo's qmail) add their own
accounts: "TLS connect failed: …; connected to 192.0.2.1.", "Connected to 192.0.2.1 but authentication was
rejected (AUTH LOGIN).", and some write the envelope in front of the host: "<From:s@example.jp To:r@example.net>
192.0.2.1 does not like recipient.".

:func:`read_paragraphs` reads the recipient paragraphs; other decoders of qmail-like formats reuse it.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address, parse_date
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["decode", "detect", "name", "read_paragraphs"]

name = "qmail"

_INTRO = re.compile(r"^Hi\. This is the (?:qmail-send|qmail) program at ([^\s]+?)\.?[ \t]*$", re.M | re.I)
_RECIPIENT = re.compile(r"^[ \t]*(?:To:[ \t]*)?<([^<>\s]*@?[^<>\s]*)>:[ \t]*$", re.M)  # "To:<a@b>:" in some clones
# "Below this line", "Below the next line" (clones), "Enclosed", "Original message follows", "This is a copy"
_END = re.compile(r"^---[ \t]*(?:Below (?:this|the next) line|Enclosed|Original message|This is a copy)", re.M | re.I)
# The envelope in front of the account: indimail's "From: <s@example.jp> RCPT: <r@example.net> 192.0.2.25 …", and
# a qmail-remote patch's (sagredo's qmail) "<From:s@example.jp To:r@example.net> 192.0.2.25 does not like …".
_ENVELOPE = re.compile(r"^(?:From: <([^<>]*)> RCPT: <[^<>]*>|<From:([^<>\s]*) To:[^<>\s]*>)[ \t]*", re.I)
_REMOTE_SAID = re.compile(r"\bRemote host said:[ \t]*", re.I)
# The reply code that opens the remote server's reply ("552 Error: …", "550-5.7.26 …").
_REPLY_CODE = re.compile(r"([45][0-9][0-9])(?=[ \t-]|$)")
_GIVING_UP = re.compile(
    r"(?:^|(?<=[.)\]]))[ \t]*(?:Giving up on \S+?\.?|I'm not going to try again; this message has been in the "
    r"queue too long\.?)[ \t]*$",
    re.M | re.I,
)
_HOST = re.compile(
    r"(?:^|\s)(?:remote host |Connected to )?(\[?[0-9A-Fa-f:.]+\]?|[\w.-]+\.[A-Za-z]{2,})"
    r"(?: does not like recipient| failed after I sent the message| failed on DATA command| but | said:)",
    re.I,
)
# The host at the end of a sentence: the TLS patch's "…; connected to 192.0.2.1." (or "connecting to"), and
# qmail-remote's "Giving up on 192.0.2.1." after every recipient was refused.
_HOST_LAST = re.compile(
    r"\b(?:connected to|connecting to|Giving up on)[ \t]+(\[?[0-9A-Fa-f:.]+\]?|[\w.-]+\.[A-Za-z]{2,})\.?(?=\s|$)", re.I
)
# qmail's words for the point of the session that failed (qmail-remote.c and its TLS and AUTH patches), the most
# specific first.
_STAGES = (
    ("does not like recipient", Stage.RCPT),
    ("most progress was rcpt to", Stage.RCPT),
    ("failed on data command", Stage.DATA),
    ("failed after i sent the message", Stage.END_OF_DATA),
    ("sender was rejected", Stage.MAIL),
    ("authentication was rejected", Stage.AUTH),
    ("but password expired", Stage.AUTH),
    ("tls connect failed", Stage.STARTTLS),
    ("starttls rejected", Stage.STARTTLS),
    ("tls unable to verify server", Stage.STARTTLS),
    ("no tls achieved", Stage.STARTTLS),
    ("my name was rejected", Stage.HELO),
    ("greeting failed", Stage.CONNECT),
    ("wasn't able to establish an smtp connection", Stage.CONNECT),  # no MX host accepted a connection
    ("most progress was mail from", Stage.MAIL),
    ("most progress was", Stage.CONNECT),
)
MAX_BODY = 200_000
MAX_PARAGRAPH = 4000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mailer-daemon", "failure notice")
# ... and unless this is in its readable text (dispatch.py)
TEXT_GATE = ("qmail",)


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    subject = mail.lowered("subject")
    if "mailer-daemon" not in sender and "failure notice" not in subject:
        return False
    return "qmail" in mail.head(1000)


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_BODY]
    intro = _INTRO.search(text)
    if intro is None:
        return []
    return read_paragraphs(mail, text, intro.end(), intro.group(1).rstrip("."))


def read_paragraphs(mail: Mail, text: str, start: int, reporting_mta: str | None) -> list[Finding]:
    """One finding per ``<address>:`` paragraph of ``text`` after ``start``, up to the ``---`` line."""
    end = _END.search(text, start)
    stop = end.start() if end else len(text)
    matches = list(_RECIPIENT.finditer(text, start, stop))
    timestamp = parse_date(mail.headers.get("date"))
    findings: list[Finding] = []
    for i, m in enumerate(matches[: MAX_RECIPIENTS + 1]):
        recipient = clean_address(m.group(1))
        if not recipient or "@" not in recipient:
            continue
        limit = matches[i + 1].start() if i + 1 < len(matches) else stop
        paragraph = text[m.end() : min(limit, m.end() + MAX_PARAGRAPH)]
        finding = _finding(recipient, paragraph)
        finding.reporting_mta = reporting_mta
        finding.timestamp = timestamp
        findings.append(finding)
    return findings


def _finding(recipient: str, paragraph: str) -> Finding:
    lines = [line.strip() for line in paragraph.strip().split("\n")]
    body = "\n".join(line for line in lines if line)
    sender = None
    envelope = _ENVELOPE.match(body)
    if envelope:
        sender = clean_address(envelope.group(1) or envelope.group(2))
        body = body[envelope.end() :]
    lower = body.lower()
    stage = next((s for words, s in _STAGES if words in lower), None)
    host_match = _HOST.search(body) or _HOST_LAST.search(body)
    remote_host = host_match.group(1).strip("[]").rstrip(".") if host_match else None
    said = _REMOTE_SAID.search(body)
    reply_code = None
    if said is not None:
        # The remote server's reply is the diagnostic; qmail's own closing words are not part of it.
        reply = _GIVING_UP.sub("", body[said.end() :])
        account = body[: said.start()]
        diagnostic = " ".join(f"{account} {reply}".split())
        code = _REPLY_CODE.match(reply)
        reply_code = code.group(1) if code else None  # qmail quotes the reply as received: its code comes first
    else:
        diagnostic = " ".join(body.split())
    return Finding(
        recipient=recipient,
        action=Action.FAILED,
        reply_code=reply_code,
        diagnostic=diagnostic or None,
        remote_host=remote_host,
        stage=stage,
        sender=sender,
    )
