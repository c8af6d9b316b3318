"""McAfee SaaS Email Protection (formerly MX Logic) bounces.

Written like Exim's: a plain-text mail from ``Mail Delivery System <MAILER-DAEMON@….mxlogic.net>`` (or another
host of the service) with the subject ``Mail delivery failed``, headers ``X-MX-Bounce`` / ``X-MXL-NoteHash`` and
a ``Message-ID: <mxl~…>``; some carry ``X-MXL-Hash`` instead. After ``The following address(es) failed:`` each
recipient is an indented ``<address>: reply`` paragraph (the remote reply may wrap onto more lines), or, as Exim
writes it, the address alone on its line with the explanation indented below (``SMTP error from remote mail
server after RCPT TO:<…>:`` / ``host mx.example.jp [192.0.2.1]: 550 …``); ``Included is a copy of the message
header:`` starts the returned header. A delay warning (subject ``Warning: message … delayed …``) lists the
recipients after ``The address(es) to which the message has not yet been delivered is/are:``, each with a
``Delay reason:``.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "mxlogic"

_FAILED = re.compile(
    r"following address(?:\(es\)|es)? failed:\s*$|(has|have) not yet been delivered (?:is|are):\s*$", re.I | re.M
)
_DELAY_REASON = re.compile(r"^Delay reason:\s*", re.I)
_RECIPIENT = re.compile(r"^[ \t]+<?([^\s<>\"@]+@[^\s<>\":]+?)>?(?::\s*(.*))?$")
_END = ("Included is a copy", "------ This is a copy", "------ The body of the message")
MAX_TEXT = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("x-mx-bounce", "x-mxl-notehash", "x-mxl-hash", "<mxl~", "mxlogic.net")


def detect(mail: Mail) -> bool:
    headers = mail.headers
    if "x-mx-bounce" in headers or "x-mxl-notehash" in headers or "x-mxl-hash" in headers:
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
    action = Action.DELAYED if start.group(1) else Action.FAILED  # a warning: "… not yet been delivered …"
    findings: list[Finding] = []
    for paragraph in re.split(r"\n[ \t]*\n", text[start.end() :]):
        # a recipient's line, then its reply's lines indented deeper; the next recipient may follow without a blank
        # line, at the first one's indentation
        entries: list[tuple[str, list[str]]] = []
        indent = -1
        for line in paragraph.strip("\n").split("\n"):
            depth = len(line) - len(line.lstrip(" \t"))
            m = _RECIPIENT.match(line)
            if m is not None and (not entries or depth <= indent):
                entries.append((m.group(1), [m.group(2) or ""]))
                indent = depth
            elif entries:
                entries[-1][1].append(line)
            else:
                break  # a paragraph that opens with no recipient
        for found, lines in entries:
            address = clean_address(found)
            if address is None or len(findings) > MAX_RECIPIENTS:
                continue
            diagnostic = _DELAY_REASON.sub("", " ".join(" ".join(lines).split()))
            findings.append(Finding(recipient=address, action=action, diagnostic=diagnostic or None))
    return findings
