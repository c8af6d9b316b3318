"""The durable message store: store, read, list, search, delete, purge, concurrency, recovery and real crashes.

Everything runs against real files and a real SQLite index in a temporary directory. The crash test runs the
store in a child process, kills it with SIGKILL at a random moment and checks that every queue id the child
saw ``store()`` return is in the reopened store with its bytes intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from smtplens.errors import SmtplensError
from smtplens.server import BodyType, Direction, Envelope, MailFrom, RcptTo, TranscriptLine, store_segments
from smtplens.server.retention import keep_retention
from smtplens.server.store import MessageStore, StoreError
from smtplens.server.store_records import encode_record, scan_records

ROOT = Path(__file__).resolve().parents[1]
MESSAGE = (
    b"From: Alice <alice@example.org>\r\nSubject: Quarterly figures\r\n"
    b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nHello.\r\n"
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def envelope(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "mail_from": "alice@example.org",
        "recipients": ["bob@example.net"],
        "client_address": "192.0.2.10",
        "helo": "mail.example.org",
    }
    base.update(fields)
    return base


def put(
    store: MessageStore,
    message: bytes = MESSAGE,
    session_id: str | None = "S1",
    *,
    alone: bool = False,
    **fields: object,
) -> str:
    return asyncio.run(store.store(envelope(**fields), message, session_id, alone=alone))


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "data"


def segment_files(directory: Path) -> list[Path]:
    return sorted((directory / "segments").iterdir())


def records(directory: Path) -> dict[str, bool]:
    """Every record in the segments, by queue id: True when committed, False when void."""
    found: dict[str, bool] = {}
    for path in segment_files(directory):
        for record in scan_records(path.read_bytes()).records:
            found[record.queue_id] = not record.void
    return found


def sql(directory: Path, statement: str, *params: object) -> None:
    """Change the index by hand, as a crash or an operator might have left it."""
    conn = sqlite3.connect(directory / "index.sqlite")
    with conn:
        conn.execute(statement, params)
    conn.close()


def unindex_everything(directory: Path) -> None:
    """What a crash that took back every row committed without a sync looks like (at its worst): no message
    rows, no segment marked as indexed or sealed."""
    sql(directory, "DELETE FROM messages")
    sql(directory, "UPDATE segments SET indexed_end = 0, sealed = 0")


# -- store, read, list, search ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alone", [False, True], ids=["writer-thread", "alone"])
def test_store_then_read_back(directory: Path, alone: bool) -> None:
    with MessageStore(directory) as store:
        queue_id = put(
            store,
            alone=alone,
            tls={"version": "TLSv1.3"},
            auth_identity="alice",
            client_address=("2001:db8::1", 40000),
            mail_options=["SIZE=120", "BODY=8BITMIME"],
        )
        stored = store.message(queue_id)
    assert stored is not None
    assert stored.raw == MESSAGE
    info = stored.info
    assert info.queue_id == queue_id
    assert info.mail_from == "alice@example.org"
    assert info.recipients == ("bob@example.net",)
    assert info.client_address == "[2001:db8::1]:40000"
    assert info.helo == "mail.example.org"
    assert info.tls == '{"version": "TLSv1.3"}'
    assert info.auth_identity == "alice"
    assert info.session_id == "S1"
    assert info.subject == "Quarterly figures"
    assert info.size == len(MESSAGE)
    assert info.sha256 == hashlib.sha256(MESSAGE).hexdigest()
    assert info.envelope == {"mail_options": ["SIZE=120", "BODY=8BITMIME"]}
    assert info.state == "stored"
    assert not info.recovered
    assert json.loads(json.dumps(info.to_dict()))["recipients"] == ["bob@example.net"]


def test_the_sessions_envelope_and_transcript_are_taken_as_they_are(directory: Path) -> None:
    """The adapter may hand over ``Deliver.envelope`` and ``Session.transcript`` without converting them."""
    mail = MailFrom("alice@example.org", size=120, body=BodyType.EIGHT_BIT_MIME, envid="E1")
    rcpt = RcptTo("bob@example.net", notify=("FAILURE", "DELAY"), orcpt="rfc822;bob@example.net")
    env = Envelope("192.0.2.10", "mail.example.org", mail, (rcpt,), tls=True, auth="alice")
    transcript = [
        TranscriptLine(Direction.CLIENT, "RCPT TO:<bob@example.net>"),
        TranscriptLine(Direction.SERVER, "250 2.1.5 Ok", "relay"),
    ]
    with MessageStore(directory) as store:
        queue_id = asyncio.run(store.store(env, MESSAGE, "S9"))
        asyncio.run(store.record_session("S9", client_address="192.0.2.10", started_at=1.0, transcript=transcript))
        stored = store.message(queue_id)
        session = store.session("S9")
    assert stored is not None and session is not None
    info = stored.info
    assert (info.mail_from, info.recipients, info.helo) == ("alice@example.org", ("bob@example.net",), env.helo)
    assert (info.tls, info.auth_identity, info.client_address) == ("yes", "alice", "192.0.2.10")
    assert info.envelope["mail"] == {
        "address": "alice@example.org",
        "size": 120,
        "body": "8BITMIME",
        "smtputf8": False,
        "ret": None,
        "envid": "E1",
        "auth": None,
    }
    assert info.envelope["recipient_parameters"] == [
        {"address": "bob@example.net", "notify": ["FAILURE", "DELAY"], "orcpt": "rfc822;bob@example.net"}
    ]
    assert session.transcript == (("C", "RCPT TO:<bob@example.net>", None), ("S", "250 2.1.5 Ok", "relay"))


def test_message_is_a_self_describing_record_in_a_segment(directory: Path) -> None:
    with MessageStore(directory) as store:
        queue_id = put(store)
        info = store.message(queue_id)
    assert info is not None
    [segment] = segment_files(directory)
    assert segment.name == "000000000001.seg"
    scan = scan_records(segment.read_bytes())
    assert scan.torn is None  # zeros after the record
    [record] = scan.records
    assert (record.queue_id, record.body, record.void) == (queue_id, MESSAGE, False)
    assert record.meta["sha256"] == info.info.sha256 == hashlib.sha256(MESSAGE).hexdigest()
    assert record.meta["recipients"] == ["bob@example.net"]
    assert not (directory / "messages").exists()


def test_index_is_wal_with_the_documented_tables(directory: Path) -> None:
    MessageStore(directory).close()
    conn = sqlite3.connect(directory / "index.sqlite")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {r[1] for r in conn.execute("PRAGMA table_info(messages)")}
    finally:
        conn.close()
    assert {"messages", "sessions"} <= tables
    assert {"queue_id", "received_at", "client_address", "helo", "mail_from", "recipients", "size"} <= columns
    assert {"sha256", "tls", "auth_identity", "session_id"} <= columns


def test_list_is_newest_first_and_pages(directory: Path) -> None:
    clock = Clock()
    with MessageStore(directory, clock=clock) as store:
        ids = []
        for n in range(5):
            clock.now += 10
            ids.append(put(store, recipients=[f"r{n}@example.net"]))
        assert [m.queue_id for m in store.messages()] == ids[::-1]
        assert [m.queue_id for m in store.messages(limit=2, offset=1)] == [ids[3], ids[2]]
        assert store.count() == 5
        with pytest.raises(StoreError):
            store.messages(limit=-1)


def test_search_matches_fields_and_takes_wildcards_literally(directory: Path) -> None:
    with MessageStore(directory) as store:
        first = put(store, recipients=["carol@example.net", "dave@example.com"])
        second = put(store, mail_from="", recipients=["erin@example.net"], message=b"Subject: 100% off\r\n\r\nx\r\n")
        assert [m.queue_id for m in store.messages(search="DAVE@")] == [first]
        assert [m.queue_id for m in store.messages(search="100%")] == [second]
        assert store.messages(search="_%") == []
        assert [m.queue_id for m in store.messages(search=first[-8:])] == [first]
        assert store.count(search="example.net") == 2
        assert store.message(second) is not None
        info = store.messages(search="erin")[0]
        assert info.mail_from == ""


def test_sessions_recorded_replaced_and_searched(directory: Path) -> None:
    transcript = [("S", "220 mx ESMTP smtplens", None), ("C", "EHLO client", None), ("S", "250 ok", None)]
    with MessageStore(directory) as store:
        asyncio.run(store.record_session("S1", client_address="192.0.2.10", started_at=100.0, transcript=transcript))
        asyncio.run(
            store.record_session(
                "S1",
                client_address="192.0.2.10",
                started_at=100.0,
                ended_at=101.5,
                transcript=[*transcript, ("C", "RCPT TO:<x@y>", None), ("S", "451 4.7.1 Try later", "greylist")],
                outcome="deferred",
            )
        )
        asyncio.run(store.record_session("S2", client_address="198.51.100.7", started_at=200.0, outcome="quit"))
        record = store.session("S1")
        assert record is not None
        assert record.ended_at == 101.5
        assert record.transcript[-1] == ("S", "451 4.7.1 Try later", "greylist")
        assert record.outcome == "deferred"
        assert [s.session_id for s in store.sessions()] == ["S2", "S1"]
        assert [s.session_id for s in store.sessions(search="greylist")] == ["S1"]
        assert store.session("nope") is None
        assert store.stats().sessions_recorded == 3
        assert record.to_dict()["transcript"] == [list(entry) for entry in record.transcript]
        with pytest.raises(StoreError, match="transcript entry"):
            asyncio.run(store.record_session("S3", client_address="x", started_at=1.0, transcript=[("C", "x")]))


def test_bad_input_is_a_clear_store_error(directory: Path) -> None:
    with MessageStore(directory) as store:
        with pytest.raises(StoreError, match="recipients"):
            put(store, recipients=[])
        with pytest.raises(StoreError, match="mail_from"):
            asyncio.run(store.store({"recipients": ["a@b"]}, MESSAGE))
        with pytest.raises(StoreError, match="bytes"):
            asyncio.run(store.store(envelope(), "text", None))  # type: ignore[arg-type]
        assert store.message("../../etc/passwd") is None
        assert not store.delete("../index.sqlite")
    assert issubclass(StoreError, SmtplensError)


# -- delete and purge -----------------------------------------------------------------------------------------


def test_delete_removes_the_row_and_a_deleted_message_stays_deleted(directory: Path) -> None:
    with MessageStore(directory) as store:
        keep, gone = put(store), put(store)
        assert store.delete(gone)
        assert not store.delete(gone)
        assert store.message(gone) is None
        assert [m.queue_id for m in store.messages()] == [keep]
    assert set(records(directory)) == {keep, gone}  # the record stays until its segment is emptied...
    sql(directory, "UPDATE segments SET sealed = 0")  # ...and is not indexed again, even by a full scan
    with MessageStore(directory) as store:
        assert store.recovery.clean
        assert [m.queue_id for m in store.messages()] == [keep]


def test_a_segment_is_removed_once_no_message_is_left_in_it(directory: Path) -> None:
    big = b"Subject: big\r\n\r\n" + b"x" * 3000  # one per 4 KiB segment
    with MessageStore(directory, segment_size=4096) as store:
        first, second, third = put(store, big), put(store, big), put(store, big)
        assert len(segment_files(directory)) >= 3
        assert store.delete(first) and store.delete(second)
        names = [path.name for path in segment_files(directory)]
        assert "000000000001.seg" not in names and "000000000002.seg" not in names
        assert store.delete(third)  # the segment being written stays...
        assert "000000000003.seg" in [path.name for path in segment_files(directory)]
    with MessageStore(directory, segment_size=4096) as store:  # ...until the next start
        assert store.count() == 0
        assert "000000000003.seg" not in [path.name for path in segment_files(directory)]


def test_purge_by_count_keeps_the_newest(directory: Path) -> None:
    clock = Clock()
    with MessageStore(directory, retention_count=3, clock=clock) as store:
        ids = []
        for _ in range(5):
            clock.now += 1
            ids.append(put(store))
        assert store.purge().messages == 2
        assert [m.queue_id for m in store.messages()] == ids[:1:-1]
        assert store.purge().messages == 0
    with MessageStore(directory, retention_count=3, clock=clock) as store:
        assert store.recovery.clean
        assert [m.queue_id for m in store.messages()] == ids[:1:-1]


def test_purge_by_age_and_sessions(directory: Path) -> None:
    clock = Clock()
    with MessageStore(directory, retention_seconds=3600, clock=clock) as store:
        old = put(store, session_id="old-with-mail")
        asyncio.run(store.record_session("old-with-mail", client_address="a", started_at=clock.now))
        asyncio.run(store.record_session("old-alone", client_address="a", started_at=clock.now))
        clock.now += 3000
        new = put(store, session_id="new")
        asyncio.run(store.record_session("new", client_address="a", started_at=clock.now))
        clock.now += 1000
        purged = store.purge()
        assert purged.messages == 1
        assert [m.queue_id for m in store.messages()] == [new]
        assert store.message(old) is None
        # the old session lost its message in the same purge, so it goes too; the lone old one goes
        assert purged.sessions == 2
        assert [s.session_id for s in store.sessions()] == ["new"]


def test_purge_keeps_a_session_whose_message_is_kept(directory: Path) -> None:
    clock = Clock()
    with MessageStore(directory, retention_count=1, clock=clock) as store:
        put(store, session_id="A")
        asyncio.run(store.record_session("A", client_address="a", started_at=clock.now))
        clock.now += 1
        asyncio.run(store.record_session("B", client_address="b", started_at=clock.now))
        purged = store.purge()
        assert purged == type(purged)(messages=0, sessions=0)
        assert {s.session_id for s in store.sessions()} == {"A", "B"}


def test_retention_must_make_sense(directory: Path) -> None:
    with pytest.raises(StoreError, match="retention_count"):
        MessageStore(directory, retention_count=-1)


# -- concurrency and group commit ------------------------------------------------------------------------------


def test_many_concurrent_stores(directory: Path) -> None:
    messages = [b"Subject: m%d\r\n\r\n" % n + os.urandom(n * 37) for n in range(200)]

    async def main(store: MessageStore) -> list[str]:
        return await asyncio.gather(
            *(store.store(envelope(recipients=[f"r{n}@example.net"]), m, f"S{n}") for n, m in enumerate(messages))
        )

    with MessageStore(directory) as store:
        ids = asyncio.run(main(store))
        assert len(set(ids)) == 200
        for queue_id, message in zip(ids, messages, strict=True):
            stored = store.message(queue_id)
            assert stored is not None and stored.raw == message
        stats = store.stats()
        assert stats.messages_stored == 200
        assert stats.commits <= 200
        assert store.count() == 200


def test_concurrent_stores_share_one_commit(directory: Path) -> None:
    """Stores that queue up while the writer is busy are committed together: one transaction, one fsync."""
    entered, gate = threading.Event(), threading.Event()

    def hold(_conn: sqlite3.Connection) -> None:
        entered.set()
        gate.wait(30)

    async def main(store: MessageStore) -> list[str]:
        store._committer.submit_alone(hold, kind="test")
        assert entered.wait(30)  # the writer is busy, and took nothing else with this job
        tasks = [asyncio.ensure_future(store.store(envelope(), MESSAGE, None)) for _ in range(20)]
        deadline = time.monotonic() + 30
        while store._committer.pending() < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.gather(*tasks)

    with MessageStore(directory) as store:
        ids = asyncio.run(main(store))
        stats = store.stats()
    assert len(set(ids)) == 20
    assert stats.messages_stored == 20
    assert stats.commits == 1
    assert stats.largest_batch == 20


def test_stores_from_several_threads(directory: Path) -> None:
    with MessageStore(directory) as store:
        results: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(10):
                queue_id = put(store)
                with lock:
                    results.append(queue_id)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(results)) == 40
        assert store.count() == 40


# -- lifecycle ------------------------------------------------------------------------------------------------


def _committed_rows(directory: Path) -> list[tuple[str]]:
    """The message rows another connection sees (what is committed), waiting up to 10 s for some."""
    deadline = time.monotonic() + 10
    while True:
        conn = sqlite3.connect(directory / "index.sqlite")
        try:
            rows = conn.execute("SELECT queue_id FROM messages ORDER BY queue_id").fetchall()
        finally:
            conn.close()
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def test_a_lone_store_never_suspends_and_its_row_is_committed_in_time(directory: Path) -> None:
    """``alone=True`` with an idle writer thread: the caller's thread writes the record and the row while the
    helper thread syncs the record, without suspending; the writer thread (not involved) commits the held
    transaction within the hold time, no reader asking."""
    seen: list[str] = []
    real = store_segments.datasync

    def datasync(fd: int) -> None:
        seen.append(threading.current_thread().name)
        real(fd)

    with MessageStore(directory) as store:
        store_segments.datasync = datasync
        try:
            coroutine = store.store(envelope(), MESSAGE, "S1", alone=True)
            with pytest.raises(StopIteration) as finished:
                coroutine.send(None)  # done without ever suspending
            queue_id = finished.value.value
        finally:
            store_segments.datasync = real
        assert seen == ["smtplens-store-sync"]
        assert _committed_rows(directory) == [(queue_id,)]  # committed by the writer thread: nobody read
        assert store.stats().messages_stored == 1


@pytest.mark.parametrize("delay", [0.0, 0.1], ids=["fast", "slower-than-lone-wait"])
def test_a_failed_sync_takes_the_lone_row_back_out_and_keeps_the_others(
    directory: Path, monkeypatch: pytest.MonkeyPatch, delay: float
) -> None:
    """The row goes in while the record syncs: when the sync fails, the row leaves the transaction again (the
    rows before it stay) and the store fails, whether the caller waited for the sync or the helper thread ended
    the job. (Its record's fate on the disk is unknown: here the disk kept it, so the next start indexes it, as
    for any failed sync; the sender, told 4xx, may send it again.)"""
    with MessageStore(directory) as store:
        first = put(store, alone=True)
        _slow_sync(monkeypatch, delay, OSError(errno.EIO, os.strerror(errno.EIO)))
        with pytest.raises(StoreError, match="Input/output error"):
            put(store, alone=True)
        monkeypatch.undo()
        last = put(store, alone=True)
        assert [m.queue_id for m in store.messages()] == [last, first]
    with MessageStore(directory) as store:
        assert len(store.recovery.indexed_from_files) == 1  # the record whose sync "failed"
        assert {first, last} <= {m.queue_id for m in store.messages()}


def _slow_sync(monkeypatch: pytest.MonkeyPatch, seconds: float, error: OSError | None = None) -> None:
    real = store_segments.datasync

    def slow(fd: int) -> None:
        time.sleep(seconds)
        if error is not None:
            raise error
        real(fd)

    monkeypatch.setattr(store_segments, "datasync", slow)


def test_a_lone_store_on_a_slow_disk_lets_the_event_loop_go_on(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync slower than ``lone_wait`` (10 ms) is finished by the helper thread: the store suspends, the event loop
    runs other work meanwhile, and the message is stored as usual."""
    with MessageStore(directory) as store:
        _slow_sync(monkeypatch, 0.3)

        async def main() -> tuple[str, int]:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            task = asyncio.ensure_future(ticker())
            await asyncio.sleep(0)
            queue_id = await store.store(envelope(), MESSAGE, "S1", alone=True)
            task.cancel()
            return queue_id, ticks

        queue_id, ticks = asyncio.run(main())
        assert ticks >= 10  # the loop was not blocked for the 0.3 s of the sync
        monkeypatch.undo()
        stored = store.message(queue_id)
        assert stored is not None and stored.raw == MESSAGE
        assert put(store, alone=True) != queue_id  # the writer's lock was given back


