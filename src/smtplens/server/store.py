"""The durable message store: messages appended to segment files plus an SQLite index, both before the 250.

Layout of the data directory ``DIR``::

    DIR/lock              held (flock) while a store is open: one server per directory
    DIR/index.sqlite      the index (WAL journal): messages, sessions and segments tables
    DIR/segments/<n>.seg  the messages, one record each (``store_records``: metadata, bytes, checksum, mark)
    DIR/messages/<id>     a data directory of the version-1 layout: one file per message, still read
    DIR/quarantine/       version-1 message files recovery could not make sense of

``store()`` hands the message to the writer thread (``store_commit``), which takes every store waiting at that
moment as a group: it appends their records to the active segment (``store_segments``: zero-filled ahead of
time, so writing it changes no file-system metadata), syncs the segment once for the whole group
(``fdatasync``), then inserts their index rows in one transaction and commits it without an fsync of its own
(the WAL is synced by the next durable commit, a checkpoint or closing). Once the sync returned, the message
survives a crash: its record carries everything its row holds and start-up recovery indexes the records a crash
left without a row (``store_recovery``). ``store()`` returns the queue id once the sync returned and the row is
in the transaction (an error there, such as a full index, still fails the store and voids the record): the
session's 250 after DATA promises only what a crash cannot take back. The COMMIT itself runs later: the
transaction is held open for the next messages (up to 50 ms: one BEGIN and one COMMIT for many messages, even
one at a time) and committed as soon as a read waits for it, so the HTTP API lists every message that got a
250. Should that COMMIT fail, each row is tried again alone, and a message still without its row is logged and
indexed from its record at the next start (the segment's ``indexed_end`` stays before it).
Transcripts recorded without waiting (``record_session_soon``) go with the next message's transaction (or within
50 ms), without a wake-up of the writer thread of their own. A caller with nothing else to do meanwhile (the
server with one connection open) passes ``alone=True``: when the writer thread is idle, the calling thread writes
the record and its row itself while a helper thread syncs the record (``Committer.run_now``).

Deleting a message removes its row; the space of a segment is given back when no row points into it any more
and it is not the one being written (the file is removed on ``delete()``, ``purge()`` and at start-up).
Reads are synchronous and thread-safe; from an event loop, call the slow ones (``purge``, ``delete``) through
``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from smtplens.server.store_commit import BUSY, Committer, Later
from smtplens.server.store_envelope import EnvelopeLike, complete_metadata, normalize_envelope
from smtplens.server.store_files import (
    FileCorrupt,
    QueueIds,
    fsync_directory,
    is_queue_id,
    open_directory,
    read_message_file,
)
from smtplens.server.store_index import (
    connect,
    delete_messages,
    insert_message,
    like_pattern,
    mark_deleting,
    note_segment,
    row_to_message,
    row_to_session,
    transaction,
    translate_errors,
    upsert_session,
)
from smtplens.server.store_model import (
    MessageInfo,
    MessageState,
    Purged,
    RecoveryReport,
    SessionRecord,
    StoredMessage,
    StoreError,
    StoreStats,
    TranscriptEntry,
)
from smtplens.server.store_records import RecordDamaged, encode_record
from smtplens.server.store_recovery import reclaim_segments, recover
from smtplens.server.store_segments import (
    SegmentMaker,
    SegmentWriter,
    read_record,
    segment_name,
    segment_number,
    void_record,
)

__all__ = [
    "MessageInfo",
    "MessageState",
    "MessageStore",
    "Purged",
    "RecoveryReport",
    "SessionRecord",
    "StoreError",
    "StoreStats",
    "StoredMessage",
    "TranscriptEntry",
]

T = TypeVar("T")

log = logging.getLogger("smtplens.server.store")

_SEGMENT_SIZE = 8 << 20  # the largest segment made ahead (a message larger than that gets one of its own)
_FIRST_SEGMENT_SIZE = 256 << 10  # the first segment of a run; each next one is twice as large, up to the above
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_MESSAGE_SEARCH = ("queue_id", "mail_from", "recipients", "subject", "client_address", "helo", "session_id")
_SESSION_SEARCH = ("id", "client_address", "outcome", "transcript")


def _file_error(exc: OSError, doing: str) -> StoreError:
    path = None if exc.filename is None else str(exc.filename)
    if exc.errno in _NO_SPACE:
        error = StoreError(f"disk full while {doing} ({exc.strerror})", path=path)
    else:
        error = StoreError(f"{doing} failed: {exc.strerror or exc}", path=path)
    error.__cause__ = exc
    return error


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    if sys.platform != "win32":
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise StoreError("the store is in use by another process", path=str(path.parent)) from exc
    return fd


def _where(columns: Sequence[str], search: str | None) -> tuple[str, list[object]]:
    if not search:
        return "", []
    clause = " OR ".join(f"{column} LIKE ? ESCAPE '\\'" for column in columns)
    return f" AND ({clause})", [like_pattern(search)] * len(columns)


def _page(limit: int, offset: int) -> None:
    if limit < 0 or offset < 0:
        raise StoreError(f"limit and offset must not be negative (got {limit}, {offset})")


class _MessageWrite:
    """One message on its way through the writer thread: prepare (metadata, its record appended to a segment),
    the group's sync, the index row; ``undo`` voids the record when the row fails."""

    __slots__ = ("location", "message", "meta", "partial", "store")

    def __init__(self, store: MessageStore, partial: dict[str, Any], message: bytes) -> None:
        self.store = store
        self.partial = partial
        self.message = message
        self.meta: dict[str, Any] = {}
        self.location = (0, 0, 0)

    def prepare(self) -> Callable[[], None]:
        store = self.store
        queue_id = store._ids.next()
        self.meta = meta = complete_metadata(self.partial, queue_id, self.message)
        meta_json = json.dumps(meta, ensure_ascii=True, separators=(",", ":"), sort_keys=True).encode()
        record = encode_record(queue_id, meta_json, self.message)
        try:
            segment, offset, token = store._segments.append(record)
        except OSError as exc:
            raise _file_error(exc, f"writing message {queue_id}") from exc
        self.location = (segment, offset, len(record))

        def sync() -> None:
            try:
                store._segments.sync(token)
            except OSError as exc:
                raise _file_error(exc, f"writing message {queue_id}") from exc

        return sync

    def apply(self, conn: sqlite3.Connection) -> str:
        segment, offset, length = self.location
        insert_message(conn, self.meta, location=self.location)
        # Not past a record whose row was lost since start-up: recovery then indexes it from its record.
        note_segment(conn, segment, min(offset + length, self.store._unindexed.get(segment, offset + length)))
        return str(self.meta["queue_id"])

    def uncommitted(self, error: BaseException) -> None:
        """The row's COMMIT failed after the 250 went out: the message is durable in its record; keep the segment's
        ``indexed_end`` before it, so that the next start indexes it."""
        segment, offset, _ = self.location
        self.store._unindexed[segment] = min(offset, self.store._unindexed.get(segment, offset))
        log.error(
            "message %s: its index row was not committed (%s); it is indexed at the next start",
            self.meta.get("queue_id"),
            error,
        )

    def undo(self) -> None:
        void_record(self.store._segment_dir, *self.location)


