"""McAfee SaaS Email Protection (formerly MX Logic) bounces.

Written like Exim's: a plain-text mail from ``Mail Delivery System <MAILER-DAEMON@….mxlogic.net>`` (or another
host of the service) with the subject ``Mail delivery failed``, headers ``X-MX-Bounce`` / ``X-MXL-NoteHash`` and
a ``Message-ID: <mxl~…>``. After ``The following address(es) failed:`` each recipient is an indented
``<address>: reply`` paragraph (the remote reply may wrap onto more lines); ``Included is a copy of the message
header:`` starts the returned header.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "mxlogic"

_FAILED = re.compile(r"following address(?:\(es\)|es)? failed:\s*$", re.I | re.M)
_RECIPIENT = re.compile(r"^[ \t]+<?([^\s<>\"@]+@[^\s<>\":]+?)>?(?::\s*(.*))?$")
_END = ("Included is a copy", "------ This is a copy", "------ The body of the message")
MAX_TEXT = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("x-mx-bounce", "x-mxl-notehash", "<mxl~", "mxlogic.net")


def detect(mail: Mail) -> bool:
    headers = mail.headers
    if "x-mx-bounce" in headers or "x-mxl-notehash" in headers:
        return True
    if "<mxl~" in (headers.get("message-id") or ""):
        return True
    return "mxlogic.net" in mail.lowered("from")


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    start = _FAILED.search(text)
    if start is None:
        return []
    for marker in _END:
        end = text.find(marker, start.end())
        if end >= 0:
            text = text[:end]
    findings: list[Finding] = []
    for paragraph in re.split(r"\n[ \t]*\n", text[start.end() :]):
        lines = paragraph.strip("\n").split("\n")
        m = _RECIPIENT.match(lines[0])
        if m is None:
            continue
        address = clean_address(m.group(1))
        if address is None or len(findings) > MAX_RECIPIENTS:
            continue
        diagnostic = " ".join(" ".join([m.group(2) or "", *lines[1:]]).split())
        findings.append(Finding(recipient=address, action=Action.FAILED, diagnostic=diagnostic or None))
    return findings