def test_a_lone_store_takes_the_writer_thread_when_it_is_busy(directory: Path) -> None:
    with MessageStore(directory) as store:
        busy = store._committer._busy
        busy.acquire()  # as if the writer thread were at work

        async def main() -> str:
            task = asyncio.ensure_future(store.store(envelope(), MESSAGE, "S1", alone=True))
            await asyncio.sleep(0.05)
            assert not task.done()  # queued for the writer thread, not run here
            busy.release()
            return await task

        queue_id = asyncio.run(main())
        stored = store.message(queue_id)
        assert stored is not None and stored.raw == MESSAGE


def test_closed_store_refuses_work_and_close_is_idempotent(directory: Path) -> None:
    store = MessageStore(directory)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        put(store)
    with pytest.raises(StoreError, match="closed"):
        store.messages()


@pytest.mark.parametrize("alone", [False, True], ids=["writer-thread", "alone"])
def test_close_waits_for_stores_in_flight(directory: Path, alone: bool) -> None:
    async def main(store: MessageStore) -> list[str]:
        tasks = [asyncio.ensure_future(store.store(envelope(), MESSAGE, None, alone=alone)) for _ in range(30)]
        await asyncio.sleep(0)
        await store.aclose()
        return await asyncio.gather(*tasks)

    ids = asyncio.run(main(MessageStore(directory)))
    with MessageStore(directory) as store:
        assert store.recovery.clean
        assert {m.queue_id for m in store.messages(limit=100)} == set(ids)


