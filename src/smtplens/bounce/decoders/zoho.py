"""Zoho Mail's bounces (``mailer-daemon@mail.zoho.com``, ``X-Mailer: Zoho Mail``).

A ``multipart/mixed`` mail whose text part starts like Exim's ("This message was created automatically by mail
delivery software. A message that you sent could not be delivered to one or more of its recipients. This is a
permanent error.") and then gives one line per recipient: the address, Zoho's summary and the remote reply
split into labelled pieces, ``kijitora@example.org Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <...>...
User Unknown`` (the pieces may be empty: ``Error, ERROR_CODE :421, ERROR_CODE :, Host not reachable.``). The
returned message's header fields follow, written as ``Name:value`` lines. The text is often quoted-printable.

Zoho also writes a recipient as a bracketed record of the same pieces, "[Status: Error, Address:
<kijitora@example.org>, ResponseCode 421, , Host not reachable.]" (the summary, the address, the reply code, then
the reply's text after an empty piece), seen when a host could not be reached.
"""

from __future__ import annotations

import re
from itertools import islice

from smtplens.bounce.decoders import MAX_RECIPIENTS, parse_date
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "zoho"

_INTRO = re.compile(r"could not be delivered to one or more of its\s+recipients\.", re.I)
_LINE = re.compile(r"^[ \t]*<?([^\s<>@,]+@[^\s<>,]+?)>?[ \t]+(\S[^\n]*(?:\n(?![ \t]*\S+@\S+[ \t])[^\n:]+)*)", re.M)
_CODE = re.compile(r",?\s*ERROR_CODE\s*:\s*", re.I)
_RECORD = re.compile(
    r"^[ \t]*\[Status:[ \t]*([^,\]\n]*),[ \t]*Address:[ \t]*<?([^\s<>,@]+@[^\s<>,\]]+?)>?[ \t]*,"
    r"[ \t]*ResponseCode[ \t]*([^,\]\n]*),([^\]\n]*)\]",
    re.I | re.M,
)
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
    text = mail.text[:MAX_TEXT]
    return "ERROR_CODE" in text or "[Status:" in text


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    intro = _INTRO.search(text)
    if intro is None:
        return []
    end = _END.search(text, intro.end())
    report = text[intro.end() : end.start() if end else len(text)]
    permanent = "permanent error" in text[intro.end() : intro.end() + 40].lower()
    date = parse_date(mail.headers.get("date"))
    # (position in the report, recipient, diagnostic) of both layouts, in the order the report names them; the
    # first MAX_RECIPIENTS + 1 of each layout hold the first MAX_RECIPIENTS + 1 of all
    lines = (m for m in _LINE.finditer(report) if "ERROR_CODE" in m.group(2))
    entries = [(m.start(), m.group(1), _diagnostic(m.group(2))) for m in islice(lines, MAX_RECIPIENTS + 1)]
    entries += [(m.start(), m.group(2), _record(m)) for m in islice(_RECORD.finditer(report), MAX_RECIPIENTS + 1)]
    findings: list[Finding] = []
    for _, recipient, diagnostic in sorted(entries, key=lambda e: e[0])[: MAX_RECIPIENTS + 1]:
        finding = Finding(
            recipient=recipient,
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


def _record(m: re.Match[str]) -> str | None:
    """``[Status: Error, Address: <a>, ResponseCode 421, , Host not reachable.]`` → ``421 Host not reachable.
    (Error)``: the reply code and text first, Zoho's summary after them."""
    summary = " ".join(m.group(1).split())
    reply = " ".join(" ".join(p.split()) for p in (m.group(3), m.group(4).strip(" ,")) if p.strip())
    if not reply:
        return summary or None
    return f"{reply} ({summary})" if summary else reply


def _diagnostic(line: str) -> str | None:
    """``Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <a>... User Unknown`` → ``550 5.1.1 <a>... User
    Unknown (Invalid Address)``: the reply first, Zoho's summary after it."""
    pieces = [" ".join(p.split()).strip(" ,") for p in _CODE.split(line)]
    summary, reply = pieces[0], " ".join(p for p in pieces[1:] if p)
    if not reply:
        return summary or None
    return f"{reply} ({summary})" if summary else reply
