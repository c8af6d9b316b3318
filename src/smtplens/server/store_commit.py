"""Group commit: one thread owns the index's writing connection; concurrent writes share a transaction.

Every write is a job. The thread takes the first waiting job and every job queued behind it (up to
``max_batch``) as a group. It runs the group's ``prepare`` steps (writing message files), then the second steps
they return (the files' fsyncs: files written together reach the disk together), then applies all the jobs in
one transaction and commits it: one WAL fsync for the
group, none when no job in it is ``durable`` (message rows, whose files are durable and carry the same data,
and session transcripts: the next synced commit makes them durable, the WAL being written in order). While the
thread works, the next group gathers, so the busier the server, the bigger the groups. A job whose apply fails
does not sink its group: the group is rolled back and every job retried alone. Jobs that must commit in several
steps (deletions) run alone, in queue order.

A job's result goes to a ``concurrent.futures.Future`` (``submit``, ``submit_alone``), to an asyncio future
(``submit_waiting``: the results of a group are handed to each event loop in one call, one wake-up of the loop
for the whole group rather than one per job), or nowhere (``submit_quiet``: a failure goes to a callback).
A quiet job does not wake a writer that has just worked: it goes with the next job, or after ``linger`` seconds.
*Early* jobs (lazy ones with ``on_uncommitted``: message rows, whose records are already durable) get their
results once their rows are in the transaction, while the COMMIT runs; ``wait_committed`` lets readers wait for
it, and a failed COMMIT is reported to ``on_uncommitted``. A transaction holding only such rows and quiet jobs
(nobody waits for its COMMIT) is *held* open: the next groups add to it, and it is committed when a reader waits
for it (``wait_committed``), when another kind of job comes, after ``hold`` seconds or ``max_batch`` jobs, or at
``close()``: one BEGIN and one COMMIT (one write of the shared pages to the WAL) serve many messages even when
they come one at a time.

``run_now`` is the way for a caller with nothing to do meanwhile (one SMTP session open): when the writer thread
is idle and nothing is queued, the calling thread runs the job itself, holding the lock the writer thread takes
for each group: it writes the record, hands its sync to a helper thread, puts the row into the held transaction
(inside a savepoint) while the sync runs, and returns once both are done; a failed sync takes the row back out.
The hand-off to the writer thread and back through the event loop, and the writer's group bookkeeping, are
saved, and the row costs no time of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smtplens.server.store_index import rollback, store_error
from smtplens.server.store_model import StoreError
from smtplens.server.store_offload import Offload, Pending

__all__ = ["BUSY", "Committer", "Later"]

Apply = Callable[[sqlite3.Connection], object]


@dataclass(slots=True)
class _Job:
    apply: Apply
    future: Future[Any] | None
    kind: str
    grouped: bool
    on_failure: Callable[[], None] | None
    durable: bool = True
    prepare: Callable[[], Callable[[], None]] | None = None
    waiter: asyncio.Future[Any] | None = None
    on_error: Callable[[BaseException], None] | None = None
    early: bool = False
    on_uncommitted: Callable[[BaseException], None] | None = None

    @property
    def quiet(self) -> bool:
        """Nobody waits for this job's result (a transcript from ``record_session_soon``)."""
        return self.future is None and self.waiter is None


class Later:
    """``run_now``'s answer when the disk is slow: the job finishes in the helper thread; await ``waiter``."""

    __slots__ = ("waiter",)

    def __init__(self, waiter: asyncio.Future[Any]) -> None:
        self.waiter = waiter


class _Busy:
    """``run_now``'s answer when the writer thread is at work or jobs are queued: submit instead."""


BUSY = _Busy()
_WAKE = _Job(lambda conn: None, None, "wake", True, None)  # wakes the writer for the quiet jobs
_FLUSH = _Job(lambda conn: None, None, "flush", True, None)  # a reader waits: commit the held transaction


def _claim(job: _Job) -> bool:
    """Mark a job's future running; False when its waiter cancelled it before the job started."""
    if job.waiter is not None:
        return not job.waiter.cancelled()  # read from this thread: at worst a late cancel stores regardless
    future = job.future
    return future is None or future.running() or future.set_running_or_notify_cancel()


def _clean_up(job: _Job, error: BaseException) -> None:
    """Run a failed job's ``on_failure``; should that fail too, ``error`` (the one reported) says so in a note."""
    if job.on_failure is not None:
        try:
            job.on_failure()
        except Exception as cleanup:
            error.add_note(f"and cleaning up failed: {cleanup!r}")


