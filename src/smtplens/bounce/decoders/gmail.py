"""Gmail's own plain-text bounces (``mailer-daemon@googlemail.com``, before Google moved to RFC 3464 reports).

The body is prose, not fields. A sentence announces the outcome and the recipients follow, indented, one a
line: "Delivery to the following recipient failed permanently:" (or "... has been delayed:" for a warning).
Then "Technical details of permanent failure:" (or "temporary failure") introduces Google's explanation,
which may quote the remote server ("The error that the other server returned was: 550 5.1.1 ...", sometimes
with the server named: "rejected by the server for the recipient domain example.org by mx.example.org.
[192.0.2.1]"), or is Google's own ("The recipient server did not accept our requests to connect ..."), followed
by one bracketed line per address tried: "[example.org 192.0.2.1: socket error]" or "[(0) mx.example.org.
[192.0.2.1]:25: socket error]".
A "----- Original message -----" (or "Message header follows") line, indented or not, ends the report. The text is often
quoted-printable, so the sentences may wrap anywhere.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, parse_date
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["decode", "detect", "name"]

name = "gmail"

_START = re.compile(
    r"Delivery to the following recipients? (failed permanently|has been delayed|"
    r"was successful|has been successful)[^\n]*:?",
    re.I,
)
_DETAILS = re.compile(r"Technical details of (?:permanent|temporary) failure:[ \t]*", re.I)
_END = re.compile(r"^[ \t]*-{3,}\s*(?:Original message|Message header follows)\s*-*", re.I | re.M)
_ADDRESS = re.compile(r"^[ \t]*<?([^\s<>@]+@[^\s<>@]+?)>?[ \t]*$", re.M)
_QUOTED_REPLY = re.compile(r"The error that the other server returned was:\s*", re.I)
_REMOTE = re.compile(r"\bby ([A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9])\.? \[[0-9A-Fa-f:.]+\]")
# a connection Google tried and lost: "[host ip: error]", "[(0) host. [ip]:25: error]" (the first names the host)
_TRIED = re.compile(
    r"\[(?:\(\d+\) ?)?([A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)+)(?: ?\.)? \[?[0-9A-Fa-f:.]*[0-9A-Fa-f]\]?"
    r"(?::\d+)?: [^\]]+\]"
)
_NO_CONNECTION = "did not accept our requests to connect"
_STATE = re.compile(r"\s*\(state \d+\)\.?\s*$", re.I)
MAX_TEXT = 200_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mailer-daemon@google",)


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    if "mailer-daemon@google" not in sender:
        return False
    if mail.find("message/delivery-status", "message/global-delivery-status") is not None:
        return False  # Google's RFC 3464 reports: read by the standard decoder
    return "Delivery to the following recipient" in mail.text


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    start = _START.search(text)
    if start is None:
        return []
    end_match = _END.search(text, start.end())
    report = text[start.end() : end_match.start() if end_match else len(text)]
    details = _DETAILS.search(report)
    listing = report[: details.start()] if details else report
    diagnostic, remote = _explanation(report[details.end() :]) if details else (None, None)
    # Google's own words that no connection to the recipient's servers was accepted
    stage = Stage.CONNECT if diagnostic and _NO_CONNECTION in diagnostic else None
    verb = start.group(1).lower()
    action = Action.DELAYED if "delayed" in verb else Action.FAILED if "failed" in verb else Action.DELIVERED
    date = parse_date(mail.headers.get("date"))
    findings: list[Finding] = []
    for m in _ADDRESS.finditer(listing):
        if len(findings) > MAX_RECIPIENTS:
            break
        findings.append(
            Finding(
                recipient=m.group(1),
                action=action,
                diagnostic=diagnostic,
                remote_host=remote,
                stage=stage,
                timestamp=date,
            )
        )
    return findings


def _explanation(details: str) -> tuple[str | None, str | None]:
    """The diagnostic (the remote server's quoted reply when there is one, else Google's words) and the
    remote host Google names."""
    text = " ".join(details.split())
    remote = _REMOTE.search(text) or _TRIED.search(text)
    quoted = _QUOTED_REPLY.search(text)
    if quoted and quoted.end() < len(text):
        text = text[quoted.end() :]
    text = _STATE.sub("", text).strip()
    return text or None, remote.group(1).lower() if remote else None
