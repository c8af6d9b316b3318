"""MailFoundry gateway bounces.

A ``multipart/mixed`` from ``MAILER-DAEMON@…`` with the subject ``Message delivery has failed``: the text part
says ``Unable to deliver message to: <address>``, then ``Delivery failed for the following reason:`` and the
reason, typically ``Server host[ip] failed with: 550 …`` (which may wrap), and ends with whether the failure
is permanent; the returned message is attached.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "mailfoundry"

_RECIPIENT = re.compile(r"^\s*Unable to deliver message to:\s*<?([^\s<>\"]+@[^\s<>\"]+?)>?\s*$", re.I)
_REASON = "delivery failed for the following reason:"
_SERVER = re.compile(r"Server\s+([A-Za-z0-9.-]+)\[[^\]]*\]\s+failed with:\s*", re.I)
MAX_TEXT = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("message delivery has failed",)


def detect(mail: Mail) -> bool:
    return mail.lowered("subject").strip() == "message delivery has failed"


def decode(mail: Mail) -> list[Finding]:
    findings: list[Finding] = []
    reason: list[str] | None = None
    for line in mail.text[:MAX_TEXT].split("\n"):
        m = _RECIPIENT.match(line)
        if m is not None:
            address = clean_address(m.group(1))
            if address is not None and len(findings) <= MAX_RECIPIENTS:
                findings.append(Finding(recipient=address, action=Action.FAILED))
            reason = None
            continue
        if line.strip().lower() == _REASON:
            reason = []
            continue
        if reason is None or not findings:
            continue
        if not line.strip():
            if reason:
                _set_reason(findings[-1], reason)
                reason = None
            continue
        reason.append(line.strip())
    if reason and findings:
        _set_reason(findings[-1], reason)
    return findings


def _set_reason(finding: Finding, lines: list[str]) -> None:
    text = " ".join(lines)
    server = _SERVER.search(text)
    if server is not None:
        finding.remote_host = server.group(1).rstrip(".") or None
        text = text[server.end() :]
    finding.diagnostic = text.strip() or None
