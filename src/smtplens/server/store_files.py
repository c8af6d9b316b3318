"""Version-1 message files (one file per message), read and repaired still; queue ids; directory syncs.

Before segments (``store_segments``), the store wrote each message into a file of its own,
``DIR/messages/<queue id>``::

    SMTPLENS-MESSAGE 1\\n
    {"queue_id": ..., "sha256": ..., ...}\\n     one line of JSON: everything the index row holds
    <the message bytes, exactly as received after dot-unstuffing>

Data directories written that way keep working: their messages are read from these files, start-up recovery
still checks them (``store_recovery.recover_files``) and deleting one removes its file. ``write_message_file``
writes one the old way (for tests and tools); new messages go to segments.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = [
    "MAGIC",
    "TEMP_SUFFIX",
    "FileCorrupt",
    "FileIncomplete",
    "QueueIds",
    "encode_header",
    "fsync_directory",
    "is_queue_id",
    "open_directory",
    "read_message_file",
    "write_message_file",
]

MAGIC = b"SMTPLENS-MESSAGE 1\n"
TEMP_SUFFIX = ".tmp"
_QUEUE_ID = re.compile(r"[0-9A-F]{20}")
_MAX_HEADER = 16 * 1024 * 1024
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class FileCorrupt(Exception):  # noqa: N818 - internal signal, converted to a StoreError or a quarantine
    """A message file is not in the format above or its content does not match its header."""


class FileIncomplete(FileCorrupt):
    """A message file stops short: a fill that a crash interrupted (before its fsync returned, so before any 250)."""


def is_queue_id(name: str) -> bool:
    """True for a well-formed queue id (also what keeps ids from the HTTP API out of other paths)."""
    return _QUEUE_ID.fullmatch(name) is not None


_RANDOM_BLOCK = 1024  # ids per os.urandom call


class QueueIds:
    """Queue ids: 14 hex digits of microseconds since the epoch (strictly increasing here) and 6 random ones.

    Ids sort by arrival; the random tail keeps them unique across restarts even when the clock steps back. The
    random octets come from ``os.urandom`` in blocks (one system call per ``_RANDOM_BLOCK`` ids, not one per id).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0
        self._random = b""
        self._used = 0

    def next(self) -> str:
        with self._lock:
            now = max(time.time_ns() // 1000, self._last + 1)
            self._last = now
            used = self._used
            if used >= len(self._random):
                self._random, used = os.urandom(3 * _RANDOM_BLOCK), 0
            tail = self._random[used : used + 3]
            self._used = used + 3
        return f"{now:014X}{tail.hex().upper()}"


def encode_header(meta: dict[str, Any]) -> bytes:
    """The first two lines of a message file (``json.dumps`` escapes every newline, so the JSON is one line)."""
    return MAGIC + json.dumps(meta, ensure_ascii=True, separators=(",", ":"), sort_keys=True).encode() + b"\n"


def _sync(fd: int) -> None:
    if sys.platform == "darwin":  # pragma: no cover - macOS: plain fsync does not flush the drive's cache
        import fcntl

        fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
    else:
        os.fsync(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_message_file(directory: Path, queue_id: str, header: bytes, message: bytes) -> Path:
    """Write ``header + message`` to ``<queue id>.tmp``, fsync it, rename it to ``<queue id>``.

    The rename is durable only once the directory is fsync'd (``fsync_directory``), which the caller does once
    for a whole group of messages. On any error the temp file is removed and the ``OSError`` propagates.
    """
    final = directory / queue_id
    temp = directory / (queue_id + TEMP_SUFFIX)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o640)
    try:
        try:
            _write_all(fd, header)
            _write_all(fd, message)
            _sync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return final


def open_directory(directory: Path) -> int:
    """A file descriptor on a directory, for ``fsync_directory``."""
    return os.open(directory, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)


def fsync_directory(fd: int) -> None:
    """Make the directory's entries (created, renamed, removed files) durable."""
    _sync(fd)


def read_message_file(path: Path) -> tuple[dict[str, Any], bytes]:
    """The header and the message bytes of a message file; ``FileCorrupt`` when they do not agree.

    ``OSError`` (``FileNotFoundError`` included) propagates.
    """
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise FileIncomplete("the first line stops short")
        raise FileCorrupt("not a smtplens message file (bad first line)")
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_HEADER)
    if end < 0:
        raise FileIncomplete("header line not terminated")
    try:
        meta = json.loads(data[len(MAGIC) : end])
    except ValueError as exc:
        raise FileCorrupt(f"header is not JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise FileCorrupt("header is not a JSON object")
    body = data[end + 1 :]
    size = meta.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and len(body) < size:
        raise FileIncomplete(f"size {len(body)} is short of the header's {size}")
    if size != len(body):
        raise FileCorrupt(f"size {len(body)} does not match the header's {meta.get('size')!r}")
    if meta.get("sha256") != hashlib.sha256(body).hexdigest():
        raise FileCorrupt("sha256 does not match the header's")
    if meta.get("queue_id") != path.name:
        raise FileCorrupt(f"header names queue id {meta.get('queue_id')!r}")
    return meta, body
