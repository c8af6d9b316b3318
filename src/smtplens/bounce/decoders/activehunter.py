"""Bounces of TransWARE Active!hunter, a Japanese mail filtering gateway.

A sendmail-like ``multipart/report`` (its boundary and the ``X-AHMAILID`` header name Active!hunter) whose text
part reads "The original message was received at DATE from HOST", then ``----- The following addresses had
permanent fatal errors -----`` with one line per recipient (``>>> address <address>``), then ``----- Transcript
of session follows -----`` and the remote server's reply (``550 sorry, no mailbox here by that name (#5.1.1 -
chkusr)``). There is no ``message/delivery-status`` part; the returned message follows as ``message/rfc822``.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "activehunter"

_ERRORS = re.compile(
    r"^[ \t]*-+[ \t]*The following addresses had (permanent fatal|temporary) errors[ \t]*-+", re.M | re.I
)
_TRANSCRIPT = re.compile(r"^[ \t]*-+[ \t]*Transcript of session follows[ \t]*-+[ \t]*$", re.M | re.I)
# ">>> a@b", ">>> a@b <a@b>", or with the recipient's name: ">>> Sato Ichiro <a@b>"
_RECIPIENT = re.compile(r"^[ \t]*>>>[ \t]*(?:[^<>@\n]*<)?<?([^\s<>@]+@[^\s<>]+?)>?(?:[ \t]+<[^<>\s]*>)?[ \t]*$")
MAX_BODY = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py): its field, or its boundary's name
GATE = ("x-ahmailid", "active!hunter")


def detect(mail: Mail) -> bool:
    if "x-ahmailid" in mail.headers:
        return True
    return "active!hunter" in mail.root.params.get("boundary", "").lower()


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_BODY]
    errors = _ERRORS.search(text)
    if errors is None:
        return []
    transcript = _TRANSCRIPT.search(text, errors.end())
    stop = transcript.start() if transcript else len(text)
    diagnostic = None
    if transcript is not None:
        end = text.find("\n\n", transcript.end() + 1)
        diagnostic = " ".join(text[transcript.end() : end if end > 0 else len(text)].split()) or None
    action = Action.FAILED if errors.group(1).lower().startswith("permanent") else Action.DELAYED
    findings: list[Finding] = []
    for line in text[errors.end() : stop].split("\n"):
        m = _RECIPIENT.match(line)
        if m is None or len(findings) > MAX_RECIPIENTS:
            continue
        recipient = clean_address(m.group(1))
        if recipient:
            findings.append(Finding(recipient=recipient, action=action, diagnostic=diagnostic))
    return findings
