"""Trend Micro InterScan Messaging Security Suite (InterScan MSS) notices.

A ``multipart/mixed`` with the boundary ``------------InterScan_NT_MIME_Boundary``, often from ``"InterScan
MSS" <postmaster@…>``: the text part ends with a line ``*****  End of message  *****`` and either quotes the
SMTP exchange (``Sent <<< RCPT TO:<address>`` then ``Received >>> 550 …``) or says ``Unable to deliver message
to <address>``; the returned message is attached.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["decode", "detect", "name"]

name = "trendmicro"

_SENT = re.compile(r"^\s*Sent\s*<<<\s*([A-Za-z]{4})\b[^<\n]*(?:<([^<>\s]+@[^<>\s]+)>)?", re.I)
_RECEIVED = re.compile(r"^\s*Received\s*>>>\s*(.+)$", re.I)
_UNABLE = re.compile(r"Unable to deliver message to\s*<([^<>\s]+@[^<>\s]+)>(.*)$", re.I)
_STAGES = {"HELO": Stage.HELO, "EHLO": Stage.HELO, "MAIL": Stage.MAIL, "RCPT": Stage.RCPT, "DATA": Stage.DATA}
MAX_TEXT = 100_000


def detect(mail: Mail) -> bool:
    if "interscan" in mail.root.params.get("boundary", "").lower():
        return True
    return "interscan" in mail.lowered("from")


def decode(mail: Mail) -> list[Finding]:
    part = mail.find("text/plain")
    text = (part.text() if part is not None else mail.text)[:MAX_TEXT]
    findings: list[Finding] = []
    stage = None
    for line in text.split("\n"):
        if len(findings) > MAX_RECIPIENTS:
            break
        sent = _SENT.match(line)
        if sent is not None:
            stage = _STAGES.get(sent.group(1).upper())
            address = clean_address(sent.group(2))
            if address is not None and stage is Stage.RCPT:
                findings.append(Finding(recipient=address, action=Action.FAILED, stage=stage))
            continue
        received = _RECEIVED.match(line)
        if received is not None and findings:
            last = findings[-1]
            reply = received.group(1).strip()
            last.diagnostic = f"{last.diagnostic} {reply}" if last.diagnostic else reply
            last.stage = stage
            continue
        unable = _UNABLE.search(line)
        if unable is not None:
            address = clean_address(unable.group(1))
            if address is not None:
                findings.append(Finding(recipient=address, action=Action.FAILED, diagnostic=line.strip()))
    return findings
