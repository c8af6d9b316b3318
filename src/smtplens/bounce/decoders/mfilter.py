"""Digital Arts m-FILTER failure notices.

A plain-text mail (Japanese, ISO-2022-JP or UTF-8) with the subject ``failure notice``: a Japanese paragraph
saying that m-FILTER generated the notice and could not send the mail, the recipient addresses one per line,
then sections introduced by a line of seven dashes: ``-------server message`` (the remote server's reply),
``-------SMTP command`` (the command it answered) and ``-------original message`` or ``-------original mail
info`` (the returned message or a summary of it).
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["decode", "detect", "name"]

name = "mfilter"

_SECTION = re.compile(r"^-{7}([A-Za-z][A-Za-z ]*?)\s*$", re.M)
_ADDRESS = re.compile(r"^\s*<?([^\s<>\"@]+@[^\s<>\"]+?)>?\s*$")
_STAGES = {"HELO": Stage.HELO, "EHLO": Stage.HELO, "MAIL": Stage.MAIL, "RCPT": Stage.RCPT, "DATA": Stage.DATA}
MAX_TEXT = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("failure notice",)
# ... and unless this is in its readable text (dispatch.py)
TEXT_GATE = ("-------server message",)


def detect(mail: Mail) -> bool:
    if mail.lowered("subject").strip() != "failure notice":
        return False
    return "-------server message" in mail.text[:MAX_TEXT]


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    sections = list(_SECTION.finditer(text))
    if not sections:
        return []
    head = text[: sections[0].start()]
    findings: list[Finding] = []
    for line in head.split("\n"):
        m = _ADDRESS.match(line)
        if m is None:
            continue
        address = clean_address(m.group(1))
        if address is not None and len(findings) <= MAX_RECIPIENTS:
            findings.append(Finding(recipient=address, action=Action.FAILED))
    diagnostic = None
    stage = None
    for i, section in enumerate(sections):
        end = sections[i + 1].start() if i + 1 < len(sections) else len(text)
        body = " ".join(text[section.end() : end].split())
        title = section.group(1).lower()
        if title == "server message":
            diagnostic = body or None
        elif title == "smtp command" and body:
            stage = _STAGES.get(body.split()[0][:4].upper())
    for finding in findings:
        finding.diagnostic = diagnostic
        finding.stage = stage
    return findings
