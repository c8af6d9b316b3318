"""Start-up recovery: make the segments (and version-1 message files) and the index agree again after a crash.

The write order is: the records of a group appended to a segment and synced, then their index rows committed
(without a sync of their own) together with the segment's ``indexed_end``. So a crash can leave:

* records after ``indexed_end`` whose rows were lost (the sender may or may not have got its 250): indexed from
  the record (the records before ``indexed_end`` had their rows: a message deleted since is not indexed again);
* a torn record at the end of what was written (its sync never returned, so no 250, and nothing was written
  after it): the scan stops there, the segment is sealed (never written again) and the tail reported;
* a segment made ahead and never used, or one whose messages are all gone: removed;
* a row whose segment is gone (a lost disk, a hand-deleted file): kept, marked ``missing``.

Every segment is sealed at start-up: the writer starts a new one. Deletions mark their rows ``deleting`` before
anything else, so an interrupted deletion is finished rather than undone.

Data directories of the version-1 layout (one file per message in ``messages/``) keep their files: the rows
without a segment are checked against them as before (temp files and empty spares removed, a file without a
row indexed from its header, a damaged one quarantined).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import fields
from pathlib import Path

from smtplens.server.store_files import (
    TEMP_SUFFIX,
    FileCorrupt,
    FileIncomplete,
    fsync_directory,
    is_queue_id,
    open_directory,
    read_message_file,
)
from smtplens.server.store_index import delete_messages, insert_message, note_segment, transaction
from smtplens.server.store_model import RecoveryReport
from smtplens.server.store_records import scan_records
from smtplens.server.store_segments import segment_name, segment_number

__all__ = ["recover", "recover_files", "recover_segments"]

log = logging.getLogger("smtplens.server.store")


def recover(
    conn: sqlite3.Connection, segments: Path, segments_fd: int, messages: Path | None, quarantine: Path
) -> RecoveryReport:
    """Repair what a crash left (in ``messages/`` too when given: a version-1 directory) and report it."""
    report = recover_segments(conn, segments, segments_fd)
    if messages is not None:
        older = recover_files(conn, messages, quarantine)
        report = RecoveryReport(**{f.name: getattr(report, f.name) + getattr(older, f.name) for f in fields(report)})
    if not report.clean:
        log.warning(
            "store recovery: %d torn records and %d temp files removed, %d messages indexed from their records, "
            "%d marked missing, %d restored, %d deletions finished, %d files quarantined",
            len(report.torn_records),
            len(report.temp_files_removed),
            len(report.indexed_from_files),
            len(report.marked_missing),
            len(report.restored),
            len(report.deletions_finished),
            len(report.quarantined),
        )
    return report


def _read_from(path: Path, offset: int) -> bytes:
    with path.open("rb") as file:
        file.seek(offset)
        return file.read()


def recover_segments(conn: sqlite3.Connection, directory: Path, dir_fd: int) -> RecoveryReport:
    """The segments' part of :func:`recover` (rows with a segment only)."""
    numbers = sorted(n for n in (segment_number(name) for name in os.listdir(directory)) if n is not None)
    known = {int(r[0]): (int(r[1]), bool(r[2])) for r in conn.execute("SELECT id, indexed_end, sealed FROM segments")}
    rows = {
        str(r[0]): (str(r[1]), int(r[2]))
        for r in conn.execute("SELECT queue_id, state, segment FROM messages WHERE segment IS NOT NULL")
    }
    deleting = sorted(q for q, (state, _) in rows.items() if state == "deleting")
    to_index: list[tuple[dict[str, object], tuple[int, int, int]]] = []
    torn: list[str] = []
    ends: dict[int, int] = {}
    for number in numbers:
        start, sealed = known.get(number, (0, False))
        if sealed:
            continue
        scan = scan_records(_read_from(directory / segment_name(number), start))
        for record in scan.records:
            if not record.void and record.queue_id not in rows:
                to_index.append((record.meta, (number, start + record.offset, record.length)))
        if scan.torn is not None:
            torn.append(f"{segment_name(number)}@{start + scan.end}")
            log.warning("segment %s: the records end at %d: %s", segment_name(number), start + scan.end, scan.torn)
        ends[number] = start + scan.end
    present = set(numbers)
    missing = sorted(q for q, (state, seg) in rows.items() if state == "stored" and seg not in present)
    restored = sorted(q for q, (state, seg) in rows.items() if state == "missing" and seg in present)
    with transaction(conn):
        delete_messages(conn, deleting)
        for meta, location in to_index:
            insert_message(conn, meta, recovered=True, location=location)
        for number, end in ends.items():
            note_segment(conn, number, end)
        conn.execute("UPDATE segments SET sealed = 1")
        conn.executemany("UPDATE messages SET state = 'missing' WHERE queue_id = ?", [(q,) for q in missing])
        conn.executemany("UPDATE messages SET state = 'stored' WHERE queue_id = ?", [(q,) for q in restored])
    reclaim_segments(conn, directory, dir_fd, keep=None)
    return RecoveryReport(
        indexed_from_files=tuple(meta["queue_id"] for meta, _ in to_index),  # type: ignore[misc]
        marked_missing=tuple(missing),
        restored=tuple(restored),
        deletions_finished=tuple(deleting),
        torn_records=tuple(torn),
    )


