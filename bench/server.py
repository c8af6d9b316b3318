"""Throughput, idle connections and connection floods of ``smtplens serve``, side by side with aiosmtpd and Postfix.

Usage: python bench/server.py [--quick] [--messages N] [--sessions 1,8,64] [--size OCTETS] [--reuse] [--repeat R]
                              [--aiosmtpd-asyncio] [--no-low-latency] [--idle N] [--flood N] [--flood-limit M]
                              [--skip throughput,store-off,store-on,idle,flood]

Every server runs as a subprocess on a free 127.0.0.1 port; Postfix's ``smtp-source`` is the load generator.

* **Throughput**: ``smtp-source -s S -m N -l SIZE`` against each server for S concurrent sessions; messages/s is
  N over the wall time of smtp-source: the fastest and the median of ``--repeat`` runs (the servers take turns
  for each cell, so a busy moment of the machine hits them all), with the load average before and after; the
  server's CPU time per message (user + system, from /proc, the lowest of the runs) is printed too: on a shared
  machine it is the steadier figure. One message per connection (smtp-source's default; ``--reuse`` sends them
  all over S connections: ``-d``). Without a store: ``smtplens serve --no-store``, aiosmtpd dropping the message
  (``bench/aiosmtpd_sink.py``), Postfix ``smtp-sink``. With a store: ``smtplens serve --data DIR`` (the message
  appended as a record to a segment file zero-filled ahead of time, one fdatasync for every message
  waiting at that moment, its SQLite index row written, both before the 250; the transcript recorded after
  the session) and the aiosmtpd sink writing, fsyncing and renaming a file per message and fsyncing the directory
  before its 250 (no index, no transcript). Both Python servers run on the same event loop (uvloop when
  installed; ``--aiosmtpd-asyncio``: aiosmtpd on asyncio's, its default). After each store-on run the bench
  checks that every message is in the store. Ratios are smtplens / aiosmtpd.
* **Idle connections**: ``--idle N`` connections to ``smtplens serve`` opened and left idle after EHLO; the
  server's RSS (``VmRSS``) before and after, per connection, and a full delivery on a new connection meanwhile.
* **Flood**: ``smtplens serve --max-connections M`` with M connections held, then ``--flood N`` connections
  opened as fast as possible: how many got the ``421 4.7.0`` greeting, how fast, and a delivery afterwards.

By default the bench holds ``/dev/cpu_dma_latency`` at 0 for the whole run (Linux PM QoS, as latency benchmarks
such as cyclictest do; needs root, else it runs without and says so): the CPUs poll instead of halting when
idle. On a virtual machine waking a halted virtual CPU costs tens of microseconds, paid at every round trip of a
one-session run by every server alike (Postfix's C sink runs about three times faster with it), and which CPU
the client and the server land on then decides more than the servers do; this measures the servers rather than
that wake-up. ``--no-low-latency`` runs with the machine's own idle policy. The bench prints which it was.

The open-files limit is raised to its hard limit for the bench and its servers (``ulimit -Hn``: 10,000 idle
connections need it above 10,100). Needs ``postfix`` (smtp-source, smtp-sink) and aiosmtpd (the dev extra).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import os
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_target import DOMAIN, raise_open_files
from smtplens.server.store import MessageStore

BENCH = Path(__file__).resolve().parent
SENDER = "sender@client.test"
RECIPIENT = f"bob@{DOMAIN}"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0


@contextlib.contextmanager
def low_latency(enabled: bool) -> Iterator[str]:
    """Hold the PM QoS CPU latency request at 0 while the block runs (when ``enabled``); what was done."""
    if not enabled:
        yield "off (CPUs may halt when idle)"
        return
    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    except OSError as exc:
        yield f"not available ({exc.strerror}): CPUs may halt when idle"
        return
    try:
        os.write(fd, (0).to_bytes(4, sys.byteorder))
        yield "on (/dev/cpu_dma_latency held at 0: idle CPUs poll)"
    finally:
        os.close(fd)  # closing the file drops the request


# --- servers ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def program(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise SystemExit(f"{name} is not installed (apt-get install postfix)")
    return path


def rss_kib(pid: int) -> int:
    """The resident set size of a process, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a running process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_greeting(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.recv(512).startswith(b"220"):
                    sock.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no greeting on port {port} after {START_TIMEOUT:.0f} s")
        time.sleep(0.05)


@dataclass
class Server:
    """A server subprocess listening on ``port``."""

    name: str
    process: subprocess.Popen[bytes]
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


@contextlib.contextmanager
def running(name: str, argv: Sequence[str], port: int) -> Iterator[Server]:
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        server = Server(name, process, port)
        try:
            wait_for_greeting(port, process)
            yield server
        except BaseException:
            server.stop()
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])
            raise
        finally:
            server.stop()


