"""Automatic replies (RFC 3834): vacation and out-of-office messages, and other auto-responders.

RFC 3834 section 5 marks an automatic reply with ``Auto-Submitted: auto-replied``; ``auto-generated`` is not a
reply (it marks DSNs and other reports, read by the DSN decoders tried before this one). Responders that predate
the RFC say so with their own fields (``X-Autoreply``, ``X-Autorespond``, ``Precedence: auto_reply``,
``X-Apple-Action: VACATION``) or only with a subject ("Out of Office", "Automatic reply", "Abwesenheitsnotiz").
The person who is away sent the reply: the recipient is the reply's ``From``, the original sender its ``To``.

Some auto-replies say the mailbox is gone ("this inbox is no longer in use"): those are read as what they are,
a failure of that recipient, with the reason the classifier finds in the text.
"""

from __future__ import annotations

from smtplens.bounce.decoders import looks_like_bounce, parse_date
from smtplens.bounce.mime import Mail, first_address
from smtplens.bounce.model import Finding, Kind
from smtplens.classifier import classify

__all__ = ["decode", "detect", "name"]

name = "rfc3834"

_MARKER_FIELDS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-mail-autoreply", "x-vacation")
# Subjects auto-responders write: words that say so wherever they stand, and words that say so at the start.
_SUBJECT_WORDS = (
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "automatic reply",
    "automatic response",
    "autorespons",
    "out of office",
    "out of the office",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "reponse automatique",
    "respuesta automática",
    "respuesta automatica",
    "risposta automatica",
    "自動応答",
    "自動返信",
)
_SUBJECT_STARTS = (
    "vacation",
    "away from",
    "away until",
    "on leave",
    "absence",
    "abwesend",
    "fuera de la oficina",
    "不在",
)
_NO_REPLY = ("noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply")
# Reasons that mean the mailbox itself is gone, when an auto-reply's text says so.
_GONE = frozenset({"user_unknown", "mailbox_disabled", "mailbox_moved"})
_EXCERPT = 400


def detect(mail: Mail) -> bool:
    h = mail.headers
    auto = mail.lowered("auto-submitted").strip()
    if auto.startswith("auto-replied"):
        return not _bounce_sender(mail)
    if auto.startswith("auto-generated"):
        return False
    if any(f in h for f in _MARKER_FIELDS):
        return True
    if mail.lowered("precedence").strip() == "auto_reply":
        return True
    if (h.get("x-apple-action") or "").strip().upper() == "VACATION":
        return True
    subject = mail.lowered("subject").strip()
    if not subject.startswith(_SUBJECT_STARTS):
        for word in _SUBJECT_WORDS:
            if word in subject:
                break
        else:
            return False
    return not looks_like_bounce(mail)


def _bounce_sender(mail: Mail) -> bool:
    """Bounces of some MTAs carry ``Auto-Submitted: auto-replied`` too; they come from the mailer daemon."""
    sender = mail.lowered("from")
    return "mailer-daemon" in sender or "postmaster" in sender or mail.find("message/delivery-status") is not None


def decode(mail: Mail) -> list[Finding]:
    h = mail.headers
    recipient = first_address(h.get("from")) or first_address(h.get("sender"))
    reply_to = first_address(h.get("reply-to"))
    if reply_to and (recipient is None or recipient.lower().startswith(_NO_REPLY)):
        recipient = reply_to  # a responder that sends from a no-reply address names the person in Reply-To
    if not recipient:
        return []
    finding = Finding(
        recipient=recipient,
        reason="auto_reply",
        kind=Kind.AUTO_REPLY,
        sender=first_address(h.get("to")),
        timestamp=parse_date(h.get("date")),
    )
    excerpt = " ".join(mail.text[: _EXCERPT * 2].split())[:_EXCERPT]
    if excerpt:
        finding.diagnostic = excerpt
        verdict = classify(excerpt)
        if verdict.reason in _GONE and any(e.kind == "phrase" for e in verdict.evidence):
            finding.reason = None  # classified again by the pipeline, as a failure
            finding.kind = Kind.BOUNCE
    return [finding]