class MessageStore:
    """Accepted messages and session transcripts in ``directory``; see the module docstring.

    ``retention_count`` keeps at most that many messages (and sessions), ``retention_seconds`` drops messages
    and sessions older than that; both are applied by ``purge()``. A session that a kept message belongs to is
    kept. ``clock`` gives the received time when the envelope has none, and "now" for ``purge()``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        retention_count: int | None = None,
        retention_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
        segment_size: int = _SEGMENT_SIZE,
    ) -> None:
        if retention_count is not None and retention_count < 0:
            raise StoreError(f"retention_count must not be negative (got {retention_count})")
        if retention_seconds is not None and retention_seconds < 0:
            raise StoreError(f"retention_seconds must not be negative (got {retention_seconds})")
        if segment_size < 4096:
            raise StoreError(f"segment_size must be at least 4096 octets (got {segment_size})")
        self.directory = Path(directory)
        self.retention_count = retention_count
        self.retention_seconds = retention_seconds
        self._clock = clock
        self._segment_dir = self.directory / "segments"
        self._messages = self.directory / "messages"  # version-1 layout
        self._index_path = self.directory / "index.sqlite"
        self._ids = QueueIds()
        self._unindexed: dict[int, int] = {}  # segment -> offset of its first record whose row was lost (writer)
        self._state_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._closed = False
        with contextlib.ExitStack() as undo:
            try:
                created = not self.directory.exists()
                self._segment_dir.mkdir(parents=True, exist_ok=True)
                self._lock_fd = _lock(self.directory / "lock")
                undo.callback(os.close, self._lock_fd)
                self._dir_fd = open_directory(self._segment_dir)
                undo.callback(os.close, self._dir_fd)
                legacy = self._messages if self._messages.is_dir() else None
            except OSError as exc:
                raise _file_error(exc, "opening the store directory") from exc
            self._writer = connect(self._index_path)
            undo.callback(self._writer.close)
            self._sync_top(created)
            with translate_errors(self._index_path, "recovering the store"):
                try:
                    self.recovery: RecoveryReport = recover(
                        self._writer, self._segment_dir, self._dir_fd, legacy, self.directory / "quarantine"
                    )
                    first = self._first_segment()
                except OSError as exc:
                    raise _file_error(exc, "recovering the store") from exc
            self._reader = connect(self._index_path, readonly=True)
            undo.callback(self._reader.close)
            self._maker = SegmentMaker(
                self._segment_dir,
                self._dir_fd,
                first,
                smallest=min(_FIRST_SEGMENT_SIZE, segment_size),
                largest=segment_size,
            )
            self._maker.prepare()
            undo.callback(self._maker.close)
            self._segments = SegmentWriter(self._maker)
            self._committer = Committer(self._writer, self._index_path)
            undo.pop_all()

    def _first_segment(self) -> int:
        """The number of the next segment: above every segment file and row (after recovery)."""
        files = [n for n in (segment_number(name) for name in os.listdir(self._segment_dir)) if n is not None]
        rows = [int(r[0]) for r in self._writer.execute("SELECT id FROM segments")]
        return max([0, *files, *rows]) + 1

    def _sync_top(self, created: bool) -> None:
        """Make ``segments/`` and ``index.sqlite`` (and ``DIR`` itself, when new) durable."""
        try:
            for directory in (self.directory, self.directory.parent) if created else (self.directory,):
                fd = open_directory(directory)
                try:
                    fsync_directory(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise _file_error(exc, "syncing the store directory") from exc

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed", path=str(self.directory))

    # -- writing -----------------------------------------------------------------------------------------

    async def store(
        self, envelope: EnvelopeLike, message: bytes, session_id: str | None = None, *, alone: bool = False
    ) -> str:
        """Store an accepted message; returns its queue id once its record is durable and its index row is in
        the transaction being committed (see the module docstring).

        ``alone=True`` says the caller has nothing else to do meanwhile (the server has one connection open):
        when the writer thread is idle, the record and the row are written in the calling thread while a helper
        thread syncs the record, without suspending (the event loop waits for the sync, 10 ms at most: a slower
        one is awaited); when the writer is busy, as usual.

        ``envelope`` names ``mail_from`` and ``recipients`` (required), ``client_address``, ``helo``, ``tls``,
        ``auth_identity`` and ``received_at`` (see ``store_envelope.ENVELOPE_KEYS``); other keys are kept as
        JSON. The session's ``Envelope`` dataclass is accepted as it is. Raises ``StoreError`` (full disk,
        broken index, bad envelope, closed store). Cancelling the call before the writer thread takes it up
        stores nothing; after that the message is stored regardless.
        """
        self._check_open()
        if not isinstance(message, bytes | bytearray | memoryview):
            raise StoreError(f"the message must be bytes, not {type(message).__name__}")
        meta = normalize_envelope(envelope, session_id, self._clock())
        write = _MessageWrite(self, meta, bytes(message))
        if alone:
            queue_id = self._committer.run_now(
                write.apply,
                kind="message",
                prepare=write.prepare,
                on_failure=write.undo,
                on_uncommitted=write.uncommitted,
            )
            if isinstance(queue_id, Later):  # a slow disk: the event loop goes on meanwhile
                queue_id = await queue_id.waiter
            if queue_id is not BUSY:
                return str(queue_id)
        try:
            waiter = self._committer.submit_waiting(
                write.apply,
                kind="message",
                on_failure=write.undo,
                durable=False,
                prepare=write.prepare,
                on_uncommitted=write.uncommitted,
            )
        except RuntimeError as exc:
            raise StoreError("the store is closed", path=str(self.directory)) from exc
        result: str = await waiter
        return result

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
        """Record a session (again: a later call with the same id replaces the earlier record).

        ``transcript`` is a list of ``(direction, line, policy)``: the policy that produced a reply, or
        ``None`` (client lines, replies no policy chose). The record is committed without an fsync of its own
        (the next message's commit, or closing the store, makes it durable): a crash may take back the last
        transcripts, never a message that got its 250.
        """
        apply = self._session_job(
            session_id,
            client_address=client_address,
            started_at=started_at,
            ended_at=ended_at,
            transcript=transcript,
            outcome=outcome,
        )
        await self._committer.submit_waiting(apply, kind="session", durable=False)

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
        """:meth:`record_session` without waiting for it (the server's end of a connection): the record is
        queued for the writer thread, which logs a failure; ``close()`` finishes every queued record."""
        apply = self._session_job(
            session_id,
            client_address=client_address,
            started_at=started_at,
            ended_at=ended_at,
            transcript=transcript,
            outcome=outcome,
        )

        def logged(error: BaseException) -> None:
            log.error("session %s: recording the transcript failed: %s", session_id, error)

        self._committer.submit_quiet(apply, kind="session", on_error=logged)

    async def settle(self) -> None:
        """Wait until every write queued so far (``record_session_soon`` included) is committed."""
        self._check_open()
        await self._committer.submit_waiting(lambda conn: None, kind="settle", durable=False)

    def _session_job(
        self,
        session_id: str,
        *,
        client_address: str,
        started_at: float,
        ended_at: float | None,
        transcript: Sequence[Sequence[str | None]],
        outcome: str | None,
    ) -> Callable[[sqlite3.Connection], None]:
        """The writer thread's part of recording a session (the transcript checked here, in the caller's)."""
        self._check_open()
        entries: list[TranscriptEntry] = []
        for entry in transcript:
            if len(entry) != 3 or not isinstance(entry[0], str) or not isinstance(entry[1], str):
                raise StoreError(f"a transcript entry must be (direction, line, policy), not {entry!r}")
            entries.append((str(entry[0]), entry[1], None if entry[2] is None else str(entry[2])))

        def apply(conn: sqlite3.Connection) -> None:
            upsert_session(
                conn,
                session_id=session_id,
                client_address=client_address,
                started_at=started_at,
                ended_at=ended_at,
                transcript=entries,
                outcome=outcome,
            )

        return apply

    def delete(self, queue_id: str) -> bool:
        """Delete a message (row and file); False when there is no such message. Blocks until durable."""
        self._check_open()
        if not is_queue_id(queue_id):
            return False

        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT 1 FROM messages WHERE queue_id = ?", (queue_id,)).fetchone()
            if row is None:
                return False
            self._remove(conn, [queue_id])
            return True

        return bool(self._committer.submit_alone(run, kind="delete").result())

    def purge(self) -> Purged:
        """Apply the retention limits now; returns what went. Blocks until durable."""
        self._check_open()
        result: Purged = self._committer.submit_alone(self._purge, kind="purge").result()
        return result

    def _purge(self, conn: sqlite3.Connection) -> Purged:
        doomed: set[str] = set()
        cutoff = None if self.retention_seconds is None else self._clock() - self.retention_seconds
        if cutoff is not None:
            rows = conn.execute("SELECT queue_id FROM messages WHERE received_at < ?", (cutoff,))
            doomed.update(str(r[0]) for r in rows)
        if self.retention_count is not None:
            rows = conn.execute(
                "SELECT queue_id FROM messages ORDER BY received_at DESC, queue_id DESC LIMIT -1 OFFSET ?",
                (self.retention_count,),
            )
            doomed.update(str(r[0]) for r in rows)
        self._remove(conn, sorted(doomed))
        conditions: list[str] = []
        params: list[object] = []
        if cutoff is not None:
            conditions.append("started_at < ?")
            params.append(cutoff)
        if self.retention_count is not None:
            conditions.append("id NOT IN (SELECT id FROM sessions ORDER BY started_at DESC, id DESC LIMIT ?)")
            params.append(self.retention_count)
        sessions = 0
        if conditions:
            with transaction(conn):
                cursor = conn.execute(
                    f"DELETE FROM sessions WHERE ({' OR '.join(conditions)}) AND id NOT IN "
                    "(SELECT session_id FROM messages WHERE session_id IS NOT NULL)",
                    params,
                )
                sessions = cursor.rowcount
        return Purged(messages=len(doomed), sessions=sessions)

    def _remove(self, conn: sqlite3.Connection, queue_ids: Sequence[str]) -> None:
        """Writer thread: mark rows ``deleting`` (durable), remove version-1 files (durable), drop the rows,
        then remove the segments no row points into any more (but the one being written)."""
        if not queue_ids:
            return
        with transaction(conn):
            mark_deleting(conn, queue_ids)
        legacy = [q for q in queue_ids if (self._messages / q).exists()] if self._messages.is_dir() else []
        if legacy:
            for queue_id in legacy:
                (self._messages / queue_id).unlink(missing_ok=True)
            fd = open_directory(self._messages)
            try:
                fsync_directory(fd)
            finally:
                os.close(fd)
        with transaction(conn):
            delete_messages(conn, queue_ids)
        reclaim_segments(conn, self._segment_dir, self._dir_fd, keep=self._segments.active)

    # -- reading -----------------------------------------------------------------------------------------

    def _read(self, doing: str, query: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        self._committer.wait_committed()  # a message whose 250 went out is listed (its COMMIT may be running)
        with self._read_lock, translate_errors(self._index_path, doing):
            return query(self._reader)

    def messages(self, limit: int = 50, offset: int = 0, search: str | None = None) -> list[MessageInfo]:
        """Messages, newest first; ``search`` matches (case-insensitively, as a substring) the queue id,
        sender, recipients, subject, client address, HELO name and session id."""
        _page(limit, offset)
        where, params = _where(_MESSAGE_SEARCH, search)
        sql = (
            f"SELECT * FROM messages WHERE state != 'deleting'{where} "
            "ORDER BY received_at DESC, queue_id DESC LIMIT ? OFFSET ?"
        )
        rows = self._read("listing messages", lambda c: c.execute(sql, [*params, limit, offset]).fetchall())
        return [row_to_message(row) for row in rows]

    def count(self, search: str | None = None) -> int:
        """How many messages ``messages(search=search)`` pages through."""
        where, params = _where(_MESSAGE_SEARCH, search)
        sql = f"SELECT count(*) FROM messages WHERE state != 'deleting'{where}"
        return int(self._read("counting messages", lambda c: c.execute(sql, params).fetchone()[0]))

    def message(self, queue_id: str) -> StoredMessage | None:
        """A message's metadata and raw bytes; None when unknown. ``StoreError`` if its file is damaged."""
        if not is_queue_id(queue_id):
            return None
        sql = "SELECT * FROM messages WHERE queue_id = ? AND state != 'deleting'"
        row = self._read("reading a message", lambda c: c.execute(sql, (queue_id,)).fetchone())
        if row is None:
            return None
        info = row_to_message(row)
        if info.state == "missing":
            return StoredMessage(info, None)
        if row["segment"] is None:
            return self._legacy_message(info)
        segment, offset, length = int(row["segment"]), int(row["seg_offset"]), int(row["seg_length"])
        where = f"{self._segment_dir / segment_name(segment)}@{offset}"
        try:
            record = read_record(self._segment_dir, segment, offset, length)
        except FileNotFoundError:
            return StoredMessage(replace(info, state="missing"), None)
        except RecordDamaged as exc:
            raise StoreError(f"the message record is damaged: {exc}", path=where) from exc
        except OSError as exc:
            raise _file_error(exc, f"reading message {queue_id}") from exc
        if record.void or record.queue_id != queue_id or record.meta.get("sha256") != info.sha256:
            raise StoreError("the message record is damaged: it does not match its index row", path=where)
        return StoredMessage(info, record.body)

    def _legacy_message(self, info: MessageInfo) -> StoredMessage:
        """A message of the version-1 layout: its own file in ``messages/``."""
        path = self._messages / info.queue_id
        try:
            meta, raw = read_message_file(path)
        except FileNotFoundError:
            return StoredMessage(replace(info, state="missing"), None)
        except FileCorrupt as exc:
            raise StoreError(f"the message file is damaged: {exc}", path=str(path)) from exc
        except OSError as exc:
            raise _file_error(exc, f"reading message {info.queue_id}") from exc
        if meta.get("sha256") != info.sha256:
            raise StoreError("the message file does not match its index row (sha256 differs)", path=str(path))
        return StoredMessage(info, raw)

    def sessions(self, limit: int = 50, offset: int = 0, search: str | None = None) -> list[SessionRecord]:
        """Sessions, newest first; ``search`` matches the id, client address, outcome and transcript."""
        _page(limit, offset)
        where, params = _where(_SESSION_SEARCH, search)
        sql = f"SELECT * FROM sessions WHERE 1{where} ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"
        rows = self._read("listing sessions", lambda c: c.execute(sql, [*params, limit, offset]).fetchall())
        return [row_to_session(row) for row in rows]

    def session(self, session_id: str) -> SessionRecord | None:
        """One session by id; None when unknown."""
        sql = "SELECT * FROM sessions WHERE id = ?"
        row = self._read("reading a session", lambda c: c.execute(sql, (session_id,)).fetchone())
        return None if row is None else row_to_session(row)

    def stats(self) -> StoreStats:
        """Counters since opening (group commit shows as fewer commits than writes)."""
        committed, commits, largest = self._committer.snapshot()
        return StoreStats(
            messages_stored=committed.get("message", 0),
            sessions_recorded=committed.get("session", 0),
            commits=commits,
            largest_batch=largest,
        )

    # -- closing -----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Finish every store in progress, then close; idempotent. Later calls raise ``StoreError``."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
        self._committer.close()  # every queued store and record is finished first
        self._segments.close()
        self._maker.close()
        with self._read_lock:
            self._reader.close()
        self._writer.close()
        os.close(self._dir_fd)
        os.close(self._lock_fd)

    async def aclose(self) -> None:
        """``close()`` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
