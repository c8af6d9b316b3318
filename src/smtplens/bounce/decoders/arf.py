"""Abuse and complaint feedback reports: RFC 5965 ARF, with RFC 6591 authentication failure reports.

A report is a ``multipart/report; report-type=feedback-report`` whose ``message/feedback-report`` part says the
``Feedback-Type`` (abuse, fraud, virus, auth-failure, not-spam, other) and usually the recipient who complained
(``Original-Rcpt-To``, ``Removal-Recipient`` of RFC 6650); the reported message follows as ``message/rfc822``
or ``text/rfc822-headers``. Where the report names no recipient, the complainer is the reported message's
``To``; where that is hidden too, the recipient is the empty string. Also read: Microsoft's older Junk Mail
Reporting Program mails ("complaint about message from <ip>", the reported message attached with the
complainer in ``X-HmXmrOriginalRecipient``), which predate ARF.
"""

from __future__ import annotations

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address, parse_date
from smtplens.bounce.mime import Headers, Mail, addresses, field_blocks, first_address
from smtplens.bounce.model import Finding, Kind

__all__ = ["decode", "detect", "name"]

name = "arf"

REPORT_TYPES = ("message/feedback-report",)
_JMRP_SUBJECT = "complaint about message from "
_JMRP_RECIPIENT = "x-hmxmroriginalrecipient"


def detect(mail: Mail) -> bool:
    if mail.ctype == "multipart/report":
        if mail.root.params.get("report-type", "").lower() == "feedback-report":
            return True
        return mail.find(*REPORT_TYPES) is not None
    if mail.find(*REPORT_TYPES) is not None:
        return True
    return _is_jmrp(mail) or _JMRP_RECIPIENT in mail.headers


def _is_jmrp(mail: Mail) -> bool:
    subject = mail.lowered("subject").strip()
    return subject.startswith(_JMRP_SUBJECT) and mail.original is not None


def decode(mail: Mail) -> list[Finding]:
    part = mail.find(*REPORT_TYPES)
    fields: dict[str, str] = {}
    rcpts: list[str] = []
    if part is not None:
        for block in field_blocks(part.text()):
            for n, v in block:
                fields.setdefault(n, v)
                if n == "original-rcpt-to" and len(rcpts) <= MAX_RECIPIENTS and (address := clean_address(v)):
                    rcpts.append(address)
    original = mail.original
    if part is None and _JMRP_RECIPIENT in mail.headers:
        original = mail.headers  # the inline form: the mail is the reported message
    if not rcpts:
        rcpts = _complainers(fields, original)
    if not rcpts:
        if part is None and original is None:
            return []
        rcpts = [""]  # the report hides who complained ("To: undisclosed-recipients"); it is still a complaint
    feedback_type = (fields.get("feedback-type") or ("abuse" if part is None else "other")).strip().lower()
    sender = clean_address(fields.get("original-mail-from")) or _original_sender(original)
    when = parse_date(fields.get("arrival-date") or fields.get("received-date")) or parse_date(mail.headers.get("date"))
    reporter = fields.get("reporting-mta")
    reporting_mta = reporter.split(";", 1)[-1].strip() if reporter else None
    return [
        Finding(
            recipient=rcpt,
            reason="feedback",
            kind=Kind.FEEDBACK,
            feedback_type=feedback_type,
            sender=sender,
            timestamp=when,
            reporting_mta=reporting_mta or None,
            diagnostic=_describe(fields),
        )
        for rcpt in rcpts
    ]


def _complainers(fields: dict[str, str], original: Headers | None) -> list[str]:
    removal = clean_address(fields.get("removal-recipient"))
    if removal:
        return [removal]
    if original is None:
        return []
    hotmail = clean_address(original.get(_JMRP_RECIPIENT))
    if hotmail:
        return [hotmail]
    return addresses(original.get("to"))[:1]


def _original_sender(original: Headers | None) -> str | None:
    if original is None:
        return None
    return first_address(original.get("from")) or first_address(original.get("return-path"))


def _describe(fields: dict[str, str]) -> str | None:
    """A one-line summary of the report's evidence (source IP, user agent, authentication results)."""
    keys = ("source-ip", "user-agent", "reported-domain", "authentication-results", "auth-failure")
    parts = [f"{k}: {fields[k]}" for k in keys if fields.get(k)]
    return "; ".join(parts) or None
