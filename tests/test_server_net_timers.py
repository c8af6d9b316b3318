"""The adapter's cheap timeouts (``smtplens.server.net_timers``) behave as ``asyncio.wait_for`` would."""

from __future__ import annotations

import asyncio

import pytest

from smtplens.server.net_timers import IdleTimer, Ready, bounded, step


async def _immediate(value: int) -> int:
    return value


async def _raises() -> int:
    raise ValueError("policy bug")


async def _suspends(value: int) -> int:
    await asyncio.sleep(0)
    await asyncio.sleep(0.001)
    return value


def test_bounded_returns_what_the_coroutine_returns_with_or_without_suspending() -> None:
    async def main() -> tuple[int, int, int]:
        return (
            await bounded(_immediate(1), 10),
            await bounded(_suspends(2), 10),
            await bounded(asyncio.ensure_future(_immediate(3)), 10),  # not a coroutine: plain wait_for
        )

    assert asyncio.run(main()) == (1, 2, 3)


def test_bounded_propagates_exceptions_and_times_out() -> None:
    cleaned: list[str] = []

    async def forever() -> int:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append("cancelled")
        return 0

    async def main() -> None:
        with pytest.raises(ValueError, match="policy bug"):
            await bounded(_raises(), 10)
        with pytest.raises(TimeoutError):
            await bounded(forever(), 0.01)

    asyncio.run(main())
    assert cleaned == ["cancelled"]  # the timed-out coroutine was cancelled, not abandoned


def test_bounded_passes_the_callers_cancellation_into_the_coroutine() -> None:
    cleaned: list[str] = []

    async def forever() -> int:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append("cancelled")
        return 0

    async def main() -> None:
        task = asyncio.ensure_future(bounded(forever(), 3600))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert cleaned == ["cancelled"]


def test_step_runs_a_coroutine_until_it_first_suspends() -> None:
    async def immediate() -> int:
        return 7

    async def suspends() -> int:
        await asyncio.sleep(0)
        return 8

    assert step(immediate()) == Ready(7)

    async def main() -> int:
        rest = step(suspends())
        assert not isinstance(rest, Ready)
        return await rest

    assert asyncio.run(main()) == 8


def test_the_idle_timer_fires_after_silence_and_activity_pushes_it_back() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        started = loop.time()
        timer = IdleTimer(loop, lambda: fired.append(loop.time() - started))
        timer.arm(0.2)
        for _ in range(4):  # activity every 0.1 s for 0.4 s: no expiry meanwhile
            await asyncio.sleep(0.1)
            timer.arm(0.2)
        assert fired == []
        deadline = loop.time() + 5
        while not fired and loop.time() < deadline:
            await asyncio.sleep(0.02)
        timer.arm(None)  # suspended: nothing fires
        await asyncio.sleep(0.3)
        timer.arm(0.05)
        timer.arm(10)  # a longer timeout replaces a shorter one: the timer re-arms when it wakes up early
        await asyncio.sleep(0.2)
        timer.cancel()
        return fired

    fired = asyncio.run(main())
    assert len(fired) == 1 and fired[0] >= 0.55
