"""The group committer (``smtplens.server.store_commit``): jobs that need no sync of their own (transcripts) are
committed with ``synchronous=NORMAL``, everything else with ``FULL``, and the connection is left at ``FULL``."""

from __future__ import annotations

import sqlite3
import threading
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
    return Committer(conn, tmp_path / "index.sqlite", lambda: None), conn


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
