"""A stock of spare message files: empty, open for writing, their directory entries already durable.

Creating a file and making its directory entry durable (a directory fsync) is most of what a message costs the
disk besides its own fsync. :class:`Spares` does that ahead of time and in bulk, in a thread of its own: it
creates ``batch`` files named by the next queue ids, fsyncs the directory once for all of them and keeps them
open; :meth:`Spares.take` hands out the oldest. When the stock falls to ``low`` the thread makes another batch
while the writer goes on with what is left; only when the stock is empty does ``take`` wait for it (or, after
the thread failed, make a batch itself, so that an error such as a full disk reaches the message's sender).
Spares left when the store closes are removed; after a crash, start-up recovery removes them (they are empty).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from pathlib import Path

from smtplens.server.store_files import QueueIds, create_spares, fsync_directory

__all__ = ["Spares"]


class Spares:
    """See the module docstring. ``take`` and ``close`` are thread-safe."""

    def __init__(self, directory: Path, dir_fd: int, ids: QueueIds, *, batch: int = 64, low: int = 32) -> None:
        if batch < 1 or not 0 <= low < batch:
            raise ValueError("Spares needs batch >= 1 and 0 <= low < batch")
        self._directory = directory
        self._dir_fd = dir_fd
        self._ids = ids
        self._batch = batch
        self._low = low
        self._stock: deque[tuple[str, int]] = deque()
        self._lock = threading.Condition()
        self._wanted = False  # the thread should make a batch
        self._making = False  # the thread is making one
        self._failed = False  # its last batch failed: take() makes its own, which raises the error
        self._closed = False
        self._thread: threading.Thread | None = None

    def take(self) -> tuple[str, int]:
        """The queue id of an empty message file whose directory entry is durable, and the file open for
        writing. ``OSError`` when no file can be made."""
        with self._lock:
            if self._closed:
                raise OSError("the spare message files are closed")
            while not self._stock and self._making:
                self._lock.wait()
            if not self._stock:
                self._failed = False
                self._stock.extend(self._make())  # in this thread: its error is this message's
            spare = self._stock.popleft()
            if len(self._stock) <= self._low and not self._failed:
                self._want()
            return spare

    def close(self) -> None:
        """Stop the thread; close and remove the spares not taken."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._lock:
            for queue_id, fd in self._stock:
                with contextlib.suppress(OSError):
                    os.close(fd)
                    (self._directory / queue_id).unlink()
            self._stock.clear()

    # --- internals ----------------------------------------------------------------------------------------------

    def _want(self) -> None:
        """Ask the thread for a batch (the lock is held)."""
        self._wanted = True
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="smtplens-store-spares", daemon=True)
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
            made: list[tuple[str, int]] = []
            try:
                made = self._make()
            except OSError:
                with self._lock:
                    self._failed = True
            finally:
                with self._lock:
                    self._making = False
                    if self._closed:
                        self._discard(made)
                    else:
                        self._stock.extend(made)
                    self._lock.notify_all()

    def _make(self) -> list[tuple[str, int]]:
        ids = [self._ids.next() for _ in range(self._batch)]
        fds = create_spares(self._directory, ids)
        made = list(zip(ids, fds, strict=True))
        try:
            fsync_directory(self._dir_fd)
        except OSError:
            self._discard(made)
            raise
        return made

    def _discard(self, made: list[tuple[str, int]]) -> None:
        for queue_id, fd in made:
            with contextlib.suppress(OSError):
                os.close(fd)
                (self._directory / queue_id).unlink()
