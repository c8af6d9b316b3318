"""The SQLite index: schema, connections (WAL, synchronous=FULL), rows to values, SQLite errors to StoreError.

Schema version 2 (segments): a message row names where its record is (``segment``, ``seg_offset``,
``seg_length``); rows of the version-1 layout (one file per message in ``messages/``) have them NULL and stay
readable. The ``segments`` table holds, per segment, how far its records are indexed (``indexed_end``, moved in
the same transaction as the rows, so a deleted message is never indexed again from its record) and whether
recovery is done with it (``sealed``: it is written no more).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from smtplens.server.store_model import MessageInfo, MessageState, SessionRecord, StoreError, TranscriptEntry

__all__ = [
    "MESSAGE_COLUMNS",
    "SCHEMA_VERSION",
    "SESSION_COLUMNS",
    "connect",
    "delete_messages",
    "insert_message",
    "like_pattern",
    "mark_deleting",
    "note_segment",
    "rollback",
    "row_to_message",
    "row_to_session",
    "store_error",
    "transaction",
    "translate_errors",
    "upsert_session",
]

SCHEMA_VERSION = 2

MESSAGE_COLUMNS = (
    "queue_id",
    "received_at",
    "client_address",
    "helo",
    "mail_from",
    "recipients",
    "size",
    "sha256",
    "tls",
    "auth_identity",
    "session_id",
    "subject",
    "envelope",
)
SESSION_COLUMNS = ("id", "client_address", "started_at", "ended_at", "transcript", "outcome")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    queue_id       TEXT PRIMARY KEY,
    received_at    REAL NOT NULL,
    client_address TEXT NOT NULL,
    helo           TEXT,
    mail_from      TEXT NOT NULL,
    recipients     TEXT NOT NULL,            -- JSON list
    size           INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    tls            TEXT,
    auth_identity  TEXT,
    session_id     TEXT,
    subject        TEXT,
    envelope       TEXT NOT NULL,            -- JSON object: the other envelope fields
    state          TEXT NOT NULL DEFAULT 'stored',   -- stored | missing | deleting
    recovered      INTEGER NOT NULL DEFAULT 0,
    segment        INTEGER,                  -- where the record is (NULL: a version-1 file in messages/)
    seg_offset     INTEGER,
    seg_length     INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_received ON messages (received_at);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages (session_id);
CREATE INDEX IF NOT EXISTS messages_by_segment ON messages (segment);
CREATE TABLE IF NOT EXISTS segments (
    id             INTEGER PRIMARY KEY,
    indexed_end    INTEGER NOT NULL,         -- the records before this offset have (or had) their rows
    sealed         INTEGER NOT NULL DEFAULT 0   -- 1: written no more, recovery has nothing left to scan
);
CREATE TABLE IF NOT EXISTS sessions (
    id             TEXT PRIMARY KEY,
    client_address TEXT NOT NULL,
    started_at     REAL NOT NULL,
    ended_at       REAL,
    transcript     TEXT NOT NULL,            -- JSON list of [direction, line, policy]
    outcome        TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_started ON sessions (started_at);
"""

_SEGMENT_COLUMNS = ("segment", "seg_offset", "seg_length")
_INSERT_MESSAGE = (
    f"INSERT INTO messages ({', '.join((*MESSAGE_COLUMNS, 'state', 'recovered', *_SEGMENT_COLUMNS))}) "
    f"VALUES ({', '.join('?' * (len(MESSAGE_COLUMNS) + 2 + len(_SEGMENT_COLUMNS)))})"
)
_RECIPIENTS = MESSAGE_COLUMNS.index("recipients")
_ENVELOPE = MESSAGE_COLUMNS.index("envelope")

# SQLite primary result codes (https://www.sqlite.org/rescode.html).
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_NOTADB = 26


