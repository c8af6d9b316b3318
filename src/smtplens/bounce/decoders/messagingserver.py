"""Oracle (formerly Sun Java System, iPlanet) Messaging Server notices that come without a delivery-status part.

Messaging Server writes its notices as ``multipart/report``; its human-readable part lists the recipients in
blocks of indented fields:

    Your message cannot be delivered to the following recipients:

      Recipient address: a@example.org
      Reason: Remote SMTP server has rejected address
      Diagnostic code: smtp;550 5.1.1 <a@example.org>... User unknown
      Remote system: dns;mx.example.org (TCP|192.0.2.1|40214|192.0.2.2|25) (mx.example.org ESMTP)

Where the ``message/delivery-status`` part is there, the standard decoder reads it; this module reads the blocks
of a notice sent without it (as ``multipart/mixed``, or relayed through a gateway that dropped the part).
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address, mta_host
from smtplens.bounce.decoders.rfc3464 import DSN_TYPES, diagnostic_parts
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "messagingserver"

_FIELD = re.compile(r"^[ \t]+(Recipient address|Original address|Reason|Diagnostic code|Remote system):[ \t]*(.*)$")
_OPENING = re.compile(
    r"cannot be delivered to the following recipients?:|has not yet been delivered to the following recipients?:",
    re.I,
)
MAX_TEXT = 100_000
_TRACE = "Messaging Server"  # as the product names itself in its Received fields


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("messaging server",)


def detect(mail: Mail) -> bool:
    # its trace field: "Received: from … by … (Oracle Communications Messaging Server 8.1 …)"
    if not mail.in_header(_TRACE) or mail.find(*DSN_TYPES) is not None:
        return False
    head = mail.head(5000)
    return "recipient address:" in head and _OPENING.search(head) is not None


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    opening = _OPENING.search(text)
    if opening is None:
        return []
    action = Action.DELAYED if "not yet been delivered" in opening.group(0).lower() else Action.FAILED
    findings: list[Finding] = []
    reason = None
    for line in text[opening.end() :].split("\n"):
        m = _FIELD.match(line)
        if m is None:
            continue
        field, value = m.group(1).lower(), m.group(2).strip()
        if field == "recipient address":
            address = clean_address(value)
            if address is None or len(findings) > MAX_RECIPIENTS:
                continue
            findings.append(Finding(recipient=address, action=action))
            reason = None
        elif not findings:
            continue
        elif field == "original address":
            findings[-1].original_recipient = clean_address(value)
        elif field == "reason":
            reason = value or None
            findings[-1].diagnostic = findings[-1].diagnostic or reason
        elif field == "diagnostic code":
            diagnostic_type, diagnostic = diagnostic_parts(value)  # as RFC 3464's field: "smtp;550 5.1.1 …"
            findings[-1].diagnostic_type = diagnostic_type
            findings[-1].diagnostic = diagnostic or reason
        elif field == "remote system":
            findings[-1].remote_host = mta_host(value)
    return findings
