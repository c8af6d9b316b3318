"""OpenSMTPD's delivery status notifications.

OpenSMTPD (smtpd of OpenBSD) sends them from ``Mailer Daemon <MAILER-DAEMON@host>`` with the subject "Delivery
status notification: error" (later "failed", "delayed", "warning", "success"). The text, indented by four
spaces, opens with "Hi!" and "This is the MAILER-DAEMON, please DO NOT REPLY to this e-mail." (later "email"); a
sentence that ends with "the following list of recipients:" ("An error has occurred while attempting to deliver a
message for…", "A message is delayed for more than <time> for…") introduces one unindented line per recipient,
``user@example.org: <reason>``, where the reason is the remote server's reply (``550 5.1.1 …``) or a local one
("Envelope expired", "Domain does not exist"). A notice of success (a DSN NOTIFY=SUCCESS request; subject
"...: delivered" or "...: relayed") says "Your message was successfully delivered to these recipients." or, when
the next server offered no DSN, "Your message was relayed to these recipients." before the same lines. "Below is a
copy of the original message:" ends the list. Newer versions put the text in a MIME part followed by an RFC 3464
part and the returned message's header; the status of that part is used where the text's reason has none.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail, field_blocks
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "opensmtpd"

MAX_TEXT = 200_000
DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_SUBJECT = "delivery status notification:"
_SIGN = "this is the mailer-daemon, please do not reply"
_LIST_START = re.compile(
    r"(?:following\s+list\s+of\s+recipients:|(successfully\s+delivered|relayed)\s+to\s+these\s+recipients\.)[ \t]*\n",
    re.I,
)
_LIST_END = re.compile(r"^[ \t]*(?:Below is a copy of the original message|Please note that this is only)", re.I | re.M)
_LINE = re.compile(r"^([^\s:<>()\",;@]+@[^\s:<>()\",;@]+|<[^<>\s]+>):[ \t]*(.*)$")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = (_SUBJECT,)


def detect(mail: Mail) -> bool:
    subject = mail.lowered("subject")
    if not subject.startswith(_SUBJECT):
        return False
    return _SIGN in mail.head(3000)


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    start = _LIST_START.search(text)
    if start is None:
        return []
    intro = text[: start.start()].lower()
    subject = mail.lowered("subject")
    success = (start.group(1) or "").lower()
    if "delayed" in intro or "delayed" in subject or "warning" in subject:
        action = Action.DELAYED
    elif success.startswith("relayed") or subject.endswith("relayed"):
        action = Action.RELAYED  # the next server offered no DSN: OpenSMTPD knows only that it passed the mail on
    elif success or "success" in subject or "delivered" in subject:
        action = Action.DELIVERED
    else:
        action = Action.FAILED
    body = text[start.end() :]
    end = _LIST_END.search(body)
    if end is not None:
        body = body[: end.start()]
    statuses = _dsn_statuses(mail)
    findings: list[Finding] = []
    current: Finding | None = None
    for raw in body.split("\n"):
        line = raw.rstrip()
        m = _LINE.match(line)
        if m is not None:
            recipient = clean_address(m.group(1))
            if recipient is None:
                continue
            current = Finding(
                recipient=recipient,
                action=action,
                diagnostic=m.group(2).strip() or None,
                status=statuses.get(recipient.lower()),
            )
            findings.append(current)
            if len(findings) > MAX_RECIPIENTS:
                break
        elif current is not None and line.startswith((" ", "\t")) and line.strip():
            current.diagnostic = f"{current.diagnostic or ''} {line.strip()}".strip()  # a wrapped reason
        else:
            current = None
    return findings


def _dsn_statuses(mail: Mail) -> dict[str, str]:
    """The Status of each Final-Recipient of the report's delivery-status part (newer versions add one)."""
    part = mail.find(*DSN_TYPES)
    if part is None:
        return {}
    out: dict[str, str] = {}
    for block in field_blocks(part.text()[:100_000]):
        fields = dict(block)
        recipient = clean_address(fields.get("final-recipient"))
        status = _STATUS.search(fields.get("status") or "")
        if recipient and status:
            out.setdefault(recipient.lower(), status.group(0))
    return out