def _hand_over(results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """In the event loop: give every waiting future of a group its result."""
    for waiter, result, error in results:
        if waiter.cancelled():
            continue
        if error is None:
            waiter.set_result(result)
        else:
            waiter.set_exception(error)


class Committer:
    """The writer thread. ``submit`` and ``submit_alone`` are safe from any thread; results come as futures."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        index_path: Path,
        *,
        max_batch: int = 512,
        linger: float = 0.05,
        hold: float = 0.05,
        lone_wait: float = 0.01,
    ) -> None:
        self._conn = conn
        self._path = index_path
        self._max_batch = max_batch
        self._level = "FULL"  # the connection's synchronous setting (connect() sets FULL)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.committed: Counter[str] = Counter()
        self.commits = 0
        self.largest_batch = 0
        self._results: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]]
        self._results = {}
        self._linger = linger
        self._quiet: deque[_Job] = deque()  # jobs that do not wake the writer (``submit_quiet``)
        self._wake_lock = threading.Lock()
        self._asleep = False  # the writer waits without a time limit: a quiet job must wake it
        self._committing = False  # results handed out early, their COMMIT not done yet
        self._hold = hold
        self._lone_wait = lone_wait  # how long run_now blocks its thread for a sync before handing it on
        self._held: list[_Job] = []  # the jobs of the transaction held open (writer thread)
        self._held_since = 0.0
        self._flush_asked = False  # a _FLUSH is queued (under _wake_lock)
        self._committed = threading.Condition()
        self._busy = threading.Lock()  # held by whoever runs jobs: the writer thread, or a caller of run_now
        self._stopped = False
        self._helper = Offload()  # a lone job's sync runs there while its row goes in
        self._thread = threading.Thread(target=self._run, name="smtplens-store-commit", daemon=True)
        self._thread.start()

    def submit(
        self,
        apply: Apply,
        *,
        kind: str,
        on_failure: Callable[[], None] | None = None,
        future: Future[Any] | None = None,
        durable: bool = True,
        prepare: Callable[[], Callable[[], None]] | None = None,
    ) -> Future[Any]:
        """:meth:`submit_waiting` from any thread: the result comes as a ``concurrent.futures.Future``."""
        future = future or Future()
        self._queue.put(_Job(apply, future, kind, True, on_failure, durable, prepare))
        return future

    def submit_waiting(
        self,
        apply: Apply,
        *,
        kind: str,
        on_failure: Callable[[], None] | None = None,
        durable: bool = True,
        prepare: Callable[[], Callable[[], None]] | None = None,
        on_uncommitted: Callable[[BaseException], None] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue ``apply(conn)`` for the next group transaction, from a running event loop: the result comes as
        a future of that loop, after the commit.

        ``on_failure`` runs (in the writer thread) when the job fails, before its future gets the error.
        ``durable=False``: the job may be committed without syncing the index (a group of such jobs only), so a
        crash can take it back; it becomes durable with the next synced commit (the WAL is written in order), at
        the latest when the store closes. ``prepare()`` runs in the writer thread before the group's transaction
        (a message's record written) and returns a second step, run once every job of the group is prepared (the
        sync). If either raises, the job fails with that error (``on_failure`` is not called: the steps clean up
        after themselves); the rest of the group goes on.

        ``on_uncommitted`` makes the job *early* (with ``durable=False`` only): its result is handed out once its
        ``prepare`` steps and ``apply`` succeeded, before the group's COMMIT (which writes the WAL) is done; if
        that COMMIT fails, ``on_uncommitted`` is told (in the writer thread). Readers that must see such a result
        call :meth:`wait_committed` first.
        """
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        early = on_uncommitted is not None and not durable
        job = _Job(apply, None, kind, True, on_failure, durable, prepare, waiter, None, early, on_uncommitted)
        self._queue.put(job)
        return waiter

    def run_now(
        self,
        apply: Apply,
        *,
        kind: str,
        prepare: Callable[[], Callable[[], None]],
        on_failure: Callable[[], None],
        on_uncommitted: Callable[[BaseException], None],
    ) -> Any:
        """Run an early job (see :meth:`submit_waiting`: ``durable=False`` with ``on_uncommitted``) in the calling
        thread, from a running event loop, if the writer thread is idle and no job is queued: its result, or its
        error raised. ``BUSY`` when the writer is at work: submit the job instead. The row joins the held
        transaction, which the writer thread commits as it would its own. The thread waits for the record's sync
        ``lone_wait`` seconds at most: a ``Later`` when the disk is slower, whose ``waiter`` gets the result."""
        if self._queue.qsize() or not self._busy.acquire(blocking=False):
            return BUSY
        job = _Job(apply, None, kind, True, on_failure, False, prepare, None, None, True, on_uncommitted)
        try:
            if self._stopped:
                raise StoreError("the store is closed", path=str(self._path.parent))
            syncing, result = self._begin_lone(job)
        except BaseException:
            self._after_lone()
            raise
        if not syncing.wait(self._lone_wait):
            try:
                waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            except RuntimeError:  # driven without an event loop: this thread waits for the sync
                pass
            else:
                if syncing.then(lambda: self._end_late(job, syncing, result, waiter)):
                    return Later(waiter)
            syncing.wait()
        try:
            return self._end_lone(job, syncing, result)
        finally:
            self._after_lone()

    def _begin_lone(self, job: _Job) -> tuple[Pending, Any]:
        """What ``_prepared`` and ``_commit_group`` do for a group of one early job, up to its sync, without their
        lists and futures: the record written, its sync started in the helper thread, the row put into the
        transaction meanwhile (inside a savepoint, so that a failed sync can take it back out); a failure raised
        (the job cleaned up, as the writer thread would)."""
        assert job.prepare is not None
        try:
            syncing = self._helper.start(job.prepare())
        except Exception as exc:
            error = self._error(exc, f"preparing {job.kind}")
            if error is exc:
                raise
            raise error from exc
        try:
            self._synchronous("NORMAL")
            if not self._held:
                self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("SAVEPOINT lone")
            return syncing, job.apply(self._conn)
        except Exception as exc:
            syncing.wait()  # the job fails whatever its sync did; its record is voided once that is over
            self._abandon(exc)
            error = self._error(exc, "committing to the index")
            _clean_up(job, error)
            if error is exc:
                raise
            raise error from exc

    def _end_lone(self, job: _Job, syncing: Pending, result: Any) -> Any:
        """After the lone job's sync: its row kept (the result returned), or taken back out (the error raised)."""
        synced = syncing.error
        try:
            if synced is not None:
                self._conn.execute("ROLLBACK TO lone")
            self._conn.execute("RELEASE lone")
        except sqlite3.Error as exc:
            self._abandon(exc)
            if synced is None:  # the record is durable, its row is lost with the transaction: logged, indexed later
                self._uncommitted([job], exc)
                return result
        if synced is not None:  # the record may not be on the disk: its row is out again, the sender gets a 4xx
            raise self._sync_failure(synced, job.kind)
        self._keep([job])  # the writer thread commits it (after ``hold`` seconds, or when a reader waits)
        if self._hold <= 0 or len(self._held) >= self._max_batch:
            self._release()
        return result

    def _end_late(self, job: _Job, syncing: Pending, result: Any, waiter: asyncio.Future[Any]) -> None:
        """In the helper thread, after a slow sync: end the lone job and hand its result to the event loop."""
        error: BaseException | None = None
        try:
            result = self._end_lone(job, syncing, result)
        except BaseException as exc:  # handed to the waiter
            error = exc
        finally:
            self._after_lone()
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            waiter.get_loop().call_soon_threadsafe(_hand_over, [(waiter, result, error)])

    def _after_lone(self) -> None:
        """Give the writer's lock back; wake the writer thread if it must commit the held transaction in time."""
        held = bool(self._held)
        self._busy.release()
        if held:
            self._wake_sleeper()

    def _wake_sleeper(self) -> None:
        """Wake the writer thread if it waits without a time limit (it must see new quiet or held work)."""
        with self._wake_lock:
            wake, self._asleep = self._asleep, False
        if wake:
            self._queue.put(_WAKE)

    def _sync_failure(self, exc: BaseException, kind: str) -> BaseException:
        """The error a lone job's caller gets when its sync raised ``exc`` in the helper thread."""
        if not isinstance(exc, Exception):
            return exc
        error = self._error(exc, f"preparing {kind}")
        if error is not exc and error.__cause__ is None:
            error.__cause__ = exc
        return error

    def _abandon(self, exc: BaseException) -> None:
        """Roll the transaction back after ``exc``: rows handed out earlier are tried again on their own."""
        rollback(self._conn)
        held, self._held = self._held, []
        if held and isinstance(exc, Exception):
            self._uncommitted(held, exc)
        if self._committing:
            self._settle()

    def submit_quiet(self, apply: Apply, *, kind: str, on_error: Callable[[BaseException], None]) -> None:
        """A job without a result: a lazy job whose failure is given to ``on_error`` (in the writer thread).

        It does not wake the writer thread when that thread has just done some work: it goes with the next job,
        or after ``linger`` seconds at the latest (one wake-up per message with one client at a time, not two).
        """
        with self._wake_lock:
            self._quiet.append(_Job(apply, None, kind, True, None, False, None, None, on_error))
        self._wake_sleeper()

    def submit_alone(self, run: Apply, *, kind: str) -> Future[Any]:
        """Queue ``run(conn)``, which manages its own transactions, to run between groups."""
        future: Future[Any] = Future()
        self._queue.put(_Job(run, future, kind, False, None))
        return future

    def wait_committed(self, timeout: float = 30.0) -> None:
        """Return once results handed out early are committed (a held transaction is committed now)."""
        if self._committing:
            with self._wake_lock:
                ask, self._flush_asked = not self._flush_asked, True
            if ask:
                self._queue.put(_FLUSH)
            with self._committed:
                self._committed.wait_for(lambda: not self._committing, timeout)

    def snapshot(self) -> tuple[dict[str, int], int, int]:
        """Jobs committed by kind, commits, largest group: consistent with each other (and with every result
        handed out: a COMMIT in flight is waited for)."""
        self.wait_committed()
        with self._lock:
            return dict(self.committed), self.commits, self.largest_batch

    def pending(self) -> int:
        """How many jobs wait for the writer thread (approximately: the queue moves while you look)."""
        return self._queue.qsize()

    def close(self) -> None:
        """Finish every queued job, then stop the thread (the last lazy commits are synced)."""
        with self._busy:  # a run_now in progress finishes first (the writer commits its row); later ones are refused
            self._stopped = True
        self._queue.put(None)
        self._thread.join()
        self._helper.close()
        if self._level != "FULL":
            self._conn.execute("PRAGMA synchronous = FULL")
            self._level = "FULL"

    def _run(self) -> None:
        worked = False  # wait at most ``linger`` then (a quiet job may come that does not wake us)
        stop = False
        while not stop:
            with self._wake_lock:
                self._asleep = not worked and not self._quiet and not self._held
                forever = self._asleep
            timeout = self._linger
            if self._held:
                timeout = max(0.0, min(timeout, self._held_since + self._hold - time.monotonic()))
            try:
                first = self._queue.get(timeout=None if forever else timeout)
            except queue.Empty:
                first = _WAKE
            with self._wake_lock:
                self._asleep = False
            with self._busy:
                stop, worked = self._round(first)

    def _round(self, first: _Job | None) -> tuple[bool, bool]:
        """One round of the writer thread after ``first`` woke it: whether to stop, and whether work was done."""
        batch: list[_Job] = []
        flush = first is _FLUSH
        stop = False
        if first is None:
            stop = True
        elif first is not _WAKE and first is not _FLUSH:
            batch.append(first)
            stop, flush = self._drain(batch)
        quiet = self._take_quiet()
        batch = quiet + batch  # queued before the jobs that woke us, or at the same time
        if batch:
            self._process(batch)
        if self._held and (
            flush or stop or len(self._held) >= self._max_batch or time.monotonic() - self._held_since >= self._hold
        ):
            self._release()
        self._deliver()
        return stop, bool(batch)

    def _take_quiet(self) -> list[_Job]:
        with self._wake_lock:
            quiet = list(self._quiet)
            self._quiet.clear()
        return quiet

    def _drain(self, batch: list[_Job]) -> tuple[bool, bool]:
        """Add the jobs waiting now to ``batch``; whether ``close()`` was asked for meanwhile, and whether a
        reader waits for the held transaction."""
        flush = False
        while len(batch) < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return False, flush
            if job is None:
                return True, flush
            if job is _FLUSH:
                flush = True
            elif job is not _WAKE:
                batch.append(job)
        return False, flush

    def _done(self, job: _Job, result: Any = None, error: BaseException | None = None) -> None:
        """Give a job its result or error (asyncio futures: gathered per loop, handed over by ``_deliver``)."""
        if job.waiter is not None:
            loop = job.waiter.get_loop()
            self._results.setdefault(loop, []).append((job.waiter, result, error))
        elif job.future is not None:
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)
        elif error is not None and job.on_error is not None:
            job.on_error(error)

    def _deliver(self) -> None:
        results, self._results = self._results, {}
        for loop, items in results.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_hand_over, items)

    def _process(self, batch: list[_Job]) -> None:
        group: list[_Job] = []
        for job in batch:
            if not _claim(job):
                continue
            if job.grouped:
                group.append(job)
                continue
            self._commit_group(self._prepared(group))
            group = []
            self._release()
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
                self._done(job, error=self._error(exc, f"preparing {job.kind}"))
        ready: list[_Job] = []
        for job, then in pending:
            if then is not None:
                try:
                    then()
                except Exception as exc:
                    self._done(job, error=self._error(exc, f"preparing {job.kind}"))
                    continue
            ready.append(job)
        return ready

    def _fail(self, job: _Job, exc: BaseException) -> None:
        _clean_up(job, exc)
        self._done(job, error=exc)

    def _error(self, exc: Exception, doing: str) -> BaseException:
        if isinstance(exc, sqlite3.Error):
            return store_error(exc, self._path, doing)
        if isinstance(exc, OSError) and not isinstance(exc, StoreError):
            error = StoreError(f"{doing}: {exc}", path=exc.filename and str(exc.filename))
            error.__cause__ = exc
            return error
        return exc

    def _commit_group(self, group: list[_Job], *, hold: bool = True) -> None:
        if not group:
            return
        lazy = not any(job.durable for job in group)
        if not lazy:
            self._release()  # a durable group commits on its own (synchronous=FULL)
        early = lazy and any(job.early for job in group)
        if early:  # their rows first, so that their results go out as soon as they are in the transaction
            group = [job for job in group if job.early] + [job for job in group if not job.early]
        handed = False  # the early jobs have their results
        try:
            # Nothing in a lazy group needs a sync of its own: the next synced commit covers it. The level is
            # switched only when it changes (a busy server commits lazy groups one after the other).
            self._synchronous("NORMAL" if lazy else "FULL")
            if not self._held:
                self._conn.execute("BEGIN IMMEDIATE")
            results: list[object] = []
            for job in group:
                if early and not handed and not job.early:
                    handed = True
                    self._hand_out_early(group, results)
                results.append(job.apply(self._conn))
            if early and not handed:
                handed = True
                self._hand_out_early(group, results)
            if lazy and hold and self._hold > 0 and all(job.early or job.quiet for job in group):
                self._keep(group)  # nobody waits for this COMMIT: the next groups join the transaction
                return
            self._conn.execute("COMMIT")
            held, self._held = self._held, []
            self._count(held + group)
        except Exception as exc:
            rollback(self._conn)
            held, self._held = self._held, []
            if handed:
                self._uncommitted(held + group, exc)
                return
            if held:  # rows handed out by earlier groups: tried again on their own
                self._uncommitted(held, exc)
            if len(group) > 1:
                for job in group:
                    self._commit_group([job], hold=False)
            else:
                self._fail(group[0], self._error(exc, "committing to the index"))
            return
        finally:
            if self._committing and not self._held:
                self._settle()
        for job, result in zip(group, results, strict=True):
            if not (handed and job.early):
                self._done(job, result)

    def _keep(self, group: list[_Job]) -> None:
        """Hold the transaction open with ``group`` in it (readers wait for it: ``wait_committed``)."""
        if not self._held:
            self._held_since = time.monotonic()
            with self._committed:
                self._committing = True
        self._held.extend(group)

    def _release(self) -> None:
        """Commit the held transaction, if any."""
        if not self._held:
            return
        held, self._held = self._held, []
        try:
            self._conn.execute("COMMIT")
            self._count(held)
        except Exception as exc:
            rollback(self._conn)
            self._uncommitted(held, exc)
        finally:
            self._settle()

    def _settle(self) -> None:
        """Nothing handed out is uncommitted any more: wake the readers waiting for it."""
        with self._wake_lock:
            self._flush_asked = False
        with self._committed:
            self._committing = False
            self._committed.notify_all()

    def _count(self, group: list[_Job]) -> None:
        with self._lock:
            self.commits += 1
            self.largest_batch = max(self.largest_batch, len(group))
            self.committed.update(job.kind for job in group)

    def _hand_out_early(self, group: list[_Job], results: list[object]) -> None:
        """The early jobs' rows are in the transaction: give them their results before the COMMIT."""
        with self._committed:
            self._committing = True
        for job, result in zip(group, results, strict=False):
            if job.early:
                self._done(job, result)
        self._deliver()

    def _uncommitted(self, group: list[_Job], exc: Exception) -> None:
        """A transaction whose early jobs already have their results failed: each early job's row is tried again
        alone (then, failing that, ``on_uncommitted``); the other jobs are retried one by one."""
        for job in group:
            if not job.early:
                continue
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                job.apply(self._conn)
                self._conn.execute("COMMIT")
                self._count([job])
            except Exception as again:
                rollback(self._conn)
                error = self._error(again, "committing to the index")
                error.__context__ = exc
                if job.on_uncommitted is not None:
                    try:
                        job.on_uncommitted(error)
                    except Exception as cleanup:  # pragma: no cover - a logging hook
                        error.add_note(f"and reporting it failed: {cleanup!r}")
        for job in group:
            if not job.early:
                self._commit_group([job], hold=False)

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
        self._done(job, result)