def smtplens_argv(port: int, data: Path | None, max_connections: int = 1000) -> list[str]:
    """``smtplens serve`` accepting mail for the bench domain: with its store in ``data``, or ``--no-store``."""
    code = "import sys; from smtplens.cli.main import run; sys.argv[0] = 'smtplens'; run()"
    argv = [sys.executable, "-c", code, "serve", "--smtp", f"127.0.0.1:{port}", "--accept-domain", DOMAIN]
    argv += ["--hostname", "mx.bench.test", "--max-connections", str(max_connections)]
    argv += ["--max-per-ip", str(max_connections)]  # every bench client comes from 127.0.0.1
    return [*argv, "--no-store"] if data is None else [*argv, "--data", str(data)]


def aiosmtpd_argv(port: int, data: Path | None, *, own_loop: bool) -> list[str]:
    argv = [sys.executable, str(BENCH / "aiosmtpd_sink.py"), "--port", str(port)]
    if own_loop:
        argv.append("--asyncio")
    return argv if data is None else [*argv, "--data", str(data)]


def smtp_sink_argv(port: int) -> list[str]:
    argv = [program("smtp-sink")]
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]  # smtp-sink refuses to run as root without dropping privileges
    return [*argv, f"127.0.0.1:{port}", "1024"]


# --- throughput ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    server: str
    store: bool
    sessions: int
    messages: int
    seconds: float
    server_cpu: float
    median_seconds: float = 0.0  # of the repeats (the same as ``seconds`` for one run)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def median_rate(self) -> float:
        return self.messages / (self.median_seconds or self.seconds)


def best_of(tries: Sequence[Run]) -> Run:
    """The fastest run, with the median time of all (a shared machine: the best is the least disturbed, the
    median shows how steady the figure is); its CPU time is the lowest seen."""
    best = min(tries, key=lambda run: run.seconds)
    cpu = min(run.server_cpu for run in tries)
    median = statistics.median(run.seconds for run in tries)
    return Run(best.server, best.store, best.sessions, best.messages, best.seconds, cpu, median)


def load(server: Server, sessions: int, load_options: Load) -> tuple[float, float]:
    """Wall seconds smtp-source takes, and the server's CPU seconds meanwhile."""
    argv = [program("smtp-source"), "-s", str(sessions), "-m", str(load_options.messages)]
    argv += ["-l", str(load_options.size), "-f", SENDER, "-t", RECIPIENT, "-M", "client.test"]
    if load_options.reuse:
        argv.append("-d")
    cpu = cpu_seconds(server.pid)
    started = time.perf_counter()
    done = subprocess.run([*argv, f"127.0.0.1:{server.port}"], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or done.stderr.strip():
        raise RuntimeError(f"smtp-source against {server.name} failed: {done.stderr.strip()}")
    return seconds, cpu_seconds(server.pid) - cpu


def stored_messages(kind: str, data: Path) -> int:
    if kind == "smtplens":
        with MessageStore(data) as store:
            return store.count()
    return sum(1 for path in data.iterdir() if not path.name.endswith(".tmp"))


@dataclass(frozen=True)
class Load:
    """What every throughput run sends."""

    messages: int
    size: int
    reuse: bool
    aiosmtpd_asyncio: bool


def throughput(kind: str, store: bool, sessions: int, load_options: Load) -> Run:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="smtplens-bench-") as tmp:
        data = Path(tmp) / "data" if store else None
        if kind == "smtplens":
            argv = smtplens_argv(port, data)
        elif kind == "aiosmtpd":
            argv = aiosmtpd_argv(port, data, own_loop=load_options.aiosmtpd_asyncio)
        else:
            argv = smtp_sink_argv(port)
        with running(kind, argv, port) as server:
            seconds, cpu = load(server, sessions, load_options)
        if data is not None:
            count = stored_messages(kind, data)
            if count != load_options.messages:
                raise RuntimeError(f"{kind} stored {count} of {load_options.messages} messages")
    return Run(kind, store, sessions, load_options.messages, seconds, cpu)


