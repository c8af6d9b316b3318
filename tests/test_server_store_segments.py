"""The store's segments: the record format, segments made ahead and zero-filled, one data sync per group of
messages, messages larger than a segment, a full disk while making segments, and data directories of the
version-1 layout (one file per message) still read."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import sqlite3
import time
from pathlib import Path

import pytest

from smtplens.server import store_segments
from smtplens.server.store import MessageStore
from smtplens.server.store_envelope import complete_metadata, normalize_envelope
from smtplens.server.store_files import QueueIds, encode_header, open_directory, write_message_file
from smtplens.server.store_model import StoreError
from smtplens.server.store_records import (
    PREFIX_SIZE,
    RecordDamaged,
    encode_record,
    parse_record,
    scan_records,
)
from smtplens.server.store_segments import SegmentMaker, SegmentWriter, read_record, segment_name, void_record

MESSAGE = b"From: a@sender.test\r\nSubject: segments\r\n\r\nHello.\r\n"
QUEUE_ID = "0123456789ABCDEF012345"[:20]


def envelope() -> dict[str, object]:
    return {"mail_from": "a@sender.test", "recipients": ["bob@lab.test"], "client_address": "192.0.2.1"}


def put(store: MessageStore, message: bytes = MESSAGE) -> str:
    return asyncio.run(store.store(envelope(), message))


def record(queue_id: str = QUEUE_ID, body: bytes = MESSAGE) -> bytes:
    return encode_record(queue_id, b'{"queue_id": "%s", "size": %d}' % (queue_id.encode(), len(body)), body)


# --- the record format (pure) ------------------------------------------------------------------------------------


def test_a_record_reads_back_and_its_scan_ends_at_zeros() -> None:
    one, two = record(), record("FEDCBA98765432100000", b"second")
    data = one + two + bytes(4096)
    scan = scan_records(data)
    assert [(r.queue_id, r.body, r.offset, r.length) for r in scan.records] == [
        (QUEUE_ID, MESSAGE, 0, len(one)),
        ("FEDCBA98765432100000", b"second", len(one), len(two)),
    ]
    assert (scan.end, scan.torn) == (len(one) + len(two), None)
    assert parse_record(data, len(one)).meta == {"queue_id": "FEDCBA98765432100000", "size": 6}
    assert scan_records(data, len(one)).records[0].body == b"second"  # a scan may start at any record


@pytest.mark.parametrize("cut", [1, PREFIX_SIZE - 1, PREFIX_SIZE + 3, -5, -1])
def test_a_record_cut_short_is_a_torn_tail(cut: int) -> None:
    one, two = record(), record("FEDCBA98765432100000")
    data = one + two[:cut] + bytes(100)
    scan = scan_records(data)
    assert [r.queue_id for r in scan.records] == [QUEUE_ID]
    assert scan.end == len(one) and scan.torn is not None


def test_a_flipped_bit_or_a_missing_mark_is_damage() -> None:
    good = record()
    for position in (0, 6, PREFIX_SIZE + 2, len(good) - 10, len(good) - 1):
        bad = bytearray(good)
        bad[position] ^= 0x01
        with pytest.raises(RecordDamaged):
            parse_record(bytes(bad))
    with pytest.raises(RecordDamaged, match="queue id"):
        parse_record(encode_record(QUEUE_ID, b'{"queue_id": "another"}', b"x"))


# --- segment files -------------------------------------------------------------------------------------------------


def test_segments_are_made_ahead_zero_filled_growing_and_removed_when_unused(tmp_path: Path) -> None:
    dir_fd = open_directory(tmp_path)
    try:
        maker = SegmentMaker(tmp_path, dir_fd, 7, smallest=4096, largest=16384)
        taken = [maker.take() for _ in range(4)]
        assert [s.number for s in taken] == [7, 8, 9, 10]
        assert [s.size for s in taken] == [4096, 8192, 16384, 16384]
        for segment in taken:
            path = tmp_path / segment_name(segment.number)
            assert path.read_bytes() == bytes(segment.size)
            os.close(segment.fd)
        deadline = time.monotonic() + 30
        while len(list(tmp_path.iterdir())) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)  # the next one, made ahead
        maker.close()
        assert sorted(p.name for p in tmp_path.iterdir()) == [segment_name(n) for n in (7, 8, 9, 10)]
        with pytest.raises(OSError, match="closed"):
            maker.take()
    finally:
        os.close(dir_fd)


def test_the_writer_moves_on_when_a_record_does_not_fit_and_grows_a_segment_for_a_large_one(
    tmp_path: Path,
) -> None:
    dir_fd = open_directory(tmp_path)
    maker = SegmentMaker(tmp_path, dir_fd, 1, smallest=4096, largest=4096)
    writer = SegmentWriter(maker)
    try:
        small = record(body=b"x" * 1500)
        large = record(body=b"y" * 10000)
        places = [writer.append(small), writer.append(small), writer.append(small), writer.append(large)]
        writer.sync(places[-1][2])
        assert [(segment, offset) for segment, offset, _ in places] == [(1, 0), (1, len(small)), (2, 0), (3, 0)]
        assert (tmp_path / segment_name(3)).stat().st_size == len(large)  # grown past its 4 KiB
        assert writer.active == 3
        for (segment, offset, _), data in zip(places, [small, small, small, large], strict=True):
            assert read_record(tmp_path, segment, offset, len(data)).body == parse_record(data).body
        void_record(tmp_path, 1, len(small), len(small))
        assert [r.void for r in scan_records((tmp_path / segment_name(1)).read_bytes()).records] == [False, True]
    finally:
        writer.close()
        maker.close()
        os.close(dir_fd)


# --- the store: one data sync per group ----------------------------------------------------------------------------


def counting_datasyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = store_segments.datasync

    def datasync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(store_segments, "datasync", datasync)
    return calls


def test_a_message_costs_one_data_sync_and_a_group_shares_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with MessageStore(tmp_path / "data") as store:
        put(store)
        syncs = counting_datasyncs(monkeypatch)
        ids = [put(store) for _ in range(10)]
        assert len(syncs) == 10  # the record's only sync; the index row is committed without one
        syncs.clear()

        async def together() -> list[str]:
            store._committer.submit_alone(lambda conn: time.sleep(0.2), kind="hold")  # the next ones queue up
            return await asyncio.gather(*(store.store(envelope(), MESSAGE) for _ in range(20)))

        ids += asyncio.run(together())
        assert len(syncs) < 20
        assert store.stats().largest_batch >= 2
        assert [store.message(queue_id) is not None for queue_id in ids] == [True] * 30


def test_a_message_larger_than_a_segment(tmp_path: Path) -> None:
    big = b"Subject: big\r\n\r\n" + os.urandom(50_000)
    with MessageStore(tmp_path / "data", segment_size=8192) as store:
        small, large, after = put(store), put(store, big), put(store)
        stored = store.message(large)
        assert stored is not None and stored.raw == big
    conn = sqlite3.connect(tmp_path / "data" / "index.sqlite")
    with conn:
        conn.execute("DELETE FROM messages")
        conn.execute("UPDATE segments SET indexed_end = 0, sealed = 0")
    conn.close()
    with MessageStore(tmp_path / "data", segment_size=8192) as store:
        assert set(store.recovery.indexed_from_files) == {small, large, after}
        stored = store.message(large)
        assert stored is not None and stored.raw == big


def test_a_full_disk_while_making_segments_fails_that_message_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(directory: Path, dir_fd: int, number: int, size: int) -> store_segments.Segment:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_segments, "_make", full)
    with MessageStore(tmp_path / "data") as store:
        with pytest.raises(StoreError, match="disk full"):
            put(store)
        monkeypatch.undo()
        queue_id = put(store)
        assert store.message(queue_id) is not None


def test_unused_segments_left_by_a_crash_are_removed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with MessageStore(data) as store:
        kept = put(store)
    (data / "segments" / segment_name(5)).write_bytes(bytes(4096))  # made ahead, never written
    with MessageStore(data) as store:
        assert store.recovery.clean
        assert [m.queue_id for m in store.messages()] == [kept]
        assert not (data / "segments" / segment_name(5)).exists()
        assert put(store)
    assert sorted(p.name for p in (data / "segments").iterdir()) == [segment_name(1), segment_name(2)]


# --- data directories of the version-1 layout ----------------------------------------------------------------------

_VERSION_1 = """
CREATE TABLE messages (
    queue_id TEXT PRIMARY KEY, received_at REAL NOT NULL, client_address TEXT NOT NULL, helo TEXT,
    mail_from TEXT NOT NULL, recipients TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, tls TEXT,
    auth_identity TEXT, session_id TEXT, subject TEXT, envelope TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'stored', recovered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_by_received ON messages (received_at);
CREATE INDEX messages_by_session ON messages (session_id);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, client_address TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL,
    transcript TEXT NOT NULL, outcome TEXT
);
CREATE INDEX sessions_by_started ON sessions (started_at);
PRAGMA user_version = 1;
"""


def version_1_directory(data: Path, ids: QueueIds) -> tuple[str, str]:
    """A data directory as smtplens wrote it before segments: an indexed message and one without its row."""
    messages = data / "messages"
    messages.mkdir(parents=True)
    conn = sqlite3.connect(data / "index.sqlite")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(_VERSION_1)
    metas = []
    for body in (MESSAGE, b"Subject: no row\r\n\r\nx\r\n"):
        meta = complete_metadata(normalize_envelope(envelope(), "S1", 1_700_000_000.0), ids.next(), body)
        write_message_file(messages, meta["queue_id"], encode_header(meta), body)
        metas.append(meta)
    meta = metas[0]
    conn.execute(
        "INSERT INTO messages (queue_id, received_at, client_address, helo, mail_from, recipients, size, sha256, "
        "tls, auth_identity, session_id, subject, envelope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            meta["queue_id"],
            meta["received_at"],
            meta["client_address"],
            None,
            meta["mail_from"],
            '["bob@lab.test"]',
            meta["size"],
            meta["sha256"],
            None,
            None,
            "S1",
            meta["subject"],
            "{}",
        ),
    )
    conn.commit()
    conn.close()
    return metas[0]["queue_id"], metas[1]["queue_id"]


def test_a_version_1_directory_is_still_read_and_new_messages_go_to_segments(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old, unindexed = version_1_directory(data, QueueIds())
    with MessageStore(data) as store:
        assert store.recovery.indexed_from_files == (unindexed,)  # the old recovery still covers old files
        stored = store.message(old)
        assert stored is not None and stored.raw == MESSAGE
        assert stored.info.sha256 == hashlib.sha256(MESSAGE).hexdigest()
        new = put(store)
        assert {m.queue_id for m in store.messages()} == {old, unindexed, new}
        assert store.delete(old)
        assert not (data / "messages" / old).exists()
    assert (data / "segments" / segment_name(1)).exists()
    conn = sqlite3.connect(data / "index.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()
    with MessageStore(data) as store:
        assert store.recovery.clean
        assert {m.queue_id for m in store.messages()} == {unindexed, new}
        assert store.message(unindexed) is not None


def test_a_row_whose_commit_fails_after_the_250_is_indexed_at_the_next_start(tmp_path: Path) -> None:
    """The 250 waits for the record's sync and the row's INSERT; the COMMIT (the WAL write) may fail after it
    (here a deferred constraint, checked only at COMMIT): the message is durable, and recovery indexes it."""
    data = tmp_path / "data"
    with MessageStore(data) as store:
        before = put(store)
        store._committer.submit_alone(
            lambda conn: conn.executescript(
                "PRAGMA foreign_keys = ON; CREATE TABLE nowhere (y INTEGER PRIMARY KEY);"
                "CREATE TABLE guard (x INTEGER REFERENCES nowhere (y) DEFERRABLE INITIALLY DEFERRED);"
                "CREATE TRIGGER fail_at_commit AFTER INSERT ON messages BEGIN INSERT INTO guard VALUES (1); END;"
            ),
            kind="test",
        ).result(30)
        lost = put(store)  # got its queue id: the record is durable
        assert store.message(lost) is None  # its row was rolled back
        store._committer.submit_alone(
            lambda conn: conn.executescript("DROP TRIGGER fail_at_commit; DROP TABLE guard; DROP TABLE nowhere;"),
            kind="test",
        ).result(30)
        after = put(store)
        assert {m.queue_id for m in store.messages()} == {before, after}
    with MessageStore(data) as store:
        assert store.recovery.indexed_from_files == (lost,)
        stored = store.message(lost)
        assert stored is not None and stored.raw == MESSAGE
        assert {m.queue_id for m in store.messages()} == {before, lost, after}


def test_purge_gives_back_the_segments_it_empties(tmp_path: Path) -> None:
    big = b"Subject: big\r\n\r\n" + b"x" * 3000  # one per 4 KiB segment
    with MessageStore(tmp_path / "data", retention_count=1, segment_size=4096) as store:
        ids = [put(store, big) for _ in range(4)]
        assert store.purge().messages == 3
        names = {p.name for p in (tmp_path / "data" / "segments").iterdir()}
        assert not names & {segment_name(1), segment_name(2), segment_name(3)}
        assert segment_name(4) in names
        stored = store.message(ids[-1])
        assert stored is not None and stored.raw == big


def test_a_failed_sync_fails_its_message_and_the_writer_moves_to_a_new_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    with MessageStore(tmp_path / "data") as store:
        first = put(store)
        monkeypatch.setattr(store_segments, "datasync", broken)
        with pytest.raises(StoreError, match="Input/output error"):
            put(store)
        monkeypatch.undo()
        after = put(store)
        assert store._segments.active == 2
        assert {m.queue_id for m in store.messages()} == {first, after}