def test_one_store_per_directory(directory: Path) -> None:
    with MessageStore(directory), pytest.raises(StoreError, match="in use"):
        MessageStore(directory)
    MessageStore(directory).close()  # free again once closed


# -- recovery -------------------------------------------------------------------------------------------------


def test_clean_reopen_has_nothing_to_recover(directory: Path) -> None:
    with MessageStore(directory) as store:
        queue_id = put(store)
    with MessageStore(directory) as store:
        assert store.recovery.clean
        assert store.message(queue_id) is not None


def test_records_without_index_rows_are_indexed_from_their_metadata(directory: Path) -> None:
    """A crash after the group's sync and before its rows were committed (or before the commit was synced)."""
    with MessageStore(directory) as store:
        queue_id = put(store, auth_identity="alice", mail_options=["SMTPUTF8"])
        before = store.message(queue_id)
    unindex_everything(directory)
    # and one appended by hand the way store() appends it, never indexed
    [segment] = segment_files(directory)
    scan = scan_records(segment.read_bytes())
    end, meta = scan.end, dict(scan.records[0].meta)
    other = "0" * 14 + "ABCDEF"
    body = b"Subject: orphan\r\n\r\nlost row\r\n"
    meta.update(queue_id=other, size=len(body), sha256=hashlib.sha256(body).hexdigest(), subject="orphan")
    with segment.open("r+b") as file:
        file.seek(end)
        file.write(encode_record(other, json.dumps(meta).encode(), body))

    with MessageStore(directory) as store:
        assert set(store.recovery.indexed_from_files) == {queue_id, other}
        after = store.message(queue_id)
        orphan = store.message(other)
    assert before is not None and after is not None and orphan is not None
    assert after.raw == before.raw
    assert after.info.recovered
    assert after.info.to_dict() | {"recovered": False} == before.info.to_dict()
    assert orphan.raw == body
    assert orphan.info.subject == "orphan"


