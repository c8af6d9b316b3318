"""Delivery status notifications of an unidentified MTA (Sisimai's "X3"), with the details in plain text.

From "Mail Delivery System" with the subject "Delivery status notification", a ``multipart/report`` whose
first part is text between lines of ``=`` signs: "This is an automatically generated Delivery Status
Notification.", then "Delivery to the following recipients failed permanently:" (sometimes misspelt
"Delevery") and the recipients one per line as ``* address``; then a "Technical details:" section with one line
per failed attempt, ``SMTP:<COMMAND> host <host>: <the server's reply>`` (``SMTP:RCPT host 192.0.2.8: 553 5.3.0
<a@example.com>... No such user here``), or, where no server was tried, the routing failure (``Routing: Could not
find a gateway for a@example.co.jp``). Some of these mails carry a ``message/delivery-status`` part instead
of the details; the standard decoder reads those.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["decode", "detect", "name"]

name = "x3"

_LIST = re.compile(
    r"^[ \t]*Del[ie]very to the following recipients? (failed|was delayed|was aborted)[^\n]*$", re.M | re.I
)
_RECIPIENT = re.compile(r"^[ \t]*\*[ \t]*<?([^\s<>@]+@[^\s<>]+?)>?[ \t]*$")
_DETAILS = re.compile(r"^[ \t]*Technical details:?[ \t]*$", re.M | re.I)
_ATTEMPT = re.compile(r"^[ \t]*SMTP:([A-Za-z]+)[ \t]+host[ \t]+\[?([^\s:\]]+)\]?:[ \t]*(.+)$", re.M)
_ROUTING = re.compile(r"^[ \t]*Routing:[ \t]*(.+)$", re.M)
_DIAGNOSTIC = re.compile(r"^[ \t]*Diagnostic-Code:[ \t]*(?:[\w.-]+;[ \t]*)?(.+)$", re.M | re.I)
_STAGES = {
    "CONN": Stage.CONNECT,
    "HELO": Stage.HELO,
    "EHLO": Stage.HELO,
    "MAIL": Stage.MAIL,
    "RCPT": Stage.RCPT,
    "DATA": Stage.DATA,
}
MAX_BODY = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("delivery status notification",)
# ... and unless this is in its readable text (dispatch.py)
TEXT_GATE = ("technical details",)


def detect(mail: Mail) -> bool:
    subject = mail.lowered("subject").strip()
    if not subject.startswith("delivery status notification"):
        return False
    return "technical details" in mail.head(5000)


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_BODY]
    listing = _LIST.search(text)
    details = _DETAILS.search(text)
    if listing is None or details is None:
        return []
    action = Action.DELAYED if "delayed" in listing.group(1).lower() else Action.FAILED
    recipients: list[str] = []
    for line in text[listing.end() : details.start()].split("\n"):
        m = _RECIPIENT.match(line)
        if m is not None and len(recipients) <= MAX_RECIPIENTS:
            address = clean_address(m.group(1))
            if address:
                recipients.append(address)
    attempts = list(_ATTEMPT.finditer(text, details.end()))
    routes = list(_ROUTING.finditer(text, details.end()))
    findings = []
    for i, recipient in enumerate(recipients):
        attempt = next((a for a in attempts if recipient.lower() in a.group(3).lower()), None)
        if attempt is None and attempts:
            attempt = attempts[i] if len(attempts) == len(recipients) else attempts[0]
        finding = Finding(recipient=recipient, action=action)
        if attempt is None:
            # no server was tried: the routing failure naming this recipient, else the first one; or the reply in
            # a "Diagnostic-Code: smtp; 552 5.2.2 …" line of its own
            route = next((r for r in routes if recipient.lower() in r.group(1).lower()), routes[0] if routes else None)
            finding.diagnostic = " ".join(route.group(1).split()) if route else None
            if finding.diagnostic is None and (code := _DIAGNOSTIC.search(text, details.end())) is not None:
                finding.diagnostic = " ".join(code.group(1).split()) or None
        else:
            finding.stage = _STAGES.get(attempt.group(1).upper()[:4])
            finding.remote_host = attempt.group(2)
            finding.diagnostic = " ".join(attempt.group(3).split()) or None
        findings.append(finding)
    return findings
