"""The aiosmtpd baseline of ``bench/server.py``: a minimal aiosmtpd server that accepts mail for one domain.

Usage: python bench/aiosmtpd_sink.py [--data DIR] [--port N] [--asyncio]

Without ``--data`` it drops every message (compare with smtplens on ``NullStore``). With ``--data DIR`` it does
the least a server must do before a 250 it can keep: write the message to a temp file, fsync it, rename it and
fsync the directory, in a worker thread so the event loop keeps serving (compare with smtplens's durable store,
which does that plus an SQLite index row and groups the directory and index syncs of concurrent messages). Like
smtplens it refuses recipients outside the domain at RCPT. It runs on the same event loop as smtplens
(``new_event_loop``: uvloop when installed), so the comparison is between the SMTP implementations, not the
loops; ``--asyncio`` runs it on asyncio's own loop instead, as aiosmtpd runs by default. Prints
``READY host port`` once listening; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from server_target import DOMAIN, raise_open_files
from smtplens.server.net import new_event_loop


class Sink:
    """aiosmtpd handler: RCPT only for ``DOMAIN``; DATA dropped, or written durably to ``directory``."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._names = itertools.count(1)
        self._dir_fd = -1 if directory is None else os.open(directory, os.O_RDONLY | os.O_DIRECTORY)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not address.lower().endswith("@" + DOMAIN):
            return "554 5.7.1 Relay access denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        if self.directory is None:
            return "250 OK"
        name = f"{os.getpid()}.{next(self._names)}"
        await asyncio.to_thread(self._write, name, content)
        return f"250 OK: queued as {name}"

    def _write(self, name: str, content: bytes) -> None:
        assert self.directory is not None
        temp = self.directory / (name + ".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            os.write(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, self.directory / name)
        os.fsync(self._dir_fd)


async def serve(directory: Path | None, port: int) -> None:
    loop = asyncio.get_running_loop()
    handler = Sink(directory)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="mx.bench.test", loop=loop), "127.0.0.1", port, backlog=1024
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host, bound = server.sockets[0].getsockname()[:2]
    print("READY", host, bound, flush=True)
    await stop.wait()
    server.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, help="write and fsync every message here (default: drop them)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--asyncio", action="store_true", help="asyncio's event loop even when uvloop is installed")
    args = ap.parse_args()
    raise_open_files()
    if args.data is not None:
        args.data.mkdir(parents=True, exist_ok=True)
    with asyncio.Runner(loop_factory=asyncio.new_event_loop if args.asyncio else new_event_loop) as runner:
        runner.run(serve(args.data, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
