"""Group commit: one thread owns the index's writing connection; concurrent writes share a transaction.

Every write is a job. The thread takes the first waiting job and every job queued behind it (up to
``max_batch``) as a group. It runs the group's ``prepare`` steps (writing message files), then the second steps
they return (the files' fsyncs: files written together reach the disk together), fsyncs the messages directory
once if any job needs it, then applies all the jobs in one transaction and commits it: one WAL fsync for the
group, none when no job in it is ``durable`` (message rows, whose files are durable and carry the same data,
and session transcripts: the next synced commit makes them durable, the WAL being written in order). While the
thread works, the next group gathers, so the busier the server, the bigger the groups. A job whose apply fails
does not sink its group: the group is rolled back and every job retried alone. Jobs that must commit in several
steps (deletions) run alone, in queue order.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smtplens.server.store_index import rollback, store_error
from smtplens.server.store_model import StoreError

__all__ = ["Committer"]

Apply = Callable[[sqlite3.Connection], object]


@dataclass(slots=True)
class _Job:
    apply: Apply
    future: Future[Any]
    kind: str
    grouped: bool
    sync_dir: bool
    on_failure: Callable[[], None] | None
    durable: bool = True
    prepare: Callable[[], Callable[[], None]] | None = None


def _claim(future: Future[Any]) -> bool:
    """Mark a future running; False when its waiter cancelled it before the job started."""
    return future.running() or future.set_running_or_notify_cancel()


class Committer:
    """The writer thread. ``submit`` and ``submit_alone`` are safe from any thread; results come as futures."""

    def __init__(
        self, conn: sqlite3.Connection, index_path: Path, sync_dir: Callable[[], None], *, max_batch: int = 512
    ) -> None:
        self._conn = conn
        self._path = index_path
        self._sync_dir = sync_dir
        self._max_batch = max_batch
        self._level = "FULL"  # the connection's synchronous setting (connect() sets FULL)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.committed: Counter[str] = Counter()
        self.commits = 0
        self.largest_batch = 0
        self._thread = threading.Thread(target=self._run, name="smtplens-store-commit", daemon=True)
        self._thread.start()

    def submit(
        self,
        apply: Apply,
        *,
        kind: str,
        sync_dir: bool = False,
        on_failure: Callable[[], None] | None = None,
        future: Future[Any] | None = None,
        durable: bool = True,
        prepare: Callable[[], Callable[[], None]] | None = None,
    ) -> Future[Any]:
        """Queue ``apply(conn)`` for the next group transaction; the future gets its result after the commit.

        ``sync_dir``: fsync the messages directory before the commit. ``on_failure`` runs (in the writer
        thread) when the job fails, before its future gets the error. ``durable=False``: the job may be
        committed without syncing the index (a group of such jobs only), so a crash can take it back; it becomes
        durable with the next synced commit (the WAL is written in order), at the latest when the store closes.
        ``prepare()`` runs in the writer thread before the group's transaction (a message file's write) and
        returns a second step, run once every job of the group is prepared (its fsync). If either raises, the job
        fails with that error (``on_failure`` is not called: the steps clean up after themselves); the rest of
        the group goes on.
        """
        job = _Job(apply, future or Future(), kind, True, sync_dir, on_failure, durable, prepare)
        self._queue.put(job)
        return job.future

    def submit_alone(self, run: Apply, *, kind: str) -> Future[Any]:
        """Queue ``run(conn)``, which manages its own transactions, to run between groups."""
        job = _Job(run, Future(), kind, False, False, None)
        self._queue.put(job)
        return job.future

    def snapshot(self) -> tuple[dict[str, int], int, int]:
        """Jobs committed by kind, commits, largest group: consistent with each other."""
        with self._lock:
            return dict(self.committed), self.commits, self.largest_batch

    def pending(self) -> int:
        """How many jobs wait for the writer thread (approximately: the queue moves while you look)."""
        return self._queue.qsize()

    def close(self) -> None:
        """Finish every queued job, then stop the thread (the last lazy commits are synced)."""
        self._queue.put(None)
        self._thread.join()
        if self._level != "FULL":
            self._conn.execute("PRAGMA synchronous = FULL")
            self._level = "FULL"

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._process(batch)

    def _process(self, batch: list[_Job]) -> None:
        group: list[_Job] = []
        for job in batch:
            if not _claim(job.future):
                continue
            if job.grouped:
                group.append(job)
                continue
            self._commit_group(self._prepared(group))
            group = []
            self._run_alone(job)
        self._commit_group(self._prepared(group))

    def _prepared(self, group: list[_Job]) -> list[_Job]:
        """Run the group's ``prepare`` steps, then their second steps; the jobs that got through."""
        pending: list[tuple[_Job, Callable[[], None] | None]] = []
        for job in group:
            if job.prepare is None:
                pending.append((job, None))
                continue
            try:
                pending.append((job, job.prepare()))
            except Exception as exc:
                job.future.set_exception(self._error(exc, f"preparing {job.kind}"))
        ready: list[_Job] = []
        for job, then in pending:
            if then is not None:
                try:
                    then()
                except Exception as exc:
                    job.future.set_exception(self._error(exc, f"preparing {job.kind}"))
                    continue
            ready.append(job)
        return ready

    def _fail(self, job: _Job, exc: BaseException) -> None:
        if job.on_failure is not None:
            try:
                job.on_failure()
            except Exception as cleanup:  # the job's own error is the one to report
                exc.add_note(f"and cleaning up failed: {cleanup!r}")
        job.future.set_exception(exc)

    def _error(self, exc: Exception, doing: str) -> BaseException:
        if isinstance(exc, sqlite3.Error):
            return store_error(exc, self._path, doing)
        if isinstance(exc, OSError) and not isinstance(exc, StoreError):
            error = StoreError(f"{doing}: {exc}", path=exc.filename and str(exc.filename))
            error.__cause__ = exc
            return error
        return exc

    def _commit_group(self, group: list[_Job], *, dir_synced: bool = False) -> None:
        if not group:
            return
        if not dir_synced and any(job.sync_dir for job in group):
            try:
                self._sync_dir()
            except OSError as exc:
                for job in group:
                    self._fail(job, self._error(exc, "syncing the messages directory"))
                return
        lazy = not any(job.durable for job in group)
        try:
            # Nothing in a lazy group needs a sync of its own: the next synced commit covers it. The level is
            # switched only when it changes (a busy server commits lazy groups one after the other).
            self._synchronous("NORMAL" if lazy else "FULL")
            self._conn.execute("BEGIN IMMEDIATE")
            results = [job.apply(self._conn) for job in group]
            self._conn.execute("COMMIT")
        except Exception as exc:
            rollback(self._conn)
            if len(group) > 1:
                for job in group:
                    self._commit_group([job], dir_synced=True)
            else:
                self._fail(group[0], self._error(exc, "committing to the index"))
            return
        with self._lock:
            self.commits += 1
            self.largest_batch = max(self.largest_batch, len(group))
            self.committed.update(job.kind for job in group)
        for job, result in zip(group, results, strict=True):
            job.future.set_result(result)

    def _synchronous(self, level: str) -> None:
        if level != self._level:
            self._conn.execute(f"PRAGMA synchronous = {level}")
            self._level = level

    def _run_alone(self, job: _Job) -> None:
        self._synchronous("FULL")  # a job that runs alone manages its own transactions: every commit durable
        try:
            result = job.apply(self._conn)
        except Exception as exc:
            rollback(self._conn)
            self._fail(job, self._error(exc, f"running {job.kind}"))
            return
        job.future.set_result(result)
