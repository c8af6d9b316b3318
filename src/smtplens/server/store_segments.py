"""Segment files: made and zero-filled ahead of time, messages appended as records, one data sync per group.

A segment is ``DIR/segments/<number>.seg``, numbered upwards. :class:`SegmentMaker` creates the next one in a
thread of its own: it writes zeros over its whole size, fsyncs it and the directory, so that its blocks are
allocated and written and its directory entry and size are durable before any message goes in. Writing a message
then only overwrites blocks that already exist, and ``fdatasync`` has only data to flush: no file creation, no
metadata for the file system's journal (on this kind of VM: ~135 µs instead of ~490 µs for a new file).
Segments start small and double up to the largest size, so a quiet store holds little.

:class:`SegmentWriter` (the store's writer thread only) appends records (``store_records``) to the active segment
and syncs every segment written since the last sync once, however many records went in: the group commit of
the files. A record larger than what is left starts the next segment; one larger than a whole segment is
written past its end (the file grows; ``fdatasync`` then also flushes the new size, as it must to read the data).
A failed sync fails every message of its group (their senders get a 451) and the writer goes on in a new
segment; whatever of those records did reach the disk is indexed at the next start (a duplicate at worst: the
sender may send the message again).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from smtplens.server.store_files import fsync_directory
from smtplens.server.store_records import MARK_SIZE, VOID, Record, parse_record

__all__ = [
    "SUFFIX",
    "Segment",
    "SegmentMaker",
    "SegmentWriter",
    "datasync",
    "read_record",
    "segment_name",
    "segment_number",
    "void_record",
]

SUFFIX = ".seg"
_NAME = re.compile(r"([0-9]{12})\.seg")
_ZEROS = bytes(1 << 20)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def segment_name(number: int) -> str:
    """The file name of segment ``number``."""
    return f"{number:012d}{SUFFIX}"


def segment_number(name: str) -> int | None:
    """The number of a segment's file name; None for any other name."""
    match = _NAME.fullmatch(name)
    return None if match is None else int(match.group(1))


def datasync(fd: int) -> None:
    """Flush a file's data (and the metadata needed to read it back, such as a grown size) to the disk."""
    if sys.platform == "darwin":  # pragma: no cover - macOS: only F_FULLFSYNC flushes the drive's cache
        import fcntl

        fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
    elif sys.platform == "win32":  # pragma: no cover - no fdatasync there
        os.fsync(fd)
    else:
        os.fdatasync(fd)


def _pwrite(fd: int, data: memoryview, offset: int) -> int:
    if sys.platform == "win32":  # pragma: no cover - no pwrite there (one thread writes a segment at a time)
        os.lseek(fd, offset, os.SEEK_SET)
        return os.write(fd, data)
    return os.pwrite(fd, data, offset)


def _pread(fd: int, length: int, offset: int) -> bytes:
    if sys.platform == "win32":  # pragma: no cover - no pread there (a read opens its own descriptor)
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, length)
    return os.pread(fd, length, offset)


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = _pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _read_at(fd: int, length: int, offset: int) -> bytes:
    parts: list[bytes] = []
    while length > 0:
        part = _pread(fd, length, offset)
        if not part:
            break
        parts.append(part)
        length -= len(part)
        offset += len(part)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Segment:
    """A segment file open for writing: its number, descriptor and zero-filled size."""

    number: int
    fd: int
    size: int


def _make(directory: Path, dir_fd: int, number: int, size: int) -> Segment:
    """Create segment ``number``, zero-filled over ``size`` octets, file and directory entry durable."""
    path = directory / segment_name(number)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o640)
    try:
        offset = 0
        while offset < size:
            chunk = min(len(_ZEROS), size - offset)
            _write_at(fd, _ZEROS[:chunk], offset)
            offset += chunk
        os.fsync(fd)  # the size and the allocated blocks too, not only the data
        fsync_directory(dir_fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return Segment(number, fd, size)


class SegmentMaker:
    """Keeps the next segment ready: made in a thread of its own as soon as the last one is taken.

    ``take`` waits for a segment being made; when there is none (the thread failed: a full disk), it makes one
    itself, so that the error reaches the message that needed it. Sizes start at ``smallest`` and double with
    every segment up to ``largest``. ``close`` removes a segment made and never taken.
    """

    def __init__(self, directory: Path, dir_fd: int, first: int, *, smallest: int, largest: int) -> None:
        if not 0 < smallest <= largest:
            raise ValueError("SegmentMaker needs 0 < smallest <= largest")
        self._directory = directory
        self._dir_fd = dir_fd
        self._next = first
        self._size = smallest
        self._largest = largest
        self._stock: deque[Segment] = deque()
        self._lock = threading.Condition()
        self._wanted = False
        self._making = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def take(self) -> Segment:
        """The next segment, zero-filled and durable, open for writing. ``OSError`` when none can be made."""
        with self._lock:
            if self._closed:
                raise OSError("the segment maker is closed")
            while not self._stock and self._making:
                self._lock.wait()
            segment = self._stock.popleft() if self._stock else self._make()
            self._want()
            return segment

    def prepare(self) -> None:
        """Start making the first segment now (opening a store), so the first message does not wait as long."""
        with self._lock:
            if not self._stock and not self._closed:
                self._want()

    def close(self) -> None:
        """Stop the thread; remove the segments made and not taken."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._lock:
            for segment in self._stock:
                self._discard(segment)
            self._stock.clear()

    def _next_size(self) -> tuple[int, int]:
        number, size = self._next, self._size
        self._next += 1
        self._size = min(self._size * 2, self._largest)
        return number, size

    def _make(self) -> Segment:
        """In the caller's thread, the lock held."""
        number, size = self._next_size()
        return _make(self._directory, self._dir_fd, number, size)

    def _want(self) -> None:
        self._wanted = True
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="smtplens-store-segments", daemon=True)
            self._thread.start()
        self._lock.notify_all()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._wanted and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                self._wanted = False
                self._making = True
                number, size = self._next_size()
            made: Segment | None = None
            try:
                made = _make(self._directory, self._dir_fd, number, size)
            except OSError:
                pass  # take() makes its own, which raises the error for the message that needs it
            finally:
                with self._lock:
                    self._making = False
                    if made is not None and self._closed:
                        self._discard(made)
                    elif made is not None:
                        self._stock.append(made)
                    self._lock.notify_all()

    def _discard(self, segment: Segment) -> None:
        with contextlib.suppress(OSError):
            os.close(segment.fd)
            (self._directory / segment_name(segment.number)).unlink()