def test_index_row_without_segment_is_marked_missing(directory: Path) -> None:
    big = b"Subject: big\r\n\r\n" + b"x" * 3000  # one per 4 KiB segment
    with MessageStore(directory, segment_size=4096) as store:
        kept, lost = put(store, big), put(store, big)
    path = directory / "segments" / "000000000002.seg"
    saved = path.read_bytes()
    path.unlink()
    with MessageStore(directory, segment_size=4096) as store:
        assert store.recovery.marked_missing == (lost,)
        missing = store.message(lost)
        assert missing is not None and missing.raw is None and missing.info.state == "missing"
        assert {m.queue_id: m.state for m in store.messages()} == {kept: "stored", lost: "missing"}
    path.write_bytes(saved)
    with MessageStore(directory, segment_size=4096) as store:
        assert store.recovery.restored == (lost,)
        back = store.message(lost)
        assert back is not None and back.raw == big


def test_interrupted_deletions_are_finished(directory: Path) -> None:
    with MessageStore(directory) as store:
        kept, deleting = put(store), put(store)
    sql(directory, "UPDATE messages SET state = 'deleting' WHERE queue_id = ?", deleting)
    with MessageStore(directory) as store:
        assert store.recovery.deletions_finished == (deleting,)
        assert [m.queue_id for m in store.messages()] == [kept]
    sql(directory, "UPDATE segments SET sealed = 0")
    with MessageStore(directory) as store:
        assert store.recovery.clean  # not indexed again from its record
        assert [m.queue_id for m in store.messages()] == [kept]


