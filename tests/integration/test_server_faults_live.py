"""Faults against the live SMTP server: SIGKILL during a flood, slow clients, garbage input, pipelining abuse.

What ``test_server_live.py`` already covers (idle timeout, graceful shutdown, connection limits, a failing
policy) is not repeated here, nor what the unit tests do: the state machine's hypothesis fuzz test
(``tests/test_server_session.py``) and the store's own SIGKILL test (``tests/test_server_store.py``, a process
calling the store directly). The SIGKILL test here kills ``smtplens serve`` itself, started as a subprocess,
while sixteen smtplib clients deliver to it; the others run an ``SmtpServer`` in a thread of the test process
(``LiveServer``). Everything is on 127.0.0.1 at a free port.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.net import Decide, ServerConfig
from smtplens.server.protocol import Limits, SessionConfig
from smtplens.server.session import Context
from smtplens.server.store import MessageStore
from tests.integration.conftest import free_port
from tests.integration.selfsigned import make_certificate
from tests.integration.test_server_live import (
    DOMAIN,
    RECIPIENT,
    SENDER,
    Factory,
    LiveServer,
    read_replies,
    wait_for,
)

HOST = "mx.lab.test"
QUEUED = re.compile(rb"2\.0\.0 Ok: queued as ([0-9A-F]+)")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Factory]:
    servers: list[LiveServer] = []

    def make(session: SessionConfig | None = None, decide: Decide | None = None, **options: Any) -> LiveServer:
        config = ServerConfig(
            session=session or SessionConfig(hostname=HOST), accepted_domains=frozenset({DOMAIN}), **options
        )
        server = LiveServer(tmp_path / f"data{len(servers)}", config, decide)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def greeted(server: LiveServer) -> socket.socket:
    sock = server.connect()
    assert read_replies(sock, 1)[0].startswith("220 ")
    return sock


def assert_still_serving(server: LiveServer) -> None:
    with server.client() as client:
        assert client.sendmail(SENDER, [RECIPIENT], b"Subject: after\r\n\r\nstill here\r\n") == {}


def closed(sock: socket.socket) -> bool:
    """True when the peer has closed (EOF), reading and dropping anything still in flight."""
    sock.settimeout(5)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


# --- kill -9 during a flood ------------------------------------------------------------------------------------


def _start_serve(data: Path, port: int) -> subprocess.Popen[bytes]:
    code = "import sys; from smtplens.cli.main import run; sys.argv[0] = 'smtplens'; run()"
    argv = [sys.executable, "-c", code, "serve", "--smtp", f"127.0.0.1:{port}", "--data", str(data)]
    argv += ["--accept-domain", DOMAIN, "--hostname", HOST, "--max-per-ip", "1000"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=5).quit()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)


def _sender(port: int, worker: int, stop: threading.Event, accepted: dict[str, bytes]) -> None:
    """Send messages until told to stop or the server dies; note the queue id of every 250."""
    number = 0
    while not stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="flood.test", timeout=10) as client:
                while not stop.is_set():
                    number += 1
                    lines = [os.urandom(38).hex().encode() for _ in range(16)]  # 1.2 kB in 76-octet lines
                    body = f"Subject: flood {worker}.{number}\r\n\r\n".encode() + b"\r\n".join(lines)
                    client.mail(SENDER)
                    client.rcpt(RECIPIENT)
                    code, text = client.data(body + b"\r\n")
                    match = QUEUED.search(text)
                    if code != 250 or match is None:
                        raise AssertionError(f"refused: {code} {text!r}")
                    accepted[match.group(1).decode()] = body + b"\r\n"
        except (OSError, smtplib.SMTPException):
            return  # the server was killed mid-session


def test_sigkill_during_a_flood_loses_no_message_that_got_250(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    process = _start_serve(data, port)
    accepted: dict[str, bytes] = {}
    stop = threading.Event()
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            workers = [pool.submit(_sender, port, worker, stop, accepted) for worker in range(16)]
            wait_for(lambda: len(accepted) >= 300 or any(w.done() for w in workers), "300 messages", timeout=60)
            for worker in workers:
                if worker.done():
                    worker.result()  # a sender that stopped before the kill: its error fails the test
            process.send_signal(signal.SIGKILL)  # mid-flood: sixteen sessions are in the middle of something
            assert process.wait(10) == -signal.SIGKILL
            stop.set()
            for worker in workers:
                worker.result(30)
    finally:
        stop.set()
        if process.poll() is None:
            process.kill()
            process.wait(5)
    with MessageStore(data) as store:
        for queue_id, body in accepted.items():
            stored = store.message(queue_id)
            assert stored is not None, f"{queue_id} got 250 but is not in the store"
            assert stored.info.state == "stored" and stored.raw == body, queue_id
        # Messages whose 250 the kill cut off may be there too; nothing else is.
        assert store.count() >= len(accepted)


# --- slow clients ----------------------------------------------------------------------------------------------


def test_data_timeout_answers_421_4_4_2_and_stores_nothing(live: Factory) -> None:
    server = live(SessionConfig(hostname=HOST, data_timeout=0.3))
    with contextlib.closing(greeted(server)) as sock:
        sock.sendall(b"EHLO slow.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\n")
        assert read_replies(sock, 4)[-1].startswith("354 ")
        sock.sendall(b"Subject: half a message\r\n\r\nand then nothing")
        assert read_replies(sock, 1) == [f"421 4.4.2 {HOST} Error: timeout exceeded"]
        assert closed(sock)
    assert server.messages() == []
    assert_still_serving(server)


def test_a_dribbling_client_keeps_its_session_until_it_falls_silent(live: Factory) -> None:
    """The idle timeout counts from the last octet received: a command sent one octet every 0.2 s (1.2 s in all,
    longer than the 1 s timeout) is answered; silence then ends the session with 421 4.4.2."""
    server = live(SessionConfig(hostname=HOST, idle_timeout=1.0))
    with contextlib.closing(greeted(server)) as sock:
        for byte in b"NOOP\r\n":
            time.sleep(0.2)
            sock.sendall(bytes([byte]))
        assert read_replies(sock, 1)[0].startswith("250 2.0.0")
        assert read_replies(sock, 1) == [f"421 4.4.2 {HOST} Error: timeout exceeded"]
        assert closed(sock)


# --- garbage ---------------------------------------------------------------------------------------------------


def test_garbage_and_nul_bytes_are_syntax_errors_and_the_session_goes_on(live: Factory) -> None:
    server = live()
    with contextlib.closing(greeted(server)) as sock:
        sock.sendall(b"\x00\x01\x02\xff\xfe garbage\r\nNO\x00OP\r\n\x16\x03\x01\x02\x00\x01\x00\r\nNOOP\r\n")
        first, second, tls_hello, noop = read_replies(sock, 4)
        assert first == "500 5.5.2 Error: bad UTF-8 syntax"  # Postfix's text for bytes that are not UTF-8
        assert second == "500 5.5.2 Error: bad syntax"  # NUL
        assert tls_hello.startswith("500 5.5.2")  # a TLS ClientHello where a command belongs
        assert noop.startswith("250 2.0.0")
    assert_still_serving(server)


def test_100_kb_line_without_newline_then_over_long_command(live: Factory) -> None:
    server = live()
    with contextlib.closing(greeted(server)) as sock:
        sock.sendall(b"X" * 100_000)  # no newline: buffered up to the limit, then discarded as it comes
        sock.sendall(b"\r\nNOOP " + b"y" * 600 + b"\r\nNOOP\r\n")
        assert [reply[:9] for reply in read_replies(sock, 3)] == ["500 5.5.6", "500 5.5.6", "250 2.0.0"]
    assert_still_serving(server)


def test_too_many_errors_answers_421_4_7_0_and_closes(live: Factory) -> None:
    server = live(session=SessionConfig(hostname=HOST, limits=Limits(errors=5)))
    with contextlib.closing(greeted(server)) as sock:
        sock.sendall(b"BOGUS\r\n" * 50)
        replies = read_replies(sock, 6)
        assert replies[:5] == ["500 5.5.2 Error: command not recognized"] * 5
        assert replies[5] == f"421 4.7.0 {HOST} Error: too many errors"
        assert closed(sock)
    assert_still_serving(server)


# --- pipelining abuse ------------------------------------------------------------------------------------------


def _send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    """Write while the test reads: with 10,000 replies both socket buffers would fill otherwise."""

    def write() -> None:
        with contextlib.suppress(OSError):
            sock.sendall(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_10000_pipelined_rcpt_get_10000_replies_in_order(live: Factory) -> None:
    server = live()
    with contextlib.closing(greeted(server)) as sock:
        sock.sendall(b"EHLO pipe.test\r\nMAIL FROM:<a@example.test>\r\n")
        assert read_replies(sock, 2)[1].startswith("250 2.1.0")
        rcpts = b"".join(b"RCPT TO:<r%d@lab.test>\r\n" % n for n in range(10_000))
        writer = _send_in_background(sock, rcpts + b"DATA\r\n")
        replies = read_replies(sock, 10_001)
        writer.join(10)
        assert [reply[:9] for reply in replies[:100]] == ["250 2.1.5"] * 100  # the RFC 5321 minimum of 100
        assert {reply[:9] for reply in replies[100:10_000]} == {"452 4.5.3"}
        assert replies[10_000].startswith("354 ")
        sock.sendall(b"Subject: many\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        queued, bye = read_replies(sock, 2)
        assert queued.startswith("250 2.0.0") and bye.startswith("221 ")
    [info] = server.messages()
    assert len(info.recipients) == 100


def test_10000_pipelined_commands_in_one_write_are_all_answered(live: Factory) -> None:
    server = live()
    with contextlib.closing(greeted(server)) as sock:
        writer = _send_in_background(sock, b"NOOP\r\n" * 10_000 + b"QUIT\r\n")
        replies = read_replies(sock, 10_001)
        writer.join(10)
        assert replies[:10_000] == ["250 2.0.0 Ok"] * 10_000
        assert replies[10_000].startswith("221 ")
        assert closed(sock)
    assert_still_serving(server)


async def _slow_mail(stage: Stage, context: Context) -> Decision:
    if stage is Stage.MAIL:
        await asyncio.sleep(0.5)
    return Decision.accept()


def _replies_until_eof(sock: socket.socket) -> list[str]:
    sock.settimeout(10)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode("ascii").splitlines()


def test_pipelined_flood_behind_a_slow_decision_is_held_back_and_answered_in_order(live: Factory) -> None:
    """While a decision is pending the adapter stops reading, so a client pipelining 1.2 MB behind a slow MAIL
    decision is held back by TCP flow control (the server's memory stays bounded) and then answered in order."""
    server = live(decide=_slow_mail)
    with contextlib.closing(greeted(server)) as sock:
        flood = b"EHLO p.test\r\nMAIL FROM:<a@example.test>\r\n" + b"NOOP\r\n" * 200_000 + b"QUIT\r\n"
        writer = _send_in_background(sock, flood)
        lines = _replies_until_eof(sock)
        writer.join(10)
        assert not writer.is_alive()
    ehlo = [line for line in lines if line.startswith("250-")]
    assert lines[len(ehlo) + 1].startswith("250 2.1.0")  # MAIL, after its decision
    assert lines[len(ehlo) + 2 : -1] == ["250 2.0.0 Ok"] * 200_000
    assert lines[-1].startswith("221 ")
    assert_still_serving(server)


def test_a_failed_tls_handshake_closes_and_frees_the_connection(live: Factory, tmp_path: Path) -> None:
    """A client that answers 220 Ready to start TLS with plaintext: the handshake fails, the connection is
    closed and forgotten (no leak in the connection count), its transcript is recorded, the server goes on."""
    tls = make_certificate(tmp_path)
    server = live(SessionConfig(hostname=HOST, tls_available=True), certificate=tls.cert, private_key=tls.key)
    with contextlib.closing(greeted(server)) as sock:
        sock.sendall(b"EHLO tls.test\r\n")
        ehlo = b""
        while b"\r\n250 " not in ehlo:  # the last line of the EHLO reply
            ehlo += sock.recv(4096)
        assert b"250-STARTTLS\r\n" in ehlo
        sock.sendall(b"STARTTLS\r\n")
        assert read_replies(sock, 1)[0].startswith("220 ")
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n" * 100)  # not a TLS ClientHello
        assert closed(sock)
    wait_for(lambda: server.server.connections == 0, "the connection to be forgotten")
    wait_for(lambda: len(server.store.sessions()) == 1, "the transcript")
    assert_still_serving(server)
