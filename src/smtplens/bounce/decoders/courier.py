"""The Courier mail server's delivery status notifications.

Courier sends a ``multipart/report`` from ``postmaster@host`` (or "Courier mail server at <host>") with the subject
"NOTICE: mail delivery status." ("WARNING: delayed mail." for a delay) and a Message-ID that starts with
``courier.``. Its text part says "This is a delivery status notification from
<host>, running the Courier mail server, version …", then, between lines of dashes, one section per outcome
under a centred title ("UNDELIVERABLE MAIL", "DELAYS IN DELIVERING YOUR MESSAGE", "MESSAGE DELIVERED
SUCCESSFULLY", "MESSAGE DELIVERED TO A MAIL GATEWAY") and its explanation ("Your message to the following
recipients cannot be delivered:"); the title says what happened, the explanation may use other words (a relayed
message "is eventually returned as undeliverable" only perhaps). Each recipient is a paragraph: ``<user@example.org>:``
on a line of its own, the remote host indented (``mx.example.org [192.0.2.1]:``), then the SMTP dialogue as
``>>> RCPT TO:<…>`` (the command sent) and ``<<< 550 …`` (the reply, one line per reply line), or a local
explanation. The RFC 3464 part that follows gives each recipient's Status.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail, field_blocks
from smtplens.bounce.model import Action, Finding
from smtplens.reply import parse_reply

__all__ = ["decode", "detect", "name"]

name = "courier"

MAX_TEXT = 200_000
DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_SIGN = "running the courier mail server"
_RECIPIENT = re.compile(r"^<([^<>\s]+)>:[ \t]*$")
_HOST = re.compile(r"^\s+([A-Za-z0-9][A-Za-z0-9.-]*)\s*\[[0-9A-Fa-f:.]+\]:?\s*$")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SECTIONS = (
    ("mail gateway", Action.RELAYED),  # "MESSAGE DELIVERED TO A MAIL GATEWAY": no delivery report will follow
    ("cannot be delivered", Action.FAILED),
    ("undeliverable", Action.FAILED),
    ("delay", Action.DELAYED),
    ("has been delivered", Action.DELIVERED),
    ("delivered", Action.DELIVERED),
    ("relayed", Action.RELAYED),
    ("forwarded", Action.RELAYED),
)


_SUBJECTS = ("mail delivery status", "warning: delayed mail")
_SENDER = "courier mail server at"

# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("courier.", *_SUBJECTS, _SENDER)
# ... and unless this is in its readable text (dispatch.py)
TEXT_GATE = (_SIGN,)


def detect(mail: Mail) -> bool:
    message_id = mail.lowered("message-id").lstrip(" <")
    subject = mail.lowered("subject")
    if not (
        message_id.startswith("courier.") or any(s in subject for s in _SUBJECTS) or _SENDER in mail.lowered("from")
    ):
        return False
    return _SIGN in mail.head(3000)


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    dsn = _dsn(mail)
    findings: list[Finding] = []
    action = Action.FAILED
    titled = False  # the current section's title was read: its explanation does not change the action
    current: Finding | None = None
    reply: list[str] = []
    local: list[str] = []

    def close() -> None:
        if current is not None:
            lines = reply or local
            current.diagnostic = " ".join(" ".join(lines).split()) or None

    for raw in text.split("\n"):
        line = raw.rstrip()
        m = _RECIPIENT.match(line)
        if m is not None:
            close()
            reply, local = [], []
            recipient = clean_address(m.group(1))
            current = None
            if recipient is None:
                continue
            status, dsn_action = dsn.get(recipient.lower(), (None, None))
            current = Finding(recipient=recipient, action=dsn_action or action, status=status)
            findings.append(current)
            if len(findings) > MAX_RECIPIENTS:
                break
            continue
        stripped = line.strip()
        if current is None:
            lower = stripped.lower()
            if lower.startswith("---"):
                titled = False
            elif lower and not titled:
                for words, section_action in _SECTIONS:
                    if words in lower:
                        action, titled = section_action, True
                        break
            continue
        if not stripped or stripped.startswith("---"):
            close()
            current = None
            continue
        if stripped.startswith(">>>"):
            current.stage = parse_reply(stripped).stage or current.stage
        elif stripped.startswith("<<<"):
            reply.append(stripped[3:].strip())
        elif (host := _HOST.match(line)) is not None and current.remote_host is None:
            current.remote_host = host.group(1).rstrip(".")
        else:
            local.append(stripped)
    close()
    return findings


def _dsn(mail: Mail) -> dict[str, tuple[str | None, Action | None]]:
    """Each Final-Recipient's Status and Action from the delivery-status part."""
    part = mail.find(*DSN_TYPES)
    if part is None:
        return {}
    out: dict[str, tuple[str | None, Action | None]] = {}
    for block in field_blocks(part.text()[:100_000]):
        fields = dict(block)
        recipient = clean_address(fields.get("final-recipient"))
        if not recipient:
            continue
        status = _STATUS.search(fields.get("status") or "")
        out.setdefault(recipient.lower(), (status.group(0) if status else None, Action.parse(fields.get("action"))))
    return out
