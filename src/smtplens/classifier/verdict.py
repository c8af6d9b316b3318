"""The classifier's answer: reason, transient or permanent, hard or soft, what to do, and why."""

from __future__ import annotations

from typing import NamedTuple

from smtplens.knowledge.reasons import ReasonInfo
from smtplens.model import Reply, ReplyClass, Stage

__all__ = ["Decision", "DecisionKey", "Evidence", "Verdict"]


class Evidence(NamedTuple):
    """One thing that decided or informed the verdict: a matched phrase, a code, the provider, an override."""

    kind: str  # phrase | code | provider | override | none
    detail: str  # the phrase, the code or the note
    reason: str | None
    table: str  # which data table (file) it came from
    source: str  # the table row's source or sample

    def to_dict(self) -> dict[str, object]:
        return dict(self._asdict())


class Verdict(NamedTuple):
    """What a reply means for the sender (an immutable value)."""

    reply: Reply
    info: ReasonInfo  # the reason with its texts in ``lang``
    permanent: bool
    retry: bool
    retry_after: int | None
    provider: str | None
    evidence: tuple[Evidence, ...]
    confidence: float
    notes: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return self.info.reason.id

    @property
    def sisimai(self) -> str:
        return self.info.reason.sisimai

    @property
    def hard_bounce(self) -> bool:
        return self.info.reason.hard and self.permanent

    @property
    def action(self) -> str:
        """What the sender should do."""
        return self.info.action

    @property
    def operator_action(self) -> str:
        """What the receiving server's operator would check."""
        return self.info.operator

    @property
    def lang(self) -> str:
        return self.info.lang

    @property
    def reason_title(self) -> str:
        return self.info.title

    @property
    def meaning(self) -> str:
        return self.info.meaning

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


Decision = tuple[ReasonInfo, bool, bool, int | None, str | None, tuple[Evidence, ...], float, tuple[str, ...]]
"""The fields of a :class:`Verdict` after its reply, in order."""

DecisionKey = tuple[tuple[int, ...], str | None, str | None, str | None, ReplyClass | None, Stage | None, str]
"""What a :data:`Decision` depends on (see ``classifier.engine``): the patterns found in the text (a key of
``Matcher.scan``), the provider id of the remote host, the basic and enhanced codes, the reply class, the SMTP
stage the reply answered (the greeting and MAIL FROM change what a text means), the language."""
