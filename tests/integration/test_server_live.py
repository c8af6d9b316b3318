"""The SMTP server (``smtplens.server.net``) against real clients: Python's smtplib, raw sockets and swaks.

Each test starts a server on 127.0.0.1 at a free high port, in an event loop of its own thread, with a store in
a temporary directory, and stops it at the end. swaks fails the test in CI and skips it elsewhere when missing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.net import Decide, ServerConfig, SmtpServer
from smtplens.server.protocol import SessionConfig
from smtplens.server.session import Context
from smtplens.server.store import MessageInfo, MessageStore
from tests.integration.conftest import free_port, need

T = TypeVar("T")

DOMAIN = "lab.test"
SENDER = "sender@example.test"
RECIPIENT = f"bob@{DOMAIN}"
MESSAGE = (
    b"From: sender@example.test\r\nTo: bob@lab.test\r\nSubject: live test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"\r\nHello.\r\n.a line that starts with a dot\r\nBye.\r\n"
)


class LiveServer:
    """An SmtpServer and its store, served by an event loop in a thread of its own."""

    def __init__(self, directory: Path, config: ServerConfig, decide: Decide | None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="smtp-server", daemon=True)
        self.thread.start()
        self.store = MessageStore(directory)
        self.server = SmtpServer(config, self.store, decide)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.call(self.server.start(self.host, self.port))
        self.stopped = False

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return self.submit(coro).result(timeout)

    def client(self, timeout: float = 5) -> smtplib.SMTP:
        return smtplib.SMTP(self.host, self.port, local_hostname="client.example.test", timeout=timeout)

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=5)

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.call(self.server.shutdown(2), timeout=15)
        self.store.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def messages(self) -> list[MessageInfo]:
        return self.store.messages()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def read_replies(sock: socket.socket, count: int) -> list[str]:
    """``count`` complete replies (multiline replies joined), read from a raw socket."""
    data = b""
    replies: list[str] = []
    while len(replies) < count:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise AssertionError(f"connection closed after {replies}, pending {data!r}")
            data += chunk
        line, _, data = data.partition(b"\r\n")
        text = line.decode("ascii")
        if replies and replies[-1].endswith("-CONTINUED"):
            replies[-1] = replies[-1].removesuffix("-CONTINUED") + "\n" + text
        else:
            replies.append(text)
        if len(text) > 3 and text[3] == "-":
            replies[-1] += "-CONTINUED"
    return replies


Factory = Callable[..., LiveServer]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Factory]:
    servers: list[LiveServer] = []

    def make(decide: Decide | None = None, **options: Any) -> LiveServer:
        session = options.pop("session", SessionConfig(hostname="mx.lab.test"))
        config = ServerConfig(session=session, accepted_domains=frozenset({DOMAIN}), **options)
        server = LiveServer(tmp_path / f"data{len(servers)}", config, decide)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


# --- delivery ----------------------------------------------------------------------------------------------


def test_smtplib_message_is_stored_before_the_250(live: Factory) -> None:
    server = live()
    with server.client() as client:
        code, _ = client.ehlo()
        assert code == 250
        assert client.has_extn("pipelining") and client.has_extn("8bitmime") and client.has_extn("size")
        assert client.mail(SENDER)[0] == 250
        assert client.rcpt(RECIPIENT)[0] == 250
        code, text = client.data(MESSAGE)
        assert code == 250, text
        # The 250 came only after the store made the message durable: it is there now, under the queue id.
        [info] = server.messages()
        assert info.queue_id in text.decode()
        assert (info.mail_from, info.recipients) == (SENDER, (RECIPIENT,))
        assert info.client_address == "127.0.0.1" and info.helo == "client.example.test"
        assert info.subject == "live test"
        stored = server.store.message(info.queue_id)
        assert stored is not None and stored.raw == MESSAGE  # dot-stuffing removed, bytes as sent
    # The transcript is recorded once the session ends.
    wait_for(lambda: len(server.store.sessions()) == 1, "the session record")
    [record] = server.store.sessions()
    assert record.session_id == info.session_id and record.outcome == "221"
    lines = [entry[1] for entry in record.transcript]
    assert lines[0].startswith("220 mx.lab.test") and "QUIT" in lines


def test_pipelined_commands_get_their_replies_in_order(live: Factory) -> None:
    server = live()
    with contextlib.closing(server.connect()) as sock:
        assert read_replies(sock, 1)[0].startswith("220 ")
        sock.sendall(
            b"EHLO client.example.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<one@lab.test>\r\n"
            b"RCPT TO:<x@elsewhere.test>\r\nRCPT TO:<two@LAB.TEST>\r\nDATA\r\n"
        )
        ehlo, mail, rcpt1, relay, rcpt2, data = read_replies(sock, 6)
        assert ehlo.startswith("250-mx.lab.test") and "PIPELINING" in ehlo
        assert mail.startswith("250 2.1.0") and rcpt1.startswith("250 2.1.5") and rcpt2.startswith("250 2.1.5")
        assert relay == "554 5.7.1 <x@elsewhere.test>: Relay access denied"
        assert data.startswith("354 ")
        sock.sendall(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        queued, bye = read_replies(sock, 2)
        assert queued.startswith("250 2.0.0") and bye.startswith("221 ")
    [info] = server.messages()
    assert info.recipients == ("one@lab.test", "two@LAB.TEST")


def test_relay_attempt_is_refused(live: Factory) -> None:
    server = live()
    with server.client() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        client.sendmail(SENDER, ["victim@elsewhere.test"], MESSAGE)
    code, text = caught.value.recipients["victim@elsewhere.test"]
    assert code == 554 and b"5.7.1" in text and b"Relay access denied" in text
    assert server.messages() == []


# --- greetings -------------------------------------------------------------------------------------------------


async def _refuse_connect(stage: Stage, context: Context) -> Decision:
    if stage is Stage.CONNECT:
        return Decision.reject(text="Service unavailable; Client host [127.0.0.1] blocked", policy="test")
    return Decision.accept()


def test_554_greeting_only_quit_works(live: Factory) -> None:
    server = live(_refuse_connect)
    with pytest.raises(smtplib.SMTPConnectError) as caught:
        server.client()
    assert caught.value.smtp_code == 554
    with contextlib.closing(server.connect()) as sock:
        assert read_replies(sock, 1)[0].startswith("554 5.7.1 Service unavailable")
        sock.sendall(b"EHLO client.example.test\r\nMAIL FROM:<a@example.test>\r\nQUIT\r\n")
        ehlo, mail, bye = read_replies(sock, 3)
        assert ehlo.startswith("503 5.7.0") and mail.startswith("503 5.7.0") and bye.startswith("221 ")


def test_maintenance_greets_with_421_and_closes(live: Factory) -> None:
    server = live(maintenance=True)
    with pytest.raises(smtplib.SMTPConnectError) as caught:
        server.client()
    assert caught.value.smtp_code == 421
    with contextlib.closing(server.connect()) as sock:
        assert read_replies(sock, 1)[0].startswith("421 4.3.2 mx.lab.test")
        assert sock.recv(100) == b""  # closed after the 421


def test_over_max_connections_gets_421_greeting(live: Factory) -> None:
    server = live(max_connections=2)
    first, second = server.client(), server.client()
    try:
        with pytest.raises(smtplib.SMTPConnectError) as caught:
            server.client()
        assert caught.value.smtp_code == 421
        assert b"4.7.0 mx.lab.test Error: too many connections from 127.0.0.1" in caught.value.smtp_error
        first.quit()
        wait_for(lambda: server.server.connections == 1, "the closed connection to be counted out")
        with server.client() as third:
            assert third.noop()[0] == 250
    finally:
        second.quit()


def test_max_connections_per_ip(live: Factory) -> None:
    server = live(max_per_ip=1)
    with server.client(), pytest.raises(smtplib.SMTPConnectError) as caught:
        server.client()
    assert caught.value.smtp_code == 421


# --- decisions that fail ---------------------------------------------------------------------------------------


async def _broken(stage: Stage, context: Context) -> Decision:
    if stage is Stage.MAIL or (stage is Stage.CONNECT and context.envelope.client_address == "127.0.0.2"):
        raise RuntimeError("policy bug")
    return Decision.accept()


def test_decision_that_raises_gives_451_and_the_session_goes_on(live: Factory) -> None:
    server = live(_broken)
    with server.client() as client:
        client.ehlo()
        code, text = client.mail(SENDER)
        assert (code, text) == (451, b"4.3.0 Error: policy failure, try again later")
        assert client.noop()[0] == 250
    # At the greeting, where only 220, 554 and 421 fit, a broken policy gives 421 4.3.0 and a close.
    with contextlib.closing(socket.create_connection((server.host, server.port), 5, ("127.0.0.2", 0))) as sock:
        assert read_replies(sock, 1)[0].startswith("421 4.3.0 mx.lab.test")


def test_rcpt_decision_timeout_gives_451(live: Factory) -> None:
    async def slow_rcpt(stage: Stage, context: Context) -> Decision:
        if stage is Stage.RCPT:
            await asyncio.sleep(5)
        return Decision.accept()

    server = live(slow_rcpt, decision_timeout=0.2)
    with server.client() as client:
        client.ehlo()
        assert client.mail(SENDER)[0] == 250
        code, text = client.rcpt(RECIPIENT)
        assert (code, text[:5]) == (451, b"4.3.0")


# --- timeouts and shutdown -------------------------------------------------------------------------------------


def test_idle_timeout_answers_421(live: Factory) -> None:
    server = live(session=SessionConfig(hostname="mx.lab.test", idle_timeout=0.3))
    with contextlib.closing(server.connect()) as sock:
        assert read_replies(sock, 1)[0].startswith("220 ")
        assert read_replies(sock, 1)[0] == "421 4.4.2 mx.lab.test Error: timeout exceeded"
        assert sock.recv(100) == b""


def test_graceful_shutdown_mid_data_keeps_the_message(live: Factory) -> None:
    server = live()
    idle = server.client()
    busy = server.client()
    busy.ehlo()
    assert busy.mail(SENDER)[0] == 250 and busy.rcpt(RECIPIENT)[0] == 250
    busy.putcmd("data")
    assert busy.getreply()[0] == 354
    wire = smtplib.quotedata(MESSAGE.decode("ascii")).encode("ascii")  # dot-stuffed, as on the wire
    busy.send(wire[:40])
    stopping = server.submit(server.server.shutdown(10))
    # The idle session gets 421 at once.
    assert idle.getreply()[0] == 421
    # The session receiving a message finishes it: its 250 comes after the store, then the 421.
    time.sleep(0.1)
    busy.send(wire[40:] + b".\r\n")
    code, text = busy.getreply()
    assert code == 250, text
    code, text = busy.getreply()
    assert code == 421 and text.startswith(b"4.3.2")
    stopping.result(10)
    server.stopped = True
    [info] = server.messages()
    stored = server.store.message(info.queue_id)
    assert stored is not None and stored.raw == MESSAGE
    assert len(server.store.sessions()) == 2  # both transcripts recorded before shutdown returned
    # Nothing listens any more.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=1).close()
    busy.close()
    idle.close()


def test_serve_command_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    code = "import sys; from smtplens.cli.main import run; sys.argv[0] = 'smtplens'; run()"
    argv = [sys.executable, "-c", code, "serve", "--smtp", f"127.0.0.1:{port}", "--data", str(data)]
    argv += ["--accept-domain", DOMAIN, "--hostname", "mx.lab.test"]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        client = None
        while client is None:
            try:
                client = smtplib.SMTP("127.0.0.1", port, timeout=5)
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        with client:
            client.sendmail(SENDER, [RECIPIENT], MESSAGE)
            os.kill(process.pid, signal.SIGTERM)
            assert client.getreply()[0] == 421
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert process.stderr is not None
    assert b"stopped" in process.stderr.read()
    with MessageStore(data) as store:
        [info] = store.messages()
        assert info.recipients == (RECIPIENT,)
        assert len(store.sessions()) == 1


# --- swaks -----------------------------------------------------------------------------------------------------


def swaks(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    program = need("swaks")
    argv = [program, "--server", f"{server.host}:{server.port}", "--from", SENDER, "--helo", "swaks.example.test"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=30, check=False)


def test_swaks_delivers_a_message(live: Factory) -> None:
    server = live()
    result = swaks(server, "--to", RECIPIENT, "--header", "Subject: from swaks", "--body", "hello from swaks")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 Ok: queued as" in result.stdout
    [info] = server.messages()
    assert (info.mail_from, info.recipients, info.subject) == (SENDER, (RECIPIENT,), "from swaks")
    stored = server.store.message(info.queue_id)
    assert stored is not None and stored.raw is not None and b"hello from swaks" in stored.raw


def test_swaks_relay_refused_at_rcpt(live: Factory) -> None:
    server = live()
    result = swaks(server, "--to", "victim@elsewhere.test")
    assert result.returncode == 24, result.stdout  # swaks: 24 = failed at RCPT
    assert "554 5.7.1 <victim@elsewhere.test>: Relay access denied" in result.stdout


def test_swaks_pipelining_and_maintenance(live: Factory) -> None:
    server = live()
    result = swaks(server, "--to", RECIPIENT, "--pipeline")
    assert result.returncode == 0, result.stdout + result.stderr
    closed = live(maintenance=True)
    result = swaks(closed, "--to", RECIPIENT)
    assert result.returncode == 21, result.stdout  # 21 = failed at the greeting
    assert "421 4.3.2" in result.stdout
