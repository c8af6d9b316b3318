"""Microsoft 365 / Exchange Online non-delivery reports that lack a delivery-status part.

Exchange Online sends ``multipart/report`` mails (``X-MS-Exchange-Message-Is-Ndr``, Message-IDs and Received
lines at ``….prod.outlook.com``, ``X-MS-Exchange-CrossTenant-*`` headers) whose readable part opens with
``Delivery has failed to these recipients or groups:`` ("Falha na entrega a estes destinatários ou grupos:", "Uw
bericht kan niet worden bezorgd bij de volgende geadresseerden of groepen:"; later reports: "<domain> rejected
your message to the following email addresses:") and the recipients, then a plain-language explanation,
and ends with the administrators' section that Exchange 2007 and later write (see ``exchange2007``):
``Generating server:``, each recipient and ``Remote Server returned '<reply>'``. Reports that carry a
``message/delivery-status`` part are left to the RFC 3464 decoder. When the administrators' section is missing,
the recipients listed at the top are read with the paragraph that follows them as the explanation.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.decoders.exchange2007 import read_report
from smtplens.bounce.decoders.rfc3464 import DSN_TYPES
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "office365"

# the opening line in English, Portuguese and Dutch, and the later "<domain> rejected your message to the following
# email addresses:" (or "e-mail addresses")
_FAILED_TO = re.compile(
    r"^\s*(?:Delivery has failed to these recipients or groups|Falha na entrega a estes destinat\S*rios ou grupos"
    r"|Uw bericht kan niet worden bezorgd bij de volgende geadresseerden of groepen"
    r"|\S.* rejected your message to the following e-?mail addresses):\s*$",
    re.I | re.M,
)
_ADDRESS = re.compile(r"^\s*(?:[^<>@\n]*<)?([^\s<>\"@:]+@[^\s<>\":]+?)>?(?:<mailto:[^>]*>)?\s*(?:\(.*\))?\s*$")
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n")
MAX_TEXT = 200_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("x-ms-exchange-crosstenant-originalarrivaltime", "x-originatororg", "outlook.com")


def detect(mail: Mail) -> bool:
    headers = mail.headers
    microsoft = "x-ms-exchange-crosstenant-originalarrivaltime" in headers or "x-originatororg" in headers
    if not microsoft and "outlook.com" not in mail.lowered("message-id"):
        return False
    return mail.find(*DSN_TYPES) is None


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    findings = read_report(text)
    if findings:
        return findings
    start = _FAILED_TO.search(text)
    if start is None:
        return []
    lines = text[start.end() :].lstrip("\n").split("\n")
    at = 0
    while at < len(lines):
        m = _ADDRESS.match(lines[at])
        if m is None:
            break
        address = clean_address(m.group(1))
        if address is not None and len(findings) <= MAX_RECIPIENTS:
            findings.append(Finding(recipient=address, action=Action.FAILED))
        at += 1
    rest = "\n".join(lines[at:]).strip()
    explanation = " ".join(_PARAGRAPH_END.split(rest, maxsplit=1)[0].split()) or None
    for finding in findings:
        finding.diagnostic = explanation
    return findings
