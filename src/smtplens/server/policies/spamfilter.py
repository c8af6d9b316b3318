"""The contract of an external spam filter (SpamAssassin's spamd, rspamd) and what it answers.

A filter scans the message with what the server knows of the transaction and returns a :class:`SpamVerdict`;
when it cannot be reached or answers nonsense it raises :class:`SpamFilterError`, which
:class:`~smtplens.server.policies.spam.SpamPolicy` turns into a deferral (never a 5xx).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from smtplens.errors import SmtplensError
from smtplens.server.session import Envelope

__all__ = ["SpamAction", "SpamFilter", "SpamFilterError", "SpamVerdict"]


class SpamFilterError(SmtplensError):
    """The filter could not be asked (connection refused, timeout) or its answer could not be read."""


class SpamAction(StrEnum):
    """What the filter recommends: rspamd's actions, to which spamd's spam / not spam map."""

    ACCEPT = "accept"
    ADD_HEADER = "add header"  # deliver, marked as spam
    DEFER = "defer"  # rspamd's "soft reject" and "greylist"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class SpamVerdict:
    """The filter's score against its threshold, the rules (symbols) that matched, and its advice."""

    action: SpamAction
    score: float
    threshold: float
    symbols: tuple[str, ...] = ()


class SpamFilter(Protocol):
    @property
    def name(self) -> str: ...

    async def scan(self, message: bytes, envelope: Envelope) -> SpamVerdict: ...