class SegmentWriter:
    """Appends records to the active segment and syncs them in groups; used by one thread only.

    ``append`` returns where the record went and a token; ``sync(token)`` returns once that record is on the
    disk: the first call after a group of appends syncs them all, the others find their record already synced.
    A failed sync fails every record written before it (their fate on the disk is unknown: the file system may
    have dropped the dirty pages) and the writer goes on in a new segment.
    """

    def __init__(self, maker: SegmentMaker) -> None:
        self._maker = maker
        self._active: Segment | None = None
        self._offset = 0
        self._dirty: dict[int, Segment] = {}
        self._retired: list[Segment] = []  # full segments to close once synced
        self._written = 0
        self._synced = 0
        self._failed_after = 0
        self._failed_through = 0
        self._failure: OSError | None = None

    @property
    def active(self) -> int | None:
        """The number of the segment being written, if any."""
        return None if self._active is None else self._active.number

    def append(self, record: bytes) -> tuple[int, int, int]:
        """Write ``record``: its segment number, offset and sync token. Nothing counts as written on error."""
        segment = self._active
        if segment is None or (self._offset and self._offset + len(record) > segment.size):
            self._retire()
            segment = self._active = self._maker.take()
            self._offset = 0
        offset = self._offset
        _write_at(segment.fd, record, offset)
        self._offset = offset + len(record)
        self._dirty[segment.number] = segment
        self._written += 1
        return segment.number, offset, self._written

    def sync(self, token: int) -> None:
        """Return once the record of ``token`` is durable; ``OSError`` when it may not be."""
        if self._failure is not None and self._failed_after < token <= self._failed_through:
            raise self._failure
        if token <= self._synced:
            return
        try:
            for segment in self._dirty.values():
                datasync(segment.fd)
        except OSError as exc:
            self._failed_after, self._failed_through, self._failure = self._synced, self._written, exc
            self._synced = self._written  # nothing of theirs is left to sync: they failed
            self._abandon()
            raise
        self._dirty.clear()
        self._synced = self._written
        for segment in self._retired:
            os.close(segment.fd)
        self._retired.clear()

    def close(self) -> None:
        """Sync what is left and close every segment (the active one too)."""
        if self._dirty:
            self.sync(self._written)
        self._retire()
        for segment in self._retired:
            os.close(segment.fd)
        self._retired.clear()

    def _retire(self) -> None:
        if self._active is not None:
            self._retired.append(self._active)
            self._active = None

    def _abandon(self) -> None:
        self._retire()
        for segment in self._retired:
            with contextlib.suppress(OSError):
                os.close(segment.fd)
        self._retired.clear()
        self._dirty.clear()


def void_record(directory: Path, number: int, offset: int, length: int) -> None:
    """Mark a written record void (its index row failed, so its sender got no 250): recovery skips it."""
    fd = os.open(directory / segment_name(number), os.O_WRONLY | _O_CLOEXEC)
    try:
        _write_at(fd, VOID, offset + length - MARK_SIZE)
        datasync(fd)
    finally:
        os.close(fd)


def read_record(directory: Path, number: int, offset: int, length: int) -> Record:
    """The record at ``offset`` of segment ``number``. ``RecordDamaged`` when it is not intact; ``OSError``
    (``FileNotFoundError`` included) propagates."""
    fd = os.open(directory / segment_name(number), os.O_RDONLY | _O_CLOEXEC)
    try:
        data = _read_at(fd, length, offset)
    finally:
        os.close(fd)
    return parse_record(data)
