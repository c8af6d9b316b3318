"""IBM / HCL Domino (Notes) delivery-failure reports in their plain-text form.

The subject begins ``DELIVERY FAILURE:`` (or ``DELIVERY_FAILURE:``) followed by the reason. The text reads
``Your message`` / ``Subject: …`` / ``was not delivered to:`` / the recipient addresses, indented, one per line /
``because:`` / the reason, indented ("User … (address) not listed in Domino Directory"). Newer versions wrap the
same text in a ``multipart/report`` with a standard delivery-status part; those are left to the RFC 3464
decoder, which reads more from them.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.decoders.rfc3464 import DSN_TYPES
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "domino"

_NOT_DELIVERED = re.compile(r"^\s*was not delivered to:\s*$", re.I | re.M)
_BECAUSE = re.compile(r"^\s*because:\s*$", re.I | re.M)
_ADDRESS = re.compile(r"<?([^\s<>\"@()]+@[^\s<>\"()]+?)>?[.,;]?\s*$")
MAX_TEXT = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("delivery failure", "delivery_failure")


def detect(mail: Mail) -> bool:
    subject = mail.lowered("subject").lstrip()  # (encoded where a user name is not ASCII)
    if not subject.startswith(("delivery failure", "delivery_failure")):
        return False
    return mail.find(*DSN_TYPES) is None


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    findings: list[Finding] = []
    # one "was not delivered to: … because: …" section per reason; a notice may have several
    for start in _NOT_DELIVERED.finditer(text):
        because = _BECAUSE.search(text, start.end())
        block = text[start.end() : because.start() if because else len(text)]
        section: list[Finding] = []
        for line in block.split("\n"):
            if not line.strip():
                continue
            m = _ADDRESS.search(line.strip())
            if m is None:
                break
            address = clean_address(m.group(1))
            if address is not None and len(findings) + len(section) <= MAX_RECIPIENTS:
                section.append(Finding(recipient=address, action=Action.FAILED))
        diagnostic = None
        if because is not None:
            rest = text[because.end() :].lstrip("\n")
            paragraph = re.split(r"\n[ \t]*\n", rest, maxsplit=1)[0]
            diagnostic = " ".join(paragraph.split()) or None
        if diagnostic is None:
            subject = mail.headers.text("subject") or ""
            diagnostic = subject.partition(":")[2].strip() or None
        for finding in section:
            finding.diagnostic = diagnostic
        findings.extend(section)
    return findings
