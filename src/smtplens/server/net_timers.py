"""Cheap timeouts and steps for the adapter's hot path (``net.py``) and the pipeline.

``asyncio.wait_for`` wraps what it waits for in a new task and a timer on every call, and a task per
connection costs a switch on every read. These helpers give the same results with less work:

* :func:`bounded` runs a coroutine in the caller's task; only if it actually suspends does the rest of it go
  through ``wait_for`` with the timeout.
* :func:`step` starts a coroutine by hand: its result (:class:`Ready`) when it finishes without suspending, else
  an awaitable for the rest of it, to await in a task. The adapter uses it for the store's calls, which need no
  task before they first wait.
* :class:`IdleTimer` is one timer per connection instead of one per read: ``arm(timeout)`` after every burst of
  activity only moves a deadline (a float); the timer, when it fires early, re-arms itself for the current
  deadline (a deadline earlier than the timer's, as when the data timeout follows a longer idle timeout,
  reschedules it) and calls back once the client has been silent for the whole timeout.
"""

from __future__ import annotations

import asyncio
import math
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Generic, NamedTuple, TypeVar, cast

__all__ = ["IdleTimer", "Ready", "bounded", "step"]

T = TypeVar("T")
_COROUTINE = types.CoroutineType  # what an ``async def`` returns


class _Resumed(Generic[T]):
    """The rest of a coroutine that was started by hand and suspended, yielding ``first`` to its task."""

    def __init__(self, coro: Coroutine[Any, Any, T], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, None, T]:
        coro, value = self._coro, self._first
        while True:
            try:
                yield value  # the task waits for this future, as it would have in the coroutine itself
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation (the timeout) goes on into the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
                continue
            try:
                value = coro.send(None)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]


class Ready(NamedTuple, Generic[T]):
    """What a coroutine returned without suspending (see :func:`step`)."""

    value: T


def step(awaitable: Awaitable[T]) -> Ready[T] | Awaitable[T]:
    """Run ``awaitable`` until it first suspends: :class:`Ready` with its result if it never does, else an
    awaitable for the rest (await it in a task). An exception it raises before suspending propagates."""
    if type(awaitable) is not _COROUTINE and not isinstance(awaitable, Coroutine):  # the ABC check costs more
        return awaitable
    coro = cast(Coroutine[Any, Any, T], awaitable)
    try:
        first = coro.send(None)
    except StopIteration as done:
        return tuple.__new__(Ready, (done.value,))  # Ready(done.value) without its Python __new__
    return _Resumed(coro, first)


async def bounded(awaitable: Awaitable[T], timeout: float) -> T:
    """``await asyncio.wait_for(awaitable, timeout)``, but without a task or a timer when it is a coroutine that
    finishes without suspending (its exception, if it raises, propagates as it would)."""
    if not isinstance(awaitable, Coroutine):
        return await asyncio.wait_for(awaitable, timeout)
    coro: Coroutine[Any, Any, T] = awaitable
    try:
        first = coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    return await asyncio.wait_for(_Resumed(coro, first), timeout)


class IdleTimer:
    """Calls ``expired()`` once nothing re-armed it for ``timeout`` seconds; one timer handle, re-armed lazily."""

    __slots__ = ("_deadline", "_expired", "_loop", "_timer", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop, expired: Callable[[], None]) -> None:
        self._loop = loop
        self._expired = expired
        self._deadline = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._when = math.inf  # when the timer fires (inf: no timer)

    def arm(self, timeout: float | None) -> None:
        """Start counting ``timeout`` seconds from now (None: stop counting until the next ``arm``)."""
        if timeout is None:
            self._deadline = math.inf
            return
        deadline = self._deadline = self._loop.time() + timeout
        if deadline < self._when:  # no timer, or one for a longer timeout than this one
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._check)
            self._when = deadline

    def _check(self) -> None:
        self._timer = None
        self._when = math.inf
        deadline = self._deadline
        if deadline == math.inf:
            return  # the next arm() starts a timer again
        if self._loop.time() < deadline:
            self._timer = self._loop.call_at(deadline, self._check)
            self._when = deadline
            return
        self._deadline = math.inf
        self._expired()

    def cancel(self) -> None:
        """Stop for good (the connection is over). The callback is let go: it is usually a method of the
        connection that owns this timer, a reference cycle that only the garbage collector would break."""
        self._deadline = math.inf
        self._when = math.inf
        self._expired = _never
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _never() -> None:
    """The callback of a cancelled :class:`IdleTimer` (it never runs)."""