def test_a_torn_tail_is_ignored_reported_once_and_never_written_after(directory: Path) -> None:
    """A crash in the middle of a group's write: the record cut short never got its sync, hence no 250."""
    with MessageStore(directory) as store:
        kept = put(store)
    [segment] = segment_files(directory)
    end = scan_records(segment.read_bytes()).end
    torn = encode_record("0" * 14 + "ABCDEF", b'{"queue_id": "00000000000000ABCDEF"}', MESSAGE)
    with segment.open("r+b") as file:
        file.seek(end)
        file.write(torn[: len(torn) // 2])
    sql(directory, "UPDATE segments SET sealed = 0")
    with MessageStore(directory) as store:
        assert store.recovery.torn_records == (f"{segment.name}@{end}",)
        assert [m.queue_id for m in store.messages()] == [kept]
        assert not store.recovery.indexed_from_files
        newer = put(store)
    assert records(directory) == {kept: True, newer: True}
    assert [path.name for path in segment_files(directory)] == [segment.name, "000000000002.seg"]
    with MessageStore(directory) as store:
        assert store.recovery.clean
        assert {m.queue_id for m in store.messages()} == {kept, newer}


def test_a_damaged_record_of_an_indexed_message_is_reported(directory: Path) -> None:
    with MessageStore(directory) as store:
        queue_id = put(store)
        segment = directory / "segments" / "000000000001.seg"  # (the next one is made ahead, empty)
        data = bytearray(segment.read_bytes())
        data[data.index(b"Hello.")] ^= 0x20
        segment.write_bytes(bytes(data))
        with pytest.raises(StoreError, match="damaged"):
            store.message(queue_id)


# -- full disk and corrupt index -------------------------------------------------------------------------------


@pytest.mark.parametrize("alone", [False, True], ids=["writer-thread", "alone"])
def test_disk_full_while_writing_the_record(directory: Path, alone: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    real = store_segments._write_at

    def full(fd: int, data: bytes, offset: int) -> None:
        if len(data) < 65536:  # a record, not the zeros of a segment being made
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data, offset)

    with MessageStore(directory) as store:
        monkeypatch.setattr(store_segments, "_write_at", full)
        with pytest.raises(StoreError, match="disk full"):
            put(store, alone=alone)
        monkeypatch.undo()
        queue_id = put(store, alone=alone)
        assert store.message(queue_id) is not None
    assert records(directory) == {queue_id: True}  # nothing of the failed message


@pytest.mark.parametrize("alone", [False, True], ids=["writer-thread", "alone"])
def test_index_full_fails_the_store_and_its_record_is_void(directory: Path, alone: bool) -> None:
    """A real SQLITE_FULL: the index may not grow beyond its current pages."""
    with MessageStore(directory) as store:
        first = put(store, alone=alone)
        pages = store._writer.execute("PRAGMA page_count").fetchone()[0]
        store._writer.execute(f"PRAGMA max_page_count = {pages}")
        many = [f"recipient{n}@example.net" for n in range(3000)]
        with pytest.raises(StoreError, match="disk full") as caught:
            put(store, alone=alone, recipients=many)
        assert "index.sqlite" in str(caught.value)
        store._writer.execute("PRAGMA max_page_count = 1073741823")
        queue_id = put(store, alone=alone, recipients=many)
        stored = store.message(queue_id)
        assert stored is not None and len(stored.info.recipients) == 3000
    found = records(directory)
    assert [found[first], found[queue_id]] == [True, True]
    assert sorted(found.values()) == [False, True, True]  # the failed message's record is void
    unindex_everything(directory)
    with MessageStore(directory) as store:  # so even a scan from the start does not bring it back
        assert set(store.recovery.indexed_from_files) == {first, queue_id}
        assert store.count() == 2


def test_corrupt_index_is_a_clear_error(directory: Path) -> None:
    with MessageStore(directory) as store:
        put(store)
    (directory / "index.sqlite").write_bytes(b"this is not an SQLite database, not at all" * 100)
    for suffix in ("-wal", "-shm"):
        (directory / f"index.sqlite{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreError, match="corrupt") as caught:
        MessageStore(directory)
    assert "re-indexed" in str(caught.value)
    # the way out the message names: move the index away; the messages come back from their files
    (directory / "index.sqlite").rename(directory / "index.sqlite.bad")
    with MessageStore(directory) as store:
        assert len(store.recovery.indexed_from_files) == 1
        assert store.count() == 1


# -- a real crash ---------------------------------------------------------------------------------------------

CHILD = """
import asyncio, hashlib, os, random, sys
from smtplens.server.store import MessageStore

async def main(directory: str, out_path: str) -> None:
    store = MessageStore(directory)
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    async def writer(w: int) -> None:
        n = 0
        while True:
            body = b"Subject: %d-%d\\r\\n\\r\\n" % (w, n) + os.urandom(random.randint(10, 30000))
            envelope = {"mail_from": "a@example.org", "recipients": ["b@example.net"]}
            queue_id = await store.store(envelope, body, str(w), alone=w % 2 == 0)  # both ways, side by side
            os.write(out, f"{queue_id} {hashlib.sha256(body).hexdigest()}\\n".encode())
            n += 1

    await asyncio.gather(*(writer(w) for w in range(16)))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _printed(out: Path) -> dict[str, str]:
    text = out.read_text() if out.exists() else ""
    complete = text[: text.rfind("\n") + 1]
    return dict(line.split(" ") for line in complete.splitlines())


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_loses_no_message_whose_store_returned(directory: Path, tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    printed: dict[str, str] = {}
    for round_ in range(3):
        out = tmp_path / f"printed-{round_}.txt"
        errors = tmp_path / f"stderr-{round_}.txt"
        with errors.open("wb") as stderr:
            child = subprocess.Popen([sys.executable, "-c", CHILD, str(directory), str(out)], stderr=stderr, env=env)
            try:
                deadline = time.monotonic() + 60
                while len(_printed(out)) < 20 and child.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert child.poll() is None, errors.read_text()
                time.sleep(rng.uniform(0.0, 0.6))
            finally:
                child.send_signal(signal.SIGKILL)
                child.wait()
        assert child.returncode == -signal.SIGKILL
        this_round = _printed(out)
        assert this_round, f"seed {seed}: the child printed nothing"
        printed.update(this_round)
        with MessageStore(directory) as store:
            report = store.recovery
            assert not report.marked_missing, f"seed {seed}"
            assert not report.quarantined, f"seed {seed}"
            for queue_id, digest in printed.items():
                stored = store.message(queue_id)
                assert stored is not None, f"seed {seed}: {queue_id} got its queue id and is gone"
                assert stored.raw is not None
                assert hashlib.sha256(stored.raw).hexdigest() == digest, f"seed {seed}: {queue_id} damaged"
            written = {queue_id for queue_id, committed in records(directory).items() if committed}
            rows = {m.queue_id for m in store.messages(limit=1_000_000)}
            assert written == rows, f"seed {seed}"
            assert set(printed) <= rows


def test_retention_is_applied_while_serving(tmp_path: Path) -> None:
    async def scenario() -> int:
        store = MessageStore(tmp_path / "kept", retention_count=1)
        try:
            for number in range(3):
                await store.store(envelope(), f"Subject: {number}\r\n\r\nx\r\n".encode())
            task = asyncio.create_task(keep_retention(store, 0.05))
            for _ in range(200):
                if store.count() == 1:
                    break
                await asyncio.sleep(0.02)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return store.count()
        finally:
            await store.aclose()

    assert asyncio.run(scenario()) == 1
