"""The values of bounce decoding: what a decoder finds per recipient, and the explained result per mail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from smtplens.classifier import Verdict
from smtplens.model import Stage

__all__ = ["Action", "BounceResult", "Finding", "Kind", "Recipient"]


class Kind(StrEnum):
    """What a mail is, for bounce processing."""

    BOUNCE = "bounce"  # a delivery failure or delay report
    FEEDBACK = "feedback"  # an abuse/complaint feedback report (RFC 5965 ARF)
    AUTO_REPLY = "auto_reply"  # a vacation message or another auto-responder (RFC 3834)
    DELIVERY_NOTICE = "delivery_notice"  # a success report: delivered, relayed or expanded (RFC 3464)
    NOT_BOUNCE = "not_bounce"  # ordinary mail, or a format no decoder recognised


class Action(StrEnum):
    """The DSN ``Action`` of a recipient (RFC 3464 section 2.3.3)."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"

    @classmethod
    def parse(cls, text: str | None) -> Action | None:
        """The action named by a field value; ``failed (bad address)`` is ``failed``, unknown words are None."""
        if not text:
            return None
        word = text.strip().split(None, 1)[0].lower().rstrip(";,.") if text.strip() else ""
        return _ACTIONS.get(word)


# Postfix and Sendmail address verification (sendmail -bv, Postfix verify) report "deliverable" and
# "undeliverable": the outcome the address would have had. SendGrid writes "expired" for a message it gave up on.
_ACTIONS = {a.value: a for a in Action} | {
    "deliverable": Action.DELIVERED,
    "undeliverable": Action.FAILED,
    "expired": Action.FAILED,
}
SUCCESS_ACTIONS = frozenset({Action.DELIVERED, Action.RELAYED, Action.EXPANDED})


@dataclass(slots=True)
class Finding:
    """What a decoder read about one recipient, before classification.

    Decoders fill what their format says and leave the rest empty; the pipeline adds what the mail as a whole
    says (original message, dates) and the classifier's verdict. ``reason`` is set only when the format itself
    decides it (a feedback report, an auto-reply); otherwise the classifier decides from ``diagnostic``, and
    ``hint`` (the reporting MTA's own category, as PowerMTA writes one) where only codes spoke.
    """

    recipient: str
    original_recipient: str | None = None
    action: Action | None = None
    status: str | None = None  # enhanced status code, e.g. "5.1.1"
    reply_code: str | None = None  # basic reply code, e.g. "550"
    diagnostic: str | None = None  # the remote reply text or the reporting MTA's explanation
    diagnostic_type: str | None = None  # "smtp", "x-unix", … (RFC 3464 diagnostic-type)
    remote_host: str | None = None
    reporting_mta: str | None = None
    stage: Stage | None = None
    timestamp: datetime | None = None
    reason: str | None = None
    feedback_type: str | None = None
    sender: str | None = None
    kind: Kind = Kind.BOUNCE
    # the reporting MTA's own category of the failure (a taxonomy id), used where the reply's words decide nothing
    hint: str | None = None


class Recipient(NamedTuple):
    """One recipient of a bounce, feedback report or auto-reply, explained (an immutable value, like the
    classifier's :class:`~smtplens.classifier.Verdict`: a named tuple is built at C speed, which the pipeline's
    hot path needs)."""

    recipient: str
    reason: str  # a taxonomy id (``smtplens reasons``)
    kind: Kind
    decoder: str
    action: Action | None = None
    status: str | None = None
    reply_code: str | None = None
    diagnostic: str | None = None
    diagnostic_type: str | None = None
    remote_host: str | None = None
    reporting_mta: str | None = None
    stage: Stage | None = None
    hard_bounce: bool = False
    timestamp: datetime | None = None
    original_recipient: str | None = None
    sender: str | None = None  # the sender of the original message
    message_id: str | None = None  # of the original message
    subject: str | None = None  # of the original message
    list_id: str | None = None  # of the original message
    feedback_type: str | None = None
    verdict: Verdict | None = None  # the classifier's answer, when the diagnostic was classified

    @property
    def sisimai(self) -> str:
        """The reason in Sisimai's vocabulary (the taxonomy's crosswalk)."""
        from smtplens.knowledge.reasons import reason_table

        return reason_table().reasons[self.reason].sisimai

    def to_dict(self) -> dict[str, object]:
        """The ``bounce --json`` fields of one recipient (without ``file``); docs/json.md describes them."""
        from smtplens.knowledge.reasons import reason_table

        v = self.verdict
        # the pipeline may decide otherwise than the verdict on the diagnostic alone (a delivery that expired)
        info = v.info if v is not None and v.reason == self.reason else reason_table().info(self.reason)
        return {
            "kind": self.kind.value,
            "decoder": self.decoder,
            "recipient": self.recipient,
            "original_recipient": self.original_recipient,
            "sender": self.sender,
            "reason": self.reason,
            "reason_title": info.title,
            "sisimai": info.reason.sisimai,
            "status": self.status,
            "reply_code": self.reply_code,
            "action": self.action.value if self.action else None,
            "hard_bounce": self.hard_bounce,
            "diagnostic": self.diagnostic,
            "diagnostic_type": self.diagnostic_type,
            "remote_host": self.remote_host,
            "reporting_mta": self.reporting_mta,
            "stage": self.stage.value if self.stage else None,
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
            "message_id": self.message_id,
            "subject": self.subject,
            "list_id": self.list_id,
            "feedback_type": self.feedback_type,
            # the classifier's verdict on the diagnostic (null where the format decided: feedback, auto-reply)
            "permanent": v.permanent if v else None,
            "retry": v.retry if v else None,
            "retry_after": v.retry_after if v else None,
            "provider": v.provider if v else None,
            "confidence": v.confidence if v else None,
            "sender_action": info.action,
            "operator_action": info.operator,
            "evidence": [e.to_dict() for e in v.evidence] if v else [],
            "notes": list(v.notes) if v else [],
        }


class BounceResult(NamedTuple):
    """What one mail is and, per recipient in the order the mail names them, what happened (an immutable value,
    a named tuple like :class:`Recipient`)."""

    kind: Kind
    decoder: str | None
    recipients: tuple[Recipient, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def is_bounce(self) -> bool:
        return self.kind is Kind.BOUNCE

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "decoder": self.decoder,
            "recipients": [r.to_dict() for r in self.recipients],
            "warnings": list(self.warnings),
        }
