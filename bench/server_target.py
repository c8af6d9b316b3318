"""A lean smtplens SMTP server for profiling the hot path (``bench/server.py`` measures ``smtplens serve`` itself).

Usage: python bench/server_target.py [--data DIR] [--port N] [--max-connections N] [--max-per-ip N]
                                     [--all-stages] [--profile FILE]

It builds the SMTP side of ``smtplens serve`` with only the relay policy in the pipeline (no scenario policy):
the durable store in DIR, or :class:`~smtplens.server.store_null.NullStore` without ``--data``, on the event
loop of ``new_event_loop`` (uvloop when installed). The server asks the pipeline only about the stages some
policy wants, synchronously (``Pipeline.wants``, ``Pipeline.decide_now``); ``--all-stages`` hands the server a
plain ``decide`` function instead, which is asked at every stage and awaited in a task: comparing the two shows
what the fast path saves. ``--profile`` writes cProfile statistics of the main thread to FILE on exit. It prints
``READY host port`` once listening and stops gracefully on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import resource
import sys
from pathlib import Path

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.net import Decide, ServerConfig, SmtpServer, new_event_loop
from smtplens.server.pipeline import Pipeline
from smtplens.server.policies import RelayPolicy
from smtplens.server.protocol import SessionConfig
from smtplens.server.session import Context
from smtplens.server.store import MessageStore
from smtplens.server.store_null import NullStore

DOMAIN = "bench.test"


def raise_open_files() -> int:
    """Raise the soft limit on open files to the hard limit (idle-connection runs hold thousands)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def serve(data: Path | None, port: int, max_connections: int, max_per_ip: int, *, all_stages: bool) -> None:
    policies = [RelayPolicy(frozenset({DOMAIN}))]
    pipeline = Pipeline(policies, hostname="mx.bench.test")
    decide: Decide | Pipeline = pipeline
    if all_stages:

        async def decide(stage: Stage, context: Context) -> Decision:  # a plain function: no fast path
            return await pipeline.decide(stage, context)

    config = ServerConfig(
        session=SessionConfig(hostname="mx.bench.test"),
        accepted_domains=frozenset({DOMAIN}),
        max_connections=max_connections,
        max_per_ip=max_per_ip,
    )
    store: MessageStore | NullStore = NullStore() if data is None else MessageStore(data)
    try:
        server = SmtpServer(config, store, decide)
        await server.start("127.0.0.1", port)
        server.install_signal_handlers(5.0)
        print("READY", *server.address, flush=True)
        await server.serve_forever()
    finally:
        await store.aclose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, help="store directory (default: no store, messages are dropped)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-connections", type=int, default=1000)
    ap.add_argument("--max-per-ip", type=int, default=100_000)
    ap.add_argument("--all-stages", action="store_true", help="ask the pipeline at every stage, even without policy")
    ap.add_argument("--profile", type=Path, help="write cProfile statistics here on exit")
    args = ap.parse_args()
    raise_open_files()
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve(args.data, args.port, args.max_connections, args.max_per_ip, all_stages=args.all_stages))
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
