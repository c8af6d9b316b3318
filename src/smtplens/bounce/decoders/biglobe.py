"""Bounces of BIGLOBE (a Japanese ISP's mail service).

A ``multipart/mixed`` mail from ``postmaster@`` the provider with a sendmail-like subject (``Returned mail:
Service unavailable``). Its text part (ISO-2022-JP) has two sections: ``----- The following addresses had
delivery problems -----`` with the recipients one per line, and ``----- Non-delivered information -----`` with
the provider's own explanation ("The number of messages in recipient's mailbox exceeded the local limit.").
The returned message follows as ``message/rfc822``.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "biglobe"

_PROBLEMS = re.compile(r"^[ \t]*-+[ \t]*The following addresses had delivery problems[ \t]*-+[ \t]*$", re.M | re.I)
_INFO = re.compile(r"^[ \t]*-+[ \t]*Non-delivered information[ \t]*-+[ \t]*$", re.M | re.I)
_ADDRESS = re.compile(r"^[ \t]*<?([^\s<>@]+@[^\s<>]+?)>?[ \t]*$")
MAX_BODY = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("postmaster@", "mailer-daemon@")
# ... and unless this is in its readable text (dispatch.py)
TEXT_GATE = ("non-delivered information",)


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    if "postmaster@" not in sender and "mailer-daemon@" not in sender:
        return False
    if not mail.lowered("subject").lstrip().startswith("returned mail"):
        return False
    return "non-delivered information" in mail.head(5000)


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_BODY]
    problems = _PROBLEMS.search(text)
    info = _INFO.search(text)
    if problems is None or info is None or info.start() < problems.end():
        return []
    end = text.find("\n\n", info.end() + 1)
    diagnostic = " ".join(text[info.end() : end if end > 0 else len(text)].split()) or None
    findings: list[Finding] = []
    for line in text[problems.end() : info.start()].split("\n"):
        m = _ADDRESS.match(line)
        if m is None or len(findings) > MAX_RECIPIENTS:
            continue
        recipient = clean_address(m.group(1))
        if recipient:
            findings.append(Finding(recipient=recipient, action=Action.FAILED, diagnostic=diagnostic))
    return findings
