"""The adapter's cheap timeouts (``smtplens.server.net_timers``) behave as ``asyncio.wait_for`` would."""

from __future__ import annotations

import asyncio

import pytest

from smtplens.server.net_timers import ReadDeadline, bounded


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


async def _pair() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.StreamWriter, asyncio.Server]:
    """A connection on loopback: the client's reader and writer (keep the writer: dropping it closes the
    connection), the server side's writer, the server."""
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(writer)

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return reader, writer, await accepted.get(), server


def test_read_deadline_reads_and_times_out() -> None:
    async def main() -> list[bytes]:
        reader, own, peer, server = await _pair()
        deadline = ReadDeadline()
        seen: list[bytes] = []
        peer.write(b"one")
        seen.append(await deadline.read(reader, 100, 3600))
        peer.write(b"two")
        seen.append(await deadline.read(reader, 100, None))
        # A shorter timeout after the long one: the timer is moved earlier, the read times out.
        with pytest.raises(TimeoutError):
            await deadline.read(reader, 100, 0.05)
        peer.write(b"three")  # the connection is still usable after a timeout
        seen.append(await deadline.read(reader, 100, 3600))
        deadline.close()
        for writer in (own, peer):
            writer.close()
        server.close()
        return seen

    assert asyncio.run(asyncio.wait_for(main(), 30)) == [b"one", b"two", b"three"]


def test_read_deadline_lets_other_cancellations_through() -> None:
    async def main() -> None:
        reader, own, peer, server = await _pair()

        async def reading() -> bytes:
            return await ReadDeadline().read(reader, 100, 3600)

        task = asyncio.ensure_future(reading())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for writer in (own, peer):
            writer.close()
        server.close()

    asyncio.run(main())


def test_read_deadline_needs_a_task() -> None:
    with pytest.raises(RuntimeError):
        ReadDeadline()
