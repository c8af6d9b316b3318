"""Start-up recovery: make the message files and the index agree again after a crash.

The write order is: message file (a spare, created empty ahead of time, filled and fsynced), then the index row
(committed without a sync of its own). So a crash can leave an empty spare (removed), a temp file of the older
write path (the sender got no 250: removed), a partly written spare without a row (its fsync had not returned,
so no 250 was sent: removed and counted with the temp files), a message file without a row (the sender may
or may not have got its 250: indexed from the file's header), or, after a lost disk or a hand-deleted file, a
row without a file (kept, marked ``missing``). Deletions mark their rows ``deleting`` before removing the file,
so an interrupted deletion is finished rather than resurrected.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from smtplens.server.store_files import (
    TEMP_SUFFIX,
    FileCorrupt,
    FileIncomplete,
    fsync_directory,
    is_queue_id,
    read_message_file,
)
from smtplens.server.store_index import delete_messages, insert_message, transaction
from smtplens.server.store_model import RecoveryReport

__all__ = ["recover"]

log = logging.getLogger("smtplens.server.store")


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


def _quarantine(messages: Path, quarantine: Path, name: str, reason: str) -> None:
    quarantine.mkdir(exist_ok=True)
    os.replace(messages / name, quarantine / name)
    log.warning("message file %s quarantined: %s", name, reason)


def recover(conn: sqlite3.Connection, messages: Path, quarantine: Path, dir_fd: int) -> RecoveryReport:
    """Repair what a crash left and report it; runs before the store accepts any write."""
    files, temps, empty = _scan(messages)
    rows = {str(r[0]): str(r[1]) for r in conn.execute("SELECT queue_id, state FROM messages")}
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
    if temps or deleting or quarantined:
        fsync_directory(dir_fd)
    with transaction(conn):
        delete_messages(conn, deleting)
        for meta in to_index:
            insert_message(conn, meta, recovered=True)
        conn.executemany("UPDATE messages SET state = 'missing' WHERE queue_id = ?", [(q,) for q in missing])
        conn.executemany("UPDATE messages SET state = 'stored' WHERE queue_id = ?", [(q,) for q in restored])
    report = RecoveryReport(
        temp_files_removed=tuple(temps),
        indexed_from_files=tuple(indexed),
        marked_missing=tuple(missing),
        restored=tuple(restored),
        deletions_finished=tuple(deleting),
        quarantined=tuple(quarantined),
    )
    if not report.clean:
        log.warning(
            "store recovery: %d temp files removed, %d messages indexed from their files, %d marked missing, "
            "%d restored, %d deletions finished, %d files quarantined",
            len(temps),
            len(indexed),
            len(missing),
            len(restored),
            len(deleting),
            len(quarantined),
        )
    return report
