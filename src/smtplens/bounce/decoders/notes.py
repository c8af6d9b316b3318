"""Lotus Notes (Lotus SMTP MTA) undeliverable-message notices.

A plain-text mail from ``postmaster@…`` with the subject ``Undeliverable message``. The reason and the failed
recipients stand between the lines ``------- Failure Reasons  --------`` and ``------- Returned Message
--------``: the explanation first (English, or Japanese in ISO-2022-JP), then the recipient addresses one per
line. The returned message follows the second line. Some notices give only the reason ("Message has exceeded
maximum hop count"); their recipient is the one the returned message's ``To:`` names.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "notes"

_START = re.compile(r"^-{5,}\s*Failure Reasons\s*-{5,}\s*$", re.I | re.M)
_END = re.compile(r"^-{5,}\s*Returned Message\s*-{5,}\s*$", re.I | re.M)
_ADDRESS = re.compile(r"^\s*<?([^\s<>\"@]+@[^\s<>\"]+?)>?\s*$")
_RETURNED_TO = re.compile(r"^To:[ \t]*(.+)$", re.I | re.M)
MAX_RETURNED = 20_000  # the returned message's header stands at its start
MAX_TEXT = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("undeliverable message",)


def detect(mail: Mail) -> bool:
    subject = mail.lowered("subject").strip()
    return subject.startswith("undeliverable message") and _START.search(mail.text[:MAX_TEXT]) is not None


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    start = _START.search(text)
    if start is None:
        return []
    end = _END.search(text, start.end())
    block = text[start.end() : end.start() if end else len(text)]
    findings: list[Finding] = []
    reasons: list[str] = []
    pending: list[str] = []  # the reason lines since the last address: each recipient stands below its reason
    for line in block.split("\n"):
        m = _ADDRESS.match(line)
        if m is None:
            if line.strip():
                reasons.append(line.strip())
                pending.append(line.strip())
            continue
        address = clean_address(m.group(1))
        if address is not None and len(findings) <= MAX_RECIPIENTS:
            findings.append(Finding(recipient=address, action=Action.FAILED, diagnostic=" ".join(pending) or None))
        pending = []
    if not findings and end is not None:
        to = _RETURNED_TO.search(text, end.end(), end.end() + MAX_RETURNED)
        address = clean_address(to.group(1)) if to is not None else None
        if address is not None and "@" in address and "," not in address:
            findings.append(Finding(recipient=address, action=Action.FAILED))
    diagnostic = " ".join(" ".join(reasons).split()) or None
    for finding in findings:
        if finding.diagnostic is None or len(findings) == 1:
            finding.diagnostic = diagnostic
    return findings
