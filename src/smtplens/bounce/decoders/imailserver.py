"""Ipswitch IMail Server non-delivery notices.

A plain-text mail from ``"Postmaster" <postmaster@…>`` (with a ``Sender:`` of the same address) whose subject
begins ``Undeliverable Mail``, older versions with ``X-Mailer: <SMTP32 v…>``. Each failed recipient is a line
of the form ``<reason>: <address>`` ("Unknown user: …", "Invalid final delivery userid: …") or ``undeliverable
to <address>``; when the remote server refused the message, ``Body of message generated response:`` follows
with its reply, one line per reply line: the server answered the message's body, the end of the DATA stage.
``Original message follows.`` starts the returned message. "Delivery failed N attempts: <address>" is IMail's
own word that it gave up after retrying (the reason is then ``expired``, unless a server's reply follows).
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["decode", "detect", "name"]

name = "imailserver"

_RECIPIENT = re.compile(r"^\s*([A-Za-z][^:<>@\n]{2,80}?)(?::\s*|\s+)<?([^\s<>\"@:]+@[^\s<>\"]+?)>?\s*$")
_NOT_REASONS = frozenset({"to", "cc", "bcc", "from", "reply-to", "sender", "return-path", "delivered-to"})
_RESPONSE = "body of message generated response:"
_ORIGINAL = "Original message follows."
_GAVE_UP = re.compile(r"Delivery failed \d+ attempts?$", re.I)  # IMail retried until its queue limit
MAX_TEXT = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("<smtp32 v", "undeliverable mail")


def detect(mail: Mail) -> bool:
    headers = mail.headers
    if (headers.get("x-mailer") or "").lstrip().startswith("<SMTP32 v"):
        return True
    subject = (headers.text("subject") or "").strip()
    return (
        subject.startswith("Undeliverable Mail")
        and "sender" in headers
        and not subject.startswith("Undeliverable Mail:")
    )


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    end = text.find(_ORIGINAL)
    if end >= 0:
        text = text[:end]
    findings: list[Finding] = []
    response: list[str] = []
    reading = False
    for line in text.split("\n"):
        stripped = line.strip()
        if reading:
            if stripped:
                response.append(stripped)
                continue
            if response:
                reading = False
            continue
        if stripped.lower() == _RESPONSE:
            reading = bool(findings)
            continue
        m = _RECIPIENT.match(line)
        if m is None or m.group(1).strip().lower() in _NOT_REASONS:
            continue
        address = clean_address(m.group(2))
        if address is None or len(findings) > MAX_RECIPIENTS:
            continue
        _close(findings, response)
        said = m.group(1).strip()
        reason = "expired" if _GAVE_UP.match(said) else None
        findings.append(Finding(recipient=address, action=Action.FAILED, diagnostic=said, reason=reason))
    _close(findings, response)
    return findings


def _close(findings: list[Finding], response: list[str]) -> None:
    """The remote server's reply (read after the last recipient) replaces the reason line as its diagnostic."""
    if findings and response:
        findings[-1].diagnostic = " ".join(response)
        findings[-1].stage = Stage.END_OF_DATA
        findings[-1].reason = None  # the server's reply says why
    response.clear()
