"""A thread that runs blocking calls while their caller does other work: the lone store's record sync
(``store_commit.Committer.run_now``). ``start`` hands a call over; the caller ``wait``s for it (with a time limit
if it likes) or has the thread run a callback once it is over (``then``)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

__all__ = ["Offload", "Pending"]


class Pending:
    """A call handed to the helper thread: ``wait`` for it to be over (``error``: what it raised), or have the
    helper thread run a callback after it (``then``)."""

    __slots__ = ("_finished", "_lock", "_then", "call", "done", "error")

    def __init__(self, call: Callable[[], None]) -> None:
        self.call = call
        self.done = threading.Lock()
        self.done.acquire()
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._finished = False
        self._then: Callable[[], None] | None = None

    def wait(self, timeout: float = -1) -> bool:
        """True once the call is over; False when ``timeout`` seconds passed first (-1: no limit)."""
        if not self.done.acquire(timeout=timeout):
            return False
        self.done.release()  # a second wait returns at once
        return True

    def then(self, callback: Callable[[], None]) -> bool:
        """Have the helper thread run ``callback`` once the call is over; False when it is over already."""
        with self._lock:
            if self._finished:
                return False
            self._then = callback
            return True

    def run(self) -> None:
        """In the helper thread: the call, then the callback, if any."""
        try:
            self.call()
        except BaseException as exc:  # given to the waiting caller
            self.error = exc
        with self._lock:
            self._finished = True
            callback = self._then
        self.done.release()
        if callback is not None:
            callback()


class Offload:
    """A thread that runs blocking calls (a record's sync) while their caller does other work."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="smtplens-store-sync", daemon=True)
        self._thread.start()

    def start(self, call: Callable[[], None]) -> Pending:
        pending = Pending(call)
        self._queue.put(pending)
        return pending

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _loop(self) -> None:
        while (pending := self._queue.get()) is not None:
            pending.run()
