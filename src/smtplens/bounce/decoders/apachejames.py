"""Bounces of Apache James (its bounce mailet, as deployed by some gateways).

A ``multipart/mixed`` mail (Message-ID of JavaMail, a subject beginning ``[BOUNCE]``, or received by "JAMES
SMTP Server") whose text says ``Error: <summary>``, then "Error message below:" with the remote server's reply
on the following lines, then "Message details:" listing the returned message as indented ``Name: value`` lines
(``Subject``, ``Sent date``, ``MAIL FROM``, ``RCPT TO`` — the failed recipient(s), ``From``, ``To``, ``Size (in
bytes)``, …). Without the reply (the mailet's notice for a failure of its own) the text before "Message
details:", from the ``Error:`` line on, is the explanation.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "apachejames"

_BELOW = re.compile(r"^[ \t]*Error message below:[ \t]*$", re.M | re.I)
_DETAILS = re.compile(r"^[ \t]*Message details:[ \t]*$", re.M | re.I)
_ERROR = re.compile(r"^[ \t]*Error:[ \t]*", re.M)
_FIELD = re.compile(r"^[ \t]+([A-Za-z][A-Za-z ()]*?):[ \t]*(.*)$", re.M)
MAX_BODY = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("javamail", "[bounce]", "james smtp server")


def detect(mail: Mail) -> bool:
    message_id = mail.lowered("message-id")
    subject = mail.lowered("subject").lstrip()
    if "javamail" not in message_id and not subject.startswith("[bounce]") and not mail.in_header("(JAMES"):
        return False
    head = mail.head(5000)
    return "error message below:" in head or "message details:" in head


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_BODY]
    below = _BELOW.search(text)
    details = _DETAILS.search(text, below.end() if below else 0)
    if below is not None:
        start = below.end()
    elif details is not None:
        error = _ERROR.search(text, 0, details.start())
        start = error.end() if error else details.start()
    else:
        return []
    diagnostic = " ".join(text[start : details.start() if details else len(text)].split()) or None
    fields: dict[str, str] = {}
    recipients: list[str] = []
    if details is not None:
        for m in _FIELD.finditer(text, details.end()):
            key = m.group(1).strip().lower()
            if key == "rcpt to":
                for address in re.split(r"[,;\s]+", m.group(2)):
                    found = clean_address(address)
                    if found and "@" in found and len(recipients) <= MAX_RECIPIENTS:
                        recipients.append(found)
            else:
                fields.setdefault(key, m.group(2).strip())
    sender = clean_address(fields.get("mail from"))
    return [Finding(recipient=r, action=Action.FAILED, diagnostic=diagnostic, sender=sender) for r in recipients]
