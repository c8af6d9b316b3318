"""The group committer (``smtplens.server.store_commit``): jobs that need no sync of their own (transcripts) are
committed with ``synchronous=NORMAL``, everything else with ``FULL``, and the connection is left at ``FULL``."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from smtplens.server.store_commit import Committer

FULL, NORMAL = 2, 1  # PRAGMA synchronous values


def _committer(tmp_path: Path) -> tuple[Committer, sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (v TEXT)")
    return Committer(conn, tmp_path / "index.sqlite"), conn


def _insert(value: str) -> Callable[[sqlite3.Connection], int]:
    def apply(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (?)", (value,))
        return int(conn.execute("PRAGMA synchronous").fetchone()[0])

    return apply


def test_lazy_jobs_commit_without_sync_and_durable_ones_with_it(tmp_path: Path) -> None:
    committer, conn = _committer(tmp_path)
    try:
        lazy = committer.submit(_insert("transcript"), kind="session", durable=False)
        assert lazy.result(10) == NORMAL
        durable = committer.submit(_insert("message"), kind="message")
        assert durable.result(10) == FULL
    finally:
        committer.close()
    assert int(conn.execute("PRAGMA synchronous").fetchone()[0]) == FULL
    assert sorted(row[0] for row in conn.execute("SELECT v FROM t")) == ["message", "transcript"]
    conn.close()


def test_a_group_with_one_durable_job_is_synced(tmp_path: Path) -> None:
    committer, conn = _committer(tmp_path)
    gate = threading.Event()

    def block(conn: sqlite3.Connection) -> None:
        gate.wait(10)  # holds the writer thread so the next jobs queue up and form one group

    try:
        first: Future[None] = committer.submit_alone(block, kind="gate")
        jobs = [
            committer.submit(_insert("a"), kind="session", durable=False),
            committer.submit(_insert("b"), kind="message"),
            committer.submit(_insert("c"), kind="session", durable=False),
        ]
        gate.set()
        first.result(10)
        assert [job.result(10) for job in jobs] == [FULL, FULL, FULL]
        assert committer.snapshot()[2] == 3  # one group of three
    finally:
        committer.close()
    conn.close()


def test_a_transcript_nobody_waits_for_shares_the_next_jobs_transaction(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (v TEXT)")
    committer = Committer(conn, tmp_path / "index.sqlite", linger=60.0)
    errors: list[BaseException] = []
    try:
        assert committer.submit(_insert("first"), kind="message", durable=False).result(10) == NORMAL
        # the writer has just worked: the transcript does not wake it, it goes with the next message
        committer.submit_quiet(_insert("transcript"), kind="session", on_error=errors.append)
        assert committer.submit(_insert("second"), kind="message", durable=False).result(10) == NORMAL
        assert committer.snapshot() == ({"message": 2, "session": 1}, 2, 2)
        committer.submit_quiet(_insert("last"), kind="session", on_error=errors.append)
    finally:
        committer.close()  # does not wait out the linger: closing wakes the writer, which commits what is left
    assert sorted(row[0] for row in conn.execute("SELECT v FROM t")) == ["first", "last", "second", "transcript"]
    assert errors == []
    conn.close()


def test_a_transcript_reaches_an_idle_writer_at_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (v TEXT)")
    committer = Committer(conn, tmp_path / "index.sqlite", linger=0.01)
    try:
        committer.submit(_insert("first"), kind="message", durable=False).result(10)
        deadline = time.monotonic() + 30
        while not committer._asleep and time.monotonic() < deadline:  # past the linger, asleep for good
            time.sleep(0.01)
        assert committer._asleep
        committer.submit_quiet(_insert("transcript"), kind="session", on_error=lambda error: None)
        while committer.snapshot()[0].get("session") != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert committer.snapshot()[0].get("session") == 1
    finally:
        committer.close()
    conn.close()


def test_early_rows_are_held_in_one_transaction_until_a_reader_waits(tmp_path: Path) -> None:
    """Message rows (early jobs: their results go out once their rows are in the transaction) sent one at a time
    share one held transaction, which no reader sees until ``wait_committed`` commits it for the reader."""
    conn = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (v TEXT)")
    committer = Committer(conn, tmp_path / "index.sqlite", hold=3600.0)
    reader = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None)
    problems: list[BaseException] = []

    async def main() -> list[object]:
        return [
            await committer.submit_waiting(
                _insert(str(n)), kind="message", durable=False, on_uncommitted=problems.append
            )
            for n in range(5)
        ]

    try:
        assert asyncio.run(main()) == [NORMAL] * 5
        assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 0  # held: not committed yet
        committer.wait_committed()
        assert sorted(row[0] for row in reader.execute("SELECT v FROM t")) == [str(n) for n in range(5)]
        committed, commits, _ = committer.snapshot()
        assert (committed, commits) == ({"message": 5}, 1)  # one transaction for the five rows
    finally:
        committer.close()
        reader.close()
        conn.close()
    assert problems == []
