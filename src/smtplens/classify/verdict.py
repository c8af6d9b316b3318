"""The classifier's answer: reason, transient or permanent, hard or soft, what to do, and why."""

from __future__ import annotations

from dataclasses import dataclass

from smtplens.model import Reply

__all__ = ["Evidence", "Verdict"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """One thing that decided or informed the verdict: a matched phrase, a code, the provider, an override."""

    kind: str  # phrase | code | provider | override | none
    detail: str  # the phrase, the code or the note
    reason: str | None
    table: str  # which data table (file) it came from
    source: str  # the table row's source or sample

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "detail": self.detail,
            "reason": self.reason,
            "table": self.table,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a reply means for the sender."""

    reply: Reply
    reason: str
    sisimai: str
    permanent: bool
    hard_bounce: bool
    retry: bool
    retry_after: int | None
    action: str
    operator_action: str
    provider: str | None
    evidence: tuple[Evidence, ...]
    confidence: float
    lang: str
    reason_title: str
    meaning: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """The ``explain --json`` fields: the ``parse --json`` fields plus the verdict."""
        out = self.reply.to_dict()
        out.update(
            {
                "reason": self.reason,
                "reason_title": self.reason_title,
                "meaning": self.meaning,
                "sisimai": self.sisimai,
                "permanent": self.permanent,
                "hard_bounce": self.hard_bounce,
                "retry": self.retry,
                "retry_after": self.retry_after,
                "action": self.action,
                "operator_action": self.operator_action,
                "provider": self.provider,
                "evidence": [e.to_dict() for e in self.evidence],
                "confidence": self.confidence,
                "notes": list(self.notes),
                "lang": self.lang,
            }
        )
        return out