def print_throughput(runs: list[Run], concurrency: Sequence[int]) -> None:
    rows: dict[tuple[str, bool], dict[int, Run]] = {}
    for run in runs:
        rows.setdefault((run.server, run.store), {})[run.sessions] = run
    rates: tuple[tuple[str, Callable[[Run], float]], ...] = (
        ("best", lambda run: run.rate),
        ("median", lambda run: run.median_rate),
    )
    for title, rate in rates:
        print(f"\n{title + ' of runs':<17} " + " ".join(f"{f'{s} sess msg/s':>16}" for s in concurrency))
        for (name, store), by_sessions in rows.items():
            cells = []
            for sessions in concurrency:
                found = by_sessions.get(sessions)
                cells.append(f"{rate(found):>16,.0f}" if found else f"{'-':>16}")
            print(f"{name:<10} {'on' if store else 'off':<6} " + " ".join(cells))
        for store in (False, True):
            ours, theirs = rows.get(("smtplens", store)), rows.get(("aiosmtpd", store))
            if not ours or not theirs:
                continue
            ratios = []
            for sessions in concurrency:
                if sessions in ours and sessions in theirs:
                    ratios.append(f"{rate(ours[sessions]) / rate(theirs[sessions]):>15.2f}x")
                else:
                    ratios.append(f"{'-':>16}")
            print(f"{'ratio':<10} {'on' if store else 'off':<6} " + " ".join(ratios) + "  (smtplens / aiosmtpd)")
    print(
        "server CPU per message (µs): "
        + ", ".join(
            f"{run.server}/{'on' if run.store else 'off'}/{run.sessions}: {run.server_cpu / run.messages * 1e6:.0f}"
            for run in runs
        )
    )


# --- idle connections and floods -------------------------------------------------------------------------------


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    """One complete (possibly multiline) reply."""
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed before a complete reply")
        lines.append(line)
        if line[3:4] != b"-":
            return b"".join(lines)


async def open_idle(port: int, count: int, parallel: int = 200) -> list[asyncio.StreamWriter]:
    """``count`` sessions that got their greeting and an EHLO reply, then stay silent."""
    gate = asyncio.Semaphore(parallel)
    writers: list[asyncio.StreamWriter] = []

    async def one() -> None:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            greeting = await read_reply(reader)
            if not greeting.startswith(b"220"):
                raise RuntimeError(f"idle connection {len(writers) + 1} was greeted with {greeting!r}")
            writer.write(b"EHLO idle.client.test\r\n")
            if not (await read_reply(reader)).startswith(b"250"):
                raise RuntimeError("EHLO refused")
            writers.append(writer)

    await asyncio.gather(*(one() for _ in range(count)))
    return writers