def reclaim_segments(conn: sqlite3.Connection, directory: Path, dir_fd: int, *, keep: int | None) -> list[int]:
    """Remove every segment no message row points to (but ``keep``, the one being written): the file, then,
    once its removal is durable, its row. Segments made ahead and not yet used have no row and are not touched
    unless this is start-up (``keep`` None, no writer yet: every file is then known to the scan)."""
    used = {int(r[0]) for r in conn.execute("SELECT DISTINCT segment FROM messages WHERE segment IS NOT NULL")}
    known = {int(r[0]) for r in conn.execute("SELECT id FROM segments")}
    if keep is None:
        files = {n for n in (segment_number(name) for name in os.listdir(directory)) if n is not None}
    else:
        files = known
    doomed = sorted(n for n in files | known if n not in used and n != keep)
    if not doomed:
        return []
    for number in doomed:
        (directory / segment_name(number)).unlink(missing_ok=True)
    fsync_directory(dir_fd)
    with transaction(conn):
        conn.executemany("DELETE FROM segments WHERE id = ?", [(n,) for n in doomed])
    return doomed


# --- version-1 layout: one file per message ---------------------------------------------------------------------


def _scan(messages: Path) -> tuple[set[str], list[str], list[str]]:
    """Message files, temp files and empty files (spares never filled)."""
    files: set[str] = set()
    temps: list[str] = []
    empty: list[str] = []
    with os.scandir(messages) as entries:
        for entry in entries:
            if entry.name.endswith(TEMP_SUFFIX):
                temps.append(entry.name)
            elif is_queue_id(entry.name) and entry.is_file(follow_symlinks=False):
                if entry.stat(follow_symlinks=False).st_size == 0:
                    empty.append(entry.name)
                else:
                    files.add(entry.name)
    return files, sorted(temps), empty


def _sync_directory(directory: Path) -> None:
    fd = open_directory(directory)
    try:
        fsync_directory(fd)
    finally:
        os.close(fd)


def _quarantine(messages: Path, quarantine: Path, name: str, reason: str) -> None:
    quarantine.mkdir(exist_ok=True)
    os.replace(messages / name, quarantine / name)
    log.warning("message file %s quarantined: %s", name, reason)


def recover_files(conn: sqlite3.Connection, messages: Path, quarantine: Path) -> RecoveryReport:
    """The version-1 part of :func:`recover`: the rows without a segment against the files of ``messages/``."""
    files, temps, empty = _scan(messages)
    rows = {str(r[0]): str(r[1]) for r in conn.execute("SELECT queue_id, state FROM messages WHERE segment IS NULL")}
    for name in temps:
        (messages / name).unlink(missing_ok=True)
    for name in empty:
        if name in rows:
            files.add(name)  # an indexed message whose file is empty: reported as damaged below
        else:
            (messages / name).unlink(missing_ok=True)  # a spare nobody filled
    deleting = sorted(q for q, state in rows.items() if state == "deleting")
    for queue_id in deleting:
        (messages / queue_id).unlink(missing_ok=True)
        files.discard(queue_id)
    indexed: list[str] = []
    restored: list[str] = []
    quarantined: list[str] = []
    to_index: list[dict[str, object]] = []
    for queue_id in sorted(files):
        state = rows.get(queue_id)
        if state not in (None, "missing"):
            continue
        try:
            meta, _ = read_message_file(messages / queue_id)
        except FileIncomplete:
            if state is not None:
                _quarantine(messages, quarantine, queue_id, "incomplete, yet indexed")
                quarantined.append(queue_id)
                continue
            (messages / queue_id).unlink()  # a fill the crash interrupted: its message never got a 250
            temps.append(queue_id)
            continue
        except FileCorrupt as exc:
            _quarantine(messages, quarantine, queue_id, str(exc))
            quarantined.append(queue_id)
            continue
        if state is None:
            to_index.append(meta)
            indexed.append(queue_id)
        else:
            restored.append(queue_id)
    missing = sorted(q for q, state in rows.items() if state == "stored" and q not in files)
    if temps or deleting or quarantined or empty:
        _sync_directory(messages)
    with transaction(conn):
        delete_messages(conn, deleting)
        for meta in to_index:
            insert_message(conn, meta, recovered=True)
        conn.executemany("UPDATE messages SET state = 'missing' WHERE queue_id = ?", [(q,) for q in missing])
        conn.executemany("UPDATE messages SET state = 'stored' WHERE queue_id = ?", [(q,) for q in restored])
    return RecoveryReport(
        temp_files_removed=tuple(temps),
        indexed_from_files=tuple(indexed),
        marked_missing=tuple(missing),
        restored=tuple(restored),
        deletions_finished=tuple(deleting),
        quarantined=tuple(quarantined),
    )
