"""Trustwave (Marshal) MailMarshal SMTP non-delivery notices.

A ``multipart/mixed`` whose subject begins ``Undeliverable Mail: "<original subject>"``. The text part quotes
the original sender and subject (``Your message:``), then ``Could not be delivered because of`` followed by the
remote server's reply, ``The following recipients were affected:`` with the recipients one per indented line,
and an ``Additional Information`` block of ``Name: <value>`` lines (Original Sender, Sender-MTA, Remote-MTA,
Reporting-MTA, MessageName, Last-Attempt-Date).
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "mailmarshal"

_BECAUSE = re.compile(r"^\s*Could not be delivered because of\s*$", re.I | re.M)
_AFFECTED = re.compile(r"^\s*The following recipients were affected:\s*$", re.I | re.M)
_ADDRESS = re.compile(r"^\s+<?([^\s<>\"@]+@[^\s<>\"]+?)>?\s*$")
_INFO = re.compile(r"^\s*(Remote-MTA|Reporting-MTA|Original Sender):\s*<?([^<>\s]*)>?", re.I | re.M)
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n")
MAX_TEXT = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("undeliverable mail:",)


def detect(mail: Mail) -> bool:
    subject = (mail.headers.text("subject") or "").lstrip()
    return subject.startswith("Undeliverable Mail:") and _BECAUSE.search(mail.text[:MAX_TEXT]) is not None


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    because = _BECAUSE.search(text)
    affected = _AFFECTED.search(text)
    if because is None or affected is None:
        return []
    reason = text[because.end() : affected.start()].strip()
    diagnostic = " ".join(reason.split()) or None
    info = {m.group(1).lower(): m.group(2) for m in _INFO.finditer(text)}
    findings: list[Finding] = []
    for line in text[affected.end() :].lstrip("\n").split("\n"):
        m = _ADDRESS.match(line)
        if m is None:
            break
        address = clean_address(m.group(1))
        if address is not None and len(findings) <= MAX_RECIPIENTS:
            findings.append(
                Finding(
                    recipient=address,
                    action=Action.FAILED,
                    diagnostic=diagnostic,
                    remote_host=info.get("remote-mta") or None,
                    reporting_mta=info.get("reporting-mta") or None,
                    sender=clean_address(info.get("original sender")),
                )
            )
    return findings
