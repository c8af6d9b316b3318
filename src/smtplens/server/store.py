"""The durable message store: one file per message plus an SQLite index, both durable before the 250.

Layout of the data directory ``DIR``::

    DIR/lock            held (flock) while a store is open: one server per directory
    DIR/index.sqlite    the index (WAL journal): messages and sessions tables
    DIR/messages/<id>   one file per message (``store_files``: a JSON header line, then the bytes)
    DIR/quarantine/     files recovery could not make sense of

``store()`` writes the message into a spare file (``store_spares``: created empty under the next queue id, its
directory entry made durable with a batch of others, ahead of time) and fsyncs it, in the writer thread: from
then on the message survives a crash, because its file carries everything its index row holds and start-up
recovery indexes a file that has no row. Then the same thread commits the rows of every store waiting at that
moment in one transaction (``store_commit``), without an fsync of its own (the WAL is synced by the next
durable commit, a checkpoint or closing). Only then does ``store()`` return the queue id, so the session's 250
after DATA promises only what a crash cannot take back, at the price of one fsync per message (plus one
directory fsync per batch of spares, made ahead of time). Opening the store repairs what a crash left
(``store_recovery``). Reads are synchronous and thread-safe; from an event loop, call the slow ones
(``purge``, ``delete``) through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from smtplens.server.store_commit import Committer
from smtplens.server.store_envelope import EnvelopeLike, complete_metadata, normalize_envelope
from smtplens.server.store_files import (
    FileCorrupt,
    QueueIds,
    encode_header,
    finish_message_file,
    fsync_directory,
    is_queue_id,
    open_directory,
    read_message_file,
    start_message_file,
)
from smtplens.server.store_index import (
    connect,
    delete_messages,
    insert_message,
    like_pattern,
    mark_deleting,
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
from smtplens.server.store_recovery import recover
from smtplens.server.store_spares import Spares

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

_SPARES = 64  # spare message files created at a time (one directory fsync for all of them)
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
    """One message on its way through the writer thread: prepare (spare file, metadata, write), the fsync, the
    index row; ``undo`` removes the file when the row fails."""

    __slots__ = ("message", "meta", "partial", "queue_id", "store")

    def __init__(self, store: MessageStore, partial: dict[str, Any], message: bytes) -> None:
        self.store = store
        self.partial = partial
        self.message = message
        self.queue_id = ""
        self.meta: dict[str, Any] = {}

    def prepare(self) -> Callable[[], None]:
        store = self.store
        try:
            self.queue_id, fd = store._spares.take()
            queue_id = self.queue_id
        except OSError as exc:
            raise _file_error(exc, "creating message files") from exc
        self.meta = complete_metadata(self.partial, queue_id, self.message)
        try:
            start_message_file(store._messages, queue_id, fd, encode_header(self.meta), self.message)
        except OSError as exc:
            raise _file_error(exc, f"writing message {queue_id}") from exc

        def sync() -> None:
            try:
                finish_message_file(store._messages, queue_id, fd)
            except OSError as exc:
                raise _file_error(exc, f"writing message {queue_id}") from exc

        return sync

    def apply(self, conn: sqlite3.Connection) -> str:
        insert_message(conn, self.meta)
        return self.queue_id

    def undo(self) -> None:
        (self.store._messages / self.queue_id).unlink(missing_ok=True)


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
    ) -> None:
        if retention_count is not None and retention_count < 0:
            raise StoreError(f"retention_count must not be negative (got {retention_count})")
        if retention_seconds is not None and retention_seconds < 0:
            raise StoreError(f"retention_seconds must not be negative (got {retention_seconds})")
        self.directory = Path(directory)
        self.retention_count = retention_count
        self.retention_seconds = retention_seconds
        self._clock = clock
        self._messages = self.directory / "messages"
        self._index_path = self.directory / "index.sqlite"
        self._ids = QueueIds()
        self._state_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._closed = False
        with contextlib.ExitStack() as undo:
            try:
                created = not self.directory.exists()
                self._messages.mkdir(parents=True, exist_ok=True)
                self._lock_fd = _lock(self.directory / "lock")
                undo.callback(os.close, self._lock_fd)
                self._dir_fd = open_directory(self._messages)
                undo.callback(os.close, self._dir_fd)
            except OSError as exc:
                raise _file_error(exc, "opening the store directory") from exc
            self._writer = connect(self._index_path)
            undo.callback(self._writer.close)
            self._sync_top(created)
            with translate_errors(self._index_path, "recovering the store"):
                try:
                    self.recovery: RecoveryReport = recover(
                        self._writer, self._messages, self.directory / "quarantine", self._dir_fd
                    )
                except OSError as exc:
                    raise _file_error(exc, "recovering the store") from exc
            self._reader = connect(self._index_path, readonly=True)
            undo.callback(self._reader.close)
            self._spares = Spares(self._messages, self._dir_fd, self._ids, batch=_SPARES, low=_SPARES // 2)
            self._committer = Committer(self._writer, self._index_path, self._sync_messages)
            undo.pop_all()

    def _sync_top(self, created: bool) -> None:
        """Make ``messages/`` and ``index.sqlite`` (and ``DIR`` itself, when new) durable."""
        try:
            for directory in (self.directory, self.directory.parent) if created else (self.directory,):
                fd = open_directory(directory)
                try:
                    fsync_directory(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise _file_error(exc, "syncing the store directory") from exc

    def _sync_messages(self) -> None:
        fsync_directory(self._dir_fd)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed", path=str(self.directory))

    # -- writing -----------------------------------------------------------------------------------------

    async def store(self, envelope: EnvelopeLike, message: bytes, session_id: str | None = None) -> str:
        """Store an accepted message; returns its queue id once the file and the index row are durable.

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
        try:
            future = self._committer.submit(
                write.apply, kind="message", on_failure=write.undo, durable=False, prepare=write.prepare
            )
        except RuntimeError as exc:
            raise StoreError("the store is closed", path=str(self.directory)) from exc
        result: str = await asyncio.wrap_future(future)
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
        await asyncio.wrap_future(
            self._submit_session(
                session_id,
                client_address=client_address,
                started_at=started_at,
                ended_at=ended_at,
                transcript=transcript,
                outcome=outcome,
            )
        )

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
        future = self._submit_session(
            session_id,
            client_address=client_address,
            started_at=started_at,
            ended_at=ended_at,
            transcript=transcript,
            outcome=outcome,
        )

        def logged(done: Future[Any]) -> None:
            error = done.exception()
            if error is not None:
                log.error("session %s: recording the transcript failed: %s", session_id, error)

        future.add_done_callback(logged)

    async def settle(self) -> None:
        """Wait until every write queued so far (``record_session_soon`` included) is committed."""
        self._check_open()
        await asyncio.wrap_future(self._committer.submit(lambda conn: None, kind="settle", durable=False))

    def _submit_session(
        self,
        session_id: str,
        *,
        client_address: str,
        started_at: float,
        ended_at: float | None,
        transcript: Sequence[Sequence[str | None]],
        outcome: str | None,
    ) -> Future[Any]:
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

        return self._committer.submit(apply, kind="session", durable=False)

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
        """Writer thread: mark rows ``deleting`` (durable), remove the files (durable), drop the rows."""
        if not queue_ids:
            return
        with transaction(conn):
            mark_deleting(conn, queue_ids)
        for queue_id in queue_ids:
            (self._messages / queue_id).unlink(missing_ok=True)
        fsync_directory(self._dir_fd)
        with transaction(conn):
            delete_messages(conn, queue_ids)

    # -- reading -----------------------------------------------------------------------------------------

    def _read(self, doing: str, query: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
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
        path = self._messages / queue_id
        try:
            meta, raw = read_message_file(path)
        except FileNotFoundError:
            return StoredMessage(replace(info, state="missing"), None)
        except FileCorrupt as exc:
            raise StoreError(f"the message file is damaged: {exc}", path=str(path)) from exc
        except OSError as exc:
            raise _file_error(exc, f"reading message {queue_id}") from exc
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
        self._spares.close()
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
