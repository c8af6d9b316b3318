"""Refusals sent as message disposition notifications: RFC 5429's Sieve ``reject`` and delivery agents that answer
with an MDN instead of a delivery status notification (Dovecot's LDA and LMTP: "Automatically rejected mail").

The mail is a ``multipart/report`` (``report-type=disposition-notification``) whose
``message/disposition-notification`` part (RFC 8098) says ``Disposition: automatic-action/MDN-sent-automatically;
deleted``: the recipient's mail system refused the message and deleted it, automatically (RFC 5429 section 2.2.2).
The part names the recipient (``Final-Recipient``) and the refused message (``Original-Message-ID``); the
human-readable part gives the reason ("Your message to <user@example.org> was automatically rejected:" and, on
the next line, "Quota exceeded"), which is the diagnostic the classifier reads. Other dispositions (displayed,
processed, a receipt a person asked for) are no refusal and are left alone.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import clean_address
from smtplens.bounce.mime import Mail, field_blocks
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "mdn"

MDN_TYPES = ("message/disposition-notification", "message/global-disposition-notification")  # RFC 8098, RFC 6533
_REFUSED = re.compile(r"^\s*automatic-action\s*/\s*MDN-sent-automatically\s*;\s*deleted\b", re.I)
_REJECTED = re.compile(r"was automatically rejected:?\s*(.*)", re.I | re.S)
MAX_TEXT = 4000


# detect() is false unless one of these is in the mail's header (dispatch.py): an MDN is a top-level report
GATE = ("disposition-notification",)


def detect(mail: Mail) -> bool:
    part = mail.find(*MDN_TYPES)
    return part is not None and "deleted" in part.text()[:MAX_TEXT].lower()


def decode(mail: Mail) -> list[Finding]:
    part = mail.find(*MDN_TYPES)
    if part is None:
        return []
    fields: dict[str, str] = {}
    for block in field_blocks(part.text()[:MAX_TEXT]):
        for n, v in block:
            fields.setdefault(n, v)
    if not _REFUSED.match(fields.get("disposition") or ""):
        return []
    recipient = clean_address(fields.get("final-recipient")) or clean_address(fields.get("original-recipient"))
    if not recipient:
        return []
    return [  # an MDN reports on one recipient (RFC 8098 section 3.1)
        Finding(
            recipient=recipient,
            action=Action.FAILED,
            diagnostic=_reason(mail),
            reporting_mta=(fields.get("reporting-ua") or "").split(";", 1)[0].strip() or None,  # its host name
        )
    ]


def _reason(mail: Mail) -> str | None:
    """The refusal's reason from the human-readable part: the words after "was automatically rejected:", else the
    part's first paragraph."""
    text = mail.text[:MAX_TEXT].strip()
    rejected = _REJECTED.search(text)
    if rejected is not None and rejected.group(1).strip():
        text = rejected.group(1)
    paragraph = text.split("\n\n", 1)[0]
    return " ".join(paragraph.split()) or None
