"""A store that keeps nothing: what the adapter needs from a store, and an implementation that drops it all.

``SmtpServer`` only ever calls ``store()`` (after DATA, before the 250) and ``record_session()`` (when a
connection ends), or instead ``record_session_soon()`` when the store has it: the same without waiting for the
record (such a store logs its own failures, and its ``settle()``, if any, waits for what is queued).
:class:`MessageSink` names that contract; :class:`~smtplens.server.store.MessageStore` fulfils it durably and
:class:`NullStore` by counting and forgetting. ``NullStore`` is for measuring the protocol side alone
(``bench/server.py`` runs the server with and without the durable store) and for a sink that must never touch
the disk; a 250 from a server running on it promises nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from smtplens.server.store_envelope import EnvelopeLike
from smtplens.server.store_files import QueueIds

__all__ = ["MessageSink", "NullStore"]


class MessageSink(Protocol):
    """The part of a store the SMTP adapter uses."""

    async def store(
        self, envelope: EnvelopeLike, message: bytes, session_id: str | None = None, *, alone: bool = False
    ) -> str:
        """Take an accepted message; return its queue id (for the ``250 … queued as ID`` reply). ``alone``: the
        caller has nothing else to do meanwhile (one connection open), so the store may block instead of
        suspending."""
        ...

    async def record_session(
        self,
        session_id: str,
        *,
        client_address: str,
        started_at: float,
        ended_at: float | None = None,
        transcript: Sequence[Sequence[str | None]] = (),
        outcome: str | None = None,
    ) -> None:
        """Keep a finished session's transcript."""
        ...


class NullStore:
    """Accepts every message and transcript, keeps none; counts them (``messages``, ``octets``, ``sessions``)."""

    def __init__(self) -> None:
        self._ids = QueueIds()
        self.messages = 0
        self.octets = 0
        self.sessions = 0

    async def store(
        self, envelope: EnvelopeLike, message: bytes, session_id: str | None = None, *, alone: bool = False
    ) -> str:
        """A fresh queue id, in the durable store's format; the message is dropped."""
        self.messages += 1
        self.octets += len(message)
        return self._ids.next()

    async def record_session(
        self,
        session_id: str,
        *,
        client_address: str,
        started_at: float,
        ended_at: float | None = None,
        transcript: Sequence[Sequence[str | None]] = (),
        outcome: str | None = None,
    ) -> None:
        """Count the session; the transcript is dropped."""
        self.sessions += 1

    def record_session_soon(
        self,
        session_id: str,
        *,
        client_address: str,
        started_at: float,
        ended_at: float | None = None,
        transcript: Sequence[Sequence[str | None]] = (),
        outcome: str | None = None,
    ) -> None:
        """:meth:`record_session` without a coroutine (the server's end of a connection)."""
        self.sessions += 1

    def close(self) -> None:
        """Nothing to release; here so callers can close any store alike."""

    async def aclose(self) -> None:
        """Nothing to release."""