def deliver(port: int) -> str:
    """One message over a new connection; the server's reply to the end of data."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as client:
        client.ehlo()
        client.mail(SENDER)
        client.rcpt(RECIPIENT)
        code, text = client.data(b"Subject: bench\r\n\r\nstill serving\r\n")
    if code != 250:
        raise RuntimeError(f"a delivery next to the held connections got {code} {text!r}")
    return text.decode()


async def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()
    await asyncio.gather(*(writer.wait_closed() for writer in writers), return_exceptions=True)


async def idle(count: int) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="smtplens-bench-") as tmp:
        argv = smtplens_argv(port, Path(tmp) / "data", max_connections=count + 100)
        with running("smtplens", argv, port) as server:
            before = rss_kib(server.pid)
            started = time.perf_counter()
            writers = await open_idle(port, count)
            opened = time.perf_counter() - started
            after = rss_kib(server.pid)
            reply = await asyncio.to_thread(deliver, port)
            await close_all(writers)
    per = (after - before) * 1024 / count
    print(f"\nidle connections: {count:,} open after EHLO in {opened:.1f} s")
    print(f"  server RSS {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB with them: {per / 1024:.1f} KiB each")
    print(f"  a new session meanwhile: {reply[:40]}")


async def flood(count: int, limit: int, parallel: int = 500) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="smtplens-bench-") as tmp:
        argv = smtplens_argv(port, Path(tmp) / "data", max_connections=limit)
        with running("smtplens", argv, port) as server:
            held = await open_idle(port, limit)
            gate = asyncio.Semaphore(parallel)
            latencies: list[float] = []
            greetings: dict[str, int] = {}

            async def knock() -> None:
                async with gate:
                    started = time.perf_counter()
                    try:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                        greeting = (await read_reply(reader))[:9].decode(errors="replace").strip()
                        writer.close()
                    except OSError as exc:
                        greeting = type(exc).__name__
                    latencies.append(time.perf_counter() - started)
                    greetings[greeting] = greetings.get(greeting, 0) + 1

            started = time.perf_counter()
            await asyncio.gather(*(knock() for _ in range(count)))
            seconds = time.perf_counter() - started
            await close_all(held)
            alive = server.process.poll() is None
            reply = await asyncio.to_thread(deliver, port) if alive else "(server died)"
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"\nflood: {count:,} connections beyond --max-connections {limit} in {seconds:.2f} s "
        f"({count / seconds:,.0f}/s), {parallel} at a time"
    )
    print("  greetings: " + ", ".join(f"{text}: {n:,}" for text, n in sorted(greetings.items())))
    print(
        f"  time to greeting: median {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms"
    )
    print(f"  server alive after: {alive}; a delivery after: {reply[:40]}")


# --- main ------------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a short run: fewer messages and connections")
    ap.add_argument("--messages", type=int, help="messages per throughput run (default 5000, quick 500)")
    ap.add_argument("--sessions", default="1,8,64", help="concurrent sessions to load with (comma-separated)")
    ap.add_argument("--size", type=int, default=1000, help="message size in octets")
    ap.add_argument("--reuse", action="store_true", help="send all messages over the sessions (smtp-source -d)")
    ap.add_argument("--idle", type=int, help="idle connections to hold (default 10000, quick 1000)")
    ap.add_argument("--flood", type=int, help="connections to flood with (default 5000, quick 1000)")
    ap.add_argument("--flood-limit", type=int, default=100, help="--max-connections of the flooded server")
    ap.add_argument(
        "--aiosmtpd-asyncio", action="store_true", help="run aiosmtpd on asyncio's loop (its default), not uvloop"
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell; the fastest counts (a shared machine)")
    ap.add_argument(
        "--low-latency",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="hold /dev/cpu_dma_latency at 0 during the run (the default; root; see above)",
    )
    ap.add_argument(
        "--skip", default="", help="parts to skip: throughput, store-off, store-on, idle, flood (comma-separated)"
    )
    args = ap.parse_args()
    with low_latency(args.low_latency) as state:
        print(f"CPU idle latency request: {state}")
        return run(args)


def run(args: argparse.Namespace) -> int:
    """The parts of the bench that ``args`` asks for."""
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    messages = args.messages or (500 if args.quick else 5000)
    concurrency = [int(part) for part in args.sessions.split(",")]
    limit = raise_open_files()
    try:
        loop = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        loop = "asyncio"
    theirs = "asyncio" if args.aiosmtpd_asyncio else loop
    print(f"{os.cpu_count()} CPUs, open files limit {limit}, event loop: smtplens {loop}, aiosmtpd {theirs}")
    print("load average before: " + " ".join(f"{value:.2f}" for value in os.getloadavg()))
    mode = "all over the sessions (-d)" if args.reuse else "one per connection"
    print(f"throughput: {messages} messages of {args.size} octets per run, {mode}, smtp-source as the client")
    if "throughput" not in skip:
        runs: list[Run] = []
        load_options = Load(messages, args.size, args.reuse, args.aiosmtpd_asyncio)
        for store in [store for store in (False, True) if f"store-{'on' if store else 'off'}" not in skip]:
            kinds = ("smtplens", "aiosmtpd") if store else ("smtplens", "aiosmtpd", "smtp-sink")
            for sessions in concurrency:  # the servers take turns, so a busy moment of the machine hits all
                for kind in kinds:
                    tries = [throughput(kind, store, sessions, load_options) for _ in range(args.repeat)]
                    runs.append(best_of(tries))
        print_throughput(runs, concurrency)
        print("load average after: " + " ".join(f"{value:.2f}" for value in os.getloadavg()))
    if "idle" not in skip:
        asyncio.run(idle(args.idle or (1000 if args.quick else 10_000)))
    if "flood" not in skip:
        asyncio.run(flood(args.flood or (1000 if args.quick else 5000), args.flood_limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