def store_error(exc: sqlite3.Error, path: Path, doing: str) -> StoreError:
    """A clear StoreError for an SQLite error: corrupt index, full disk, or the SQLite message otherwise."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        problem = (
            f"the index is corrupt ({exc}) while {doing}; stop the server, move the index away and start again: "
            "the messages are re-indexed from their records (sessions are lost; a deleted message whose segment "
            "still holds others may come back)"
        )
    elif code == _SQLITE_FULL:
        problem = f"disk full while {doing} ({exc})"
    else:
        problem = f"index error while {doing}: {exc}"
    return StoreError(problem, path=str(path))


@contextmanager
def translate_errors(path: Path, doing: str) -> Iterator[None]:
    """Turn ``sqlite3.Error`` inside the block into ``StoreError`` (the boundary of the third-party library)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise store_error(exc, path, doing) from exc


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal, synchronous=FULL.

    The writing connection also creates or checks the schema.
    """
    with translate_errors(path, "opening the index"):
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"the index cannot use WAL mode (journal mode {mode!r})", path=str(path))
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA fullfsync = ON")  # macOS: flush the drive's cache too; ignored elsewhere
            if readonly:
                conn.execute("PRAGMA query_only = ON")
            else:
                _ensure_schema(conn, path)
        except BaseException:
            conn.close()
            raise
    return conn


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the index has schema version {version}, newer than this smtplens understands ({SCHEMA_VERSION})",
            path=str(path),
        )
    with transaction(conn):
        if version == 1:  # the one-file-per-message layout: its rows stay, with no segment
            for column in _SEGMENT_COLUMNS:
                conn.execute(f"ALTER TABLE messages ADD COLUMN {column} INTEGER")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (durable on return: synchronous=FULL), rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any (SQLite may already have rolled it back itself)."""
    with suppress(sqlite3.Error):
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def insert_message(
    conn: sqlite3.Connection,
    meta: Mapping[str, Any],
    *,
    recovered: bool = False,
    location: tuple[int, int, int] | None = None,
) -> None:
    """Insert one message row from the metadata its record (or version-1 file) holds; ``location``: the
    segment, offset and length of its record."""
    values = [meta.get(column) for column in MESSAGE_COLUMNS]
    values[_RECIPIENTS] = json.dumps(list(meta["recipients"]))
    values[_ENVELOPE] = json.dumps(meta.get("envelope") or {}, sort_keys=True)
    conn.execute(_INSERT_MESSAGE, (*values, "stored", int(recovered), *(location or (None, None, None))))


def note_segment(conn: sqlite3.Connection, segment: int, indexed_end: int) -> None:
    """Record that the records of ``segment`` up to ``indexed_end`` are indexed (it only ever grows)."""
    conn.execute(
        "INSERT INTO segments (id, indexed_end) VALUES (?, ?) "
        "ON CONFLICT (id) DO UPDATE SET indexed_end = max(indexed_end, excluded.indexed_end)",
        (segment, indexed_end),
    )


def upsert_session(
    conn: sqlite3.Connection,
    *,
    session_id: str,
    client_address: str,
    started_at: float,
    ended_at: float | None,
    transcript: Sequence[TranscriptEntry],
    outcome: str | None,
) -> None:
    """Insert a session or replace what an earlier call recorded for the same id."""
    conn.execute(
        "INSERT INTO sessions (id, client_address, started_at, ended_at, transcript, outcome) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET client_address = excluded.client_address, "
        "started_at = excluded.started_at, ended_at = excluded.ended_at, transcript = excluded.transcript, "
        "outcome = excluded.outcome",
        (session_id, client_address, started_at, ended_at, json.dumps([list(e) for e in transcript]), outcome),
    )


def mark_deleting(conn: sqlite3.Connection, queue_ids: Sequence[str]) -> None:
    """First step of a deletion: a crash after it and before the rows go makes recovery finish the job."""
    conn.executemany("UPDATE messages SET state = 'deleting' WHERE queue_id = ?", [(q,) for q in queue_ids])


def delete_messages(conn: sqlite3.Connection, queue_ids: Sequence[str]) -> None:
    conn.executemany("DELETE FROM messages WHERE queue_id = ?", [(q,) for q in queue_ids])


def like_pattern(search: str) -> str:
    """A LIKE pattern matching ``search`` anywhere, with ``%``, ``_`` and ``\\`` taken literally."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def row_to_message(row: sqlite3.Row) -> MessageInfo:
    state: MessageState = "missing" if row["state"] == "missing" else "stored"
    return MessageInfo(
        queue_id=row["queue_id"],
        received_at=float(row["received_at"]),
        client_address=row["client_address"],
        helo=row["helo"],
        mail_from=row["mail_from"],
        recipients=tuple(json.loads(row["recipients"])),
        size=int(row["size"]),
        sha256=row["sha256"],
        tls=row["tls"],
        auth_identity=row["auth_identity"],
        session_id=row["session_id"],
        subject=row["subject"],
        envelope=json.loads(row["envelope"]),
        state=state,
        recovered=bool(row["recovered"]),
    )


def row_to_session(row: sqlite3.Row) -> SessionRecord:
    transcript = tuple(
        (str(entry[0]), str(entry[1]), None if entry[2] is None else str(entry[2]))
        for entry in json.loads(row["transcript"])
    )
    return SessionRecord(
        session_id=row["id"],
        client_address=row["client_address"],
        started_at=float(row["started_at"]),
        ended_at=None if row["ended_at"] is None else float(row["ended_at"]),
        transcript=transcript,
        outcome=row["outcome"],
    )
