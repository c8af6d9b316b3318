"""The values the message store hands out, and its one error type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from smtplens.errors import SmtplensError

__all__ = [
    "MessageInfo",
    "MessageState",
    "Purged",
    "RecoveryReport",
    "SessionRecord",
    "StoreError",
    "StoreStats",
    "StoredMessage",
    "TranscriptEntry",
]

MessageState = Literal["stored", "missing"]
"""``stored``: the file and its index row are there; ``missing``: the index row survived, the file did not."""

TranscriptEntry = tuple[str, str, str | None]
"""One transcript line: direction (for example ``"C"`` or ``"S"``), the line, the policy that produced it."""


class StoreError(SmtplensError):
    """The message store could not do what was asked: a full disk, a corrupt index, a store in use, bad input.

    ``path`` names the file or directory concerned when there is one; ``problem`` says what went wrong.
    """

    def __init__(self, problem: str, *, path: str | None = None) -> None:
        self.problem = problem
        self.path = path
        super().__init__(f"{path}: {problem}" if path else problem)


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """The index row of one message (everything but the message bytes)."""

    queue_id: str
    received_at: float
    client_address: str
    helo: str | None
    mail_from: str
    recipients: tuple[str, ...]
    size: int
    sha256: str
    tls: str | None
    auth_identity: str | None
    session_id: str | None
    subject: str | None
    envelope: Mapping[str, object]
    """Envelope fields beyond the named ones (MAIL and RCPT parameters, SIZE, BODY, …), as JSON values."""
    state: MessageState
    recovered: bool
    """True when the row was rebuilt from the message file's header at start-up (a crash came between the two)."""

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (recipients as a list)."""
        return {
            "queue_id": self.queue_id,
            "received_at": self.received_at,
            "client_address": self.client_address,
            "helo": self.helo,
            "mail_from": self.mail_from,
            "recipients": list(self.recipients),
            "size": self.size,
            "sha256": self.sha256,
            "tls": self.tls,
            "auth_identity": self.auth_identity,
            "session_id": self.session_id,
            "subject": self.subject,
            "envelope": dict(self.envelope),
            "state": self.state,
            "recovered": self.recovered,
        }


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message's index row and its raw bytes (``None`` when the file is missing)."""

    info: MessageInfo
    raw: bytes | None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One SMTP session: who, when, every line both ways (with the policy behind each reply) and how it ended."""

    session_id: str
    client_address: str
    started_at: float
    ended_at: float | None
    transcript: tuple[TranscriptEntry, ...]
    outcome: str | None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (the transcript as a list of ``[direction, line, policy]``)."""
        return {
            "session_id": self.session_id,
            "client_address": self.client_address,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "transcript": [list(entry) for entry in self.transcript],
            "outcome": self.outcome,
        }


@dataclass(frozen=True, slots=True)
class Purged:
    """What one ``purge()`` removed."""

    messages: int
    sessions: int


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening the store repaired after an unclean stop (all empty after a clean one)."""

    temp_files_removed: tuple[str, ...] = ()
    """Half-written message files of the version-1 layout; their senders never got a 250."""
    indexed_from_files: tuple[str, ...] = ()
    """Records (or version-1 message files) without an index row (a crash between the sync and the row's
    commit), indexed from the metadata they carry."""
    marked_missing: tuple[str, ...] = ()
    """Index rows whose file is gone; kept, with state ``missing``."""
    restored: tuple[str, ...] = ()
    """Rows marked missing earlier whose file is back."""
    deletions_finished: tuple[str, ...] = ()
    """Deletions a crash interrupted, completed."""
    quarantined: tuple[str, ...] = ()
    """Unreadable or inconsistent message files (version-1 layout), moved to ``DIR/quarantine/``."""
    torn_records: tuple[str, ...] = ()
    """Segments whose records a crash cut short, as ``<segment file>@<offset>``: the tail from there on was
    being written when the crash came (its sync had not returned, so no 250 was sent); it is ignored."""

    @property
    def clean(self) -> bool:
        """True when there was nothing to repair."""
        return not (
            self.temp_files_removed
            or self.indexed_from_files
            or self.marked_missing
            or self.restored
            or self.deletions_finished
            or self.quarantined
            or self.torn_records
        )


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counters since the store was opened; ``commits`` below ``messages_stored`` shows group commit at work."""

    messages_stored: int
    sessions_recorded: int
    commits: int
    largest_batch: int
