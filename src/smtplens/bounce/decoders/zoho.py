"""Zoho Mail's bounces (``mailer-daemon@mail.zoho.com``, ``X-Mailer: Zoho Mail``).

A ``multipart/mixed`` mail whose text part starts like Exim's ("This message was created automatically by mail
delivery software. A message that you sent could not be delivered to one or more of its recipients. This is a
permanent error.") and then gives one line per recipient: the address, Zoho's summary and the remote reply
split into labelled pieces, ``kijitora@example.org Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <...>...
User Unknown`` (the pieces may be empty: ``Error, ERROR_CODE :421, ERROR_CODE :, Host not reachable.``). The
returned message's header fields follow, written as ``Name:value`` lines. The text is often quoted-printable.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, parse_date
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "zoho"

_INTRO = re.compile(r"could not be delivered to one or more of its\s+recipients\.", re.I)
_LINE = re.compile(r"^[ \t]*<?([^\s<>@,]+@[^\s<>,]+?)>?[ \t]+(\S[^\n]*(?:\n(?![ \t]*\S+@\S+[ \t])[^\n:]+)*)", re.M)
_CODE = re.compile(r",?\s*ERROR_CODE\s*:\s*", re.I)
_END = re.compile(r"^(?:Received|Message-ID|From|Date|Return-Path)[ \t]*:", re.I | re.M)
_BASIC = re.compile(r"([245]\d\d)\b")
MAX_TEXT = 200_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("zoho",)


def detect(mail: Mail) -> bool:
    mailer = mail.lowered("x-mailer")
    sender = mail.lowered("from")
    if "zoho" not in mailer and not ("mailer-daemon@" in sender and "zoho" in sender):
        return False
    return "ERROR_CODE" in mail.text[:MAX_TEXT]


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    intro = _INTRO.search(text)
    if intro is None:
        return []
    end = _END.search(text, intro.end())
    report = text[intro.end() : end.start() if end else len(text)]
    permanent = "permanent error" in text[intro.end() : intro.end() + 40].lower()
    date = parse_date(mail.headers.get("date"))
    findings: list[Finding] = []
    for m in _LINE.finditer(report):
        if len(findings) > MAX_RECIPIENTS:
            break
        if "ERROR_CODE" not in m.group(2):
            continue
        diagnostic = _diagnostic(m.group(2))
        finding = Finding(
            recipient=m.group(1),
            action=Action.FAILED if permanent else None,
            diagnostic=diagnostic,
            timestamp=date,
        )
        code = _BASIC.match(diagnostic or "")
        if permanent and code and code.group(1).startswith("4"):
            # a transient reply in a report of permanent failure: Zoho retried until it gave up
            finding.reason, finding.reply_code = "expired", code.group(1)
        findings.append(finding)
    return findings


def _diagnostic(line: str) -> str | None:
    """``Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <a>... User Unknown`` → ``550 5.1.1 <a>... User
    Unknown (Invalid Address)``: the reply first, Zoho's summary after it."""
    pieces = [" ".join(p.split()).strip(" ,") for p in _CODE.split(line)]
    summary, reply = pieces[0], " ".join(p for p in pieces[1:] if p)
    if not reply:
        return summary or None
    return f"{reply} ({summary})" if summary else reply
