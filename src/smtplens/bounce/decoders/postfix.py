"""Postfix's own bounce, delay and success notices, as far as the text says what happened.

Postfix sends "Undelivered Mail Returned to Sender" (also "Delayed Mail (still being retried)", "Successful Mail
Delivery Report") from ``MAILER-DAEMON (Mail Delivery System)``. The text part opens with "This is the mail
system at host <name>." (older versions: "This is the Postfix program at host <name>."), an apology and the
signature "The mail system" / "The Postfix program"; then one paragraph per recipient:
``<user@example.org>: host mx.example.org[192.0.2.1] said: 550 5.1.1 No such user (in reply to RCPT TO
command)``, continuation lines indented by four spaces, ``(expanded from <alias@example.org>)`` after an address
reached through an alias, or a local explanation instead of a remote reply ("connect to …: Connection timed
out", "Host or domain name not found"). Current versions add an RFC 3464 part that the standard decoder reads;
this decoder reads the notices without one (old versions, copies forwarded as plain text), and the reports whose
delivery-status part names no recipient ("--- Delivery report unavailable ---"), where the recipients are those of
the returned message.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail, addresses
from smtplens.bounce.model import Action, Finding
from smtplens.reply import parse_reply

__all__ = ["decode", "detect", "name"]

name = "postfix"

MAX_TEXT = 200_000
DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_SUBJECTS = ("undelivered mail", "delayed mail", "successful mail delivery", "mail delivery status report")
_BODY_SIGNS = ("this is the mail system at host", "this is the postfix program at host", "the postfix program")
_UNAVAILABLE = "delivery report unavailable"
_DSN_IN_TEXT = re.compile(r"^(?:Final-Recipient|Original-Recipient)[ \t]*:", re.I | re.M)
# A recipient paragraph: "<address>" at the start of a line, an optional "(expanded from <alias>)", a colon.
_PARAGRAPH = re.compile(
    r"^<([^<>\s]*@[^<>\s]*|[^<>\s]+)>((?:\s*\(expanded\s+from\s*<[^<>]*>\))?):[ \t]*"
    r"([^\n]*(?:\n[ \t]+[^\n]*)*)",
    re.M,
)
_EXPANDED = re.compile(r"<([^<>]*)>")
_SAID = re.compile(r"^host\s+([A-Za-z0-9][A-Za-z0-9.-]*)\s*\[[^\]]*\](?::\d+)?\s+said:\s*", re.I)
_IN_REPLY = re.compile(r"\s*\(in reply to (?:the )?[A-Za-z][A-Za-z ]{0,30}?\s+command\)\s*$", re.I)


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mail delivery system", *_SUBJECTS)


def detect(mail: Mail) -> bool:
    subject = mail.lowered("subject")
    sender = mail.lowered("from")
    if "mail delivery system" not in sender and not _any_in(_SUBJECTS, subject):
        return False
    text = mail.head(MAX_TEXT)
    if not _any_in(_BODY_SIGNS, text):
        return False
    # Reports with a delivery-status part are the standard decoder's, unless that part names nobody.
    return mail.find(*DSN_TYPES) is None or _UNAVAILABLE in text


def _any_in(words: tuple[str, ...], text: str) -> bool:
    """``any(w in text for w in words)`` without the generator (detect() runs for every mail)."""
    for word in words:  # noqa: SIM110 (a loop: no generator to create)
        if word in text:
            return True
    return False


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    if mail.find(*DSN_TYPES) is None and _DSN_IN_TEXT.search(text):
        return []  # a whole report written into the text: the standard decoder reads its fields
    action = _action(mail, text)
    findings: list[Finding] = []
    for m in _PARAGRAPH.finditer(text):
        recipient = clean_address(m.group(1))
        if recipient is None:
            continue
        expanded = _EXPANDED.search(m.group(2))
        findings.append(_finding(recipient, expanded.group(1) if expanded else None, m.group(3), action))
        if len(findings) > MAX_RECIPIENTS:
            break
    if not findings and _UNAVAILABLE in text.lower():
        original = mail.original
        if original is not None:
            found = addresses(original.get("to"))[: MAX_RECIPIENTS + 1]
            findings = [Finding(recipient=a, action=Action.FAILED) for a in found]
    return findings


def _action(mail: Mail, text: str) -> Action:
    subject = (mail.headers.get("subject") or "").lower()
    if "successful mail delivery" in subject:
        return Action.DELIVERED
    if "delayed mail" in subject or "this is a warning only" in text[:5000].lower():
        return Action.DELAYED
    return Action.FAILED


def _finding(recipient: str, expanded_from: str | None, body: str, action: Action) -> Finding:
    explanation = " ".join(body.split())
    stage = parse_reply(explanation).stage if "in reply to" in explanation.lower() else None
    remote_host = None
    said = _SAID.match(explanation)
    if said is not None:
        remote_host = said.group(1).rstrip(".")
        explanation = explanation[said.end() :]
    explanation = _IN_REPLY.sub("", explanation)
    original = clean_address(expanded_from) if expanded_from else None
    return Finding(
        recipient=recipient,
        original_recipient=original if original and original != recipient else None,
        action=action,
        diagnostic=explanation or None,
        remote_host=remote_host,
        stage=stage,
    )
