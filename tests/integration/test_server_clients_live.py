"""Real SMTP clients against the server: aiosmtplib (asyncio), Python's smtplib and swaks, with STARTTLS and AUTH.

The server runs in-process on a free port of 127.0.0.1 (see ``LiveServer``) with a self-signed certificate
made in the test (``tests/integration/selfsigned.py``; clients trust only it and verify chain and name). AUTH
PLAIN and LOGIN are offered only under TLS unless ``auth_without_tls`` (RFC 4954 section 4): before STARTTLS
the server answers ``538 5.7.11`` and EHLO does not list AUTH.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.net import Decide, ServerConfig
from smtplens.server.protocol import SessionConfig
from smtplens.server.session import Context
from tests.integration.conftest import need
from tests.integration.selfsigned import TLS_HOSTNAME, Certificate, make_certificate
from tests.integration.test_server_live import DOMAIN, MESSAGE, RECIPIENT, SENDER, LiveServer, read_replies

HOSTNAME = TLS_HOSTNAME
USER = "alice"
PASSWORD = "s3cret pass"  # a space, so a client that does not quote or encode it properly fails
AUTH_NEEDS_TLS = "5.7.11 Encryption required for requested authentication mechanism"


def credentials(user: str, password: str) -> bool:
    return (user, password) == (USER, PASSWORD)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


# --- servers ---------------------------------------------------------------------------------------------------


class Servers:
    """Starts servers for one test (plain or with TLS and AUTH) and stops them at the end."""

    def __init__(self, directory: Path, certificate: Certificate) -> None:
        self.directory = directory
        self.certificate = certificate
        self.started: list[LiveServer] = []

    def plain(self, decide: Decide | None = None, **session: Any) -> LiveServer:
        return self._start(SessionConfig(hostname=HOSTNAME, **session), None, decide)

    def tls(self, decide: Decide | None = None, **session: Any) -> LiveServer:
        """STARTTLS offered; AUTH PLAIN/LOGIN with ``credentials`` (under TLS only, unless told otherwise)."""
        session.setdefault("credentials", credentials)
        config = SessionConfig(hostname=HOSTNAME, tls_available=True, **session)
        return self._start(config, self.certificate, decide)

    def _start(self, session: SessionConfig, tls: Certificate | None, decide: Decide | None) -> LiveServer:
        config = ServerConfig(
            session=session,
            accepted_domains=frozenset({DOMAIN}),
            certificate=tls.cert if tls else None,
            private_key=tls.key if tls else None,
        )
        server = LiveServer(self.directory / f"data{len(self.started)}", config, decide)
        self.started.append(server)
        return server

    def stop(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture
def servers(tmp_path: Path, certificate: Certificate) -> Iterator[Servers]:
    started = Servers(tmp_path, certificate)
    yield started
    started.stop()


def email(subject: str, recipient: str = RECIPIENT) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = recipient
    message["Subject"] = subject
    message.set_content("Hello from a real client.\n.a line that starts with a dot\n")
    return message


def aio(server: LiveServer, **options: Any) -> aiosmtplib.SMTP:
    options.setdefault("start_tls", False)
    return aiosmtplib.SMTP(
        hostname=server.host, port=server.port, local_hostname="aio.example.test", timeout=10, **options
    )


# --- aiosmtplib --------------------------------------------------------------------------------------------------


def test_aiosmtplib_sends_a_message(servers: Servers) -> None:
    server = servers.plain()

    async def run() -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        async with aio(server) as client:
            await client.ehlo()
            assert client.supports_extension("pipelining") and client.supports_extension("8bitmime")
            assert not client.supports_extension("starttls") and not client.supports_extension("auth")
            return await client.send_message(email("from aiosmtplib"))

    refused, reply = asyncio.run(run())
    [info] = server.messages()
    assert refused == {} and info.queue_id in reply
    assert (info.mail_from, info.recipients, info.subject) == (SENDER, (RECIPIENT,), "from aiosmtplib")
    assert info.helo == "aio.example.test" and info.tls is None and info.auth_identity is None
    stored = server.store.message(info.queue_id)
    assert stored is not None and stored.raw is not None
    assert b"\r\n.a line that starts with a dot\r\n" in stored.raw  # dot-stuffed by the client, unstuffed by us


def test_aiosmtplib_many_concurrent_sessions(servers: Servers) -> None:
    """aiosmtplib does not pipeline within a session (it waits for each reply); many sessions at once do the
    asyncio side of the same job. Every message is stored exactly once."""
    server = servers.plain()

    async def one(number: int) -> str:
        async with aio(server) as client:
            _, reply = await client.send_message(email(f"concurrent {number}"))
            return reply

    async def run() -> list[str]:
        return await asyncio.gather(*(one(number) for number in range(20)))

    replies = asyncio.run(run())
    infos = server.store.messages(limit=100)
    assert sorted(info.subject or "" for info in infos) == sorted(f"concurrent {number}" for number in range(20))
    assert all(any(info.queue_id in reply for reply in replies) for info in infos)


def test_aiosmtplib_sees_the_connection_closed_after_a_421(servers: Servers) -> None:
    async def decide(stage: Stage, context: Context) -> Decision:
        if stage is Stage.RCPT and context.recipient is not None and context.recipient.address.startswith("busy@"):
            return Decision.defer(code="421", enhanced="4.7.0", text=f"{HOSTNAME} Error: too busy", disconnect=True)
        return Decision.accept()

    server = servers.plain(decide)

    async def run() -> None:
        client = aio(server)
        await client.connect()
        await client.ehlo()
        await client.mail(SENDER)
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await client.rcpt(f"busy@{DOMAIN}")
        assert (refused.value.code, refused.value.message) == (421, f"4.7.0 {HOSTNAME} Error: too busy")
        assert not client.is_connected  # aiosmtplib closes its side on a 421, as RFC 5321 section 3.8 expects
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await client.noop()

    asyncio.run(run())
    assert server.messages() == []
    with server.connect() as sock:  # the server is still serving others
        assert sock.recv(512).startswith(b"220 ")


def test_aiosmtplib_421_greeting(servers: Servers) -> None:
    async def decide(stage: Stage, context: Context) -> Decision:
        if stage is Stage.CONNECT:
            return Decision.defer(code="421", enhanced="4.3.2", text=f"{HOSTNAME} Try again later", disconnect=True)
        return Decision.accept()

    server = servers.plain(decide)

    async def run() -> None:
        with pytest.raises(aiosmtplib.SMTPConnectResponseError) as refused:
            await aio(server).connect()
        assert refused.value.code == 421
        assert refused.value.message == f"4.3.2 {HOSTNAME} Try again later"

    asyncio.run(run())


def test_aiosmtplib_starttls_then_auth_plain_and_login(servers: Servers, certificate: Certificate) -> None:
    server = servers.tls()

    async def run(mechanism: str) -> str:
        async with aio(server, tls_context=certificate.client_context()) as client:
            await client.ehlo()
            assert client.supports_extension("starttls") and not client.supports_extension("auth")
            await client.starttls()
            await client.ehlo()
            assert client.server_auth_methods == ["plain", "login"]
            assert not client.supports_extension("starttls")
            if mechanism == "PLAIN":
                response = await client.auth_plain(USER, PASSWORD)
            else:
                response = await client.auth_login(USER, PASSWORD)
            assert (response.code, response.message) == (235, "2.7.0 Authentication successful")
            _, reply = await client.send_message(email(f"over TLS, AUTH {mechanism}"))
            return reply

    for mechanism in ("PLAIN", "LOGIN"):
        asyncio.run(run(mechanism))
    infos = {info.subject: info for info in server.messages()}
    assert set(infos) == {"over TLS, AUTH PLAIN", "over TLS, AUTH LOGIN"}
    for info in infos.values():
        assert (info.auth_identity, info.tls) == (USER, "yes")


def test_aiosmtplib_upgrades_on_its_own_when_starttls_is_offered(servers: Servers, certificate: Certificate) -> None:
    server = servers.tls()

    async def run() -> None:
        client = aio(server, start_tls=None, tls_context=certificate.client_context(), username=USER, password=PASSWORD)
        async with client:
            assert client.get_transport_info("sslcontext") is not None
            await client.send_message(email("auto STARTTLS"))

    asyncio.run(run())
    [info] = server.messages()
    assert info.tls is not None and info.auth_identity == USER


def test_aiosmtplib_auth_refused_before_tls(servers: Servers) -> None:
    server = servers.tls()
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode("ascii")

    async def run() -> None:
        async with aio(server) as client:
            await client.ehlo()
            assert not client.supports_extension("auth")
            with pytest.raises(aiosmtplib.SMTPException):
                await client.login(USER, PASSWORD)  # aiosmtplib itself refuses: AUTH is not advertised
            response = await client.execute_command(b"AUTH", b"PLAIN", plain.encode("ascii"))
            assert (response.code, response.message) == (538, AUTH_NEEDS_TLS)
            response = await client.execute_command(b"AUTH", b"LOGIN")
            assert (response.code, response.message) == (538, AUTH_NEEDS_TLS)
            await client.send_message(email("unauthenticated"))  # the session goes on

    asyncio.run(run())
    [info] = server.messages()
    assert info.auth_identity is None and info.tls is None


def test_aiosmtplib_wrong_password_is_535(servers: Servers, certificate: Certificate) -> None:
    server = servers.tls()

    async def run() -> None:
        async with aio(server, tls_context=certificate.client_context()) as client:
            await client.starttls()
            # RFC 3207 section 4.2: what was learnt before TLS is forgotten; AUTH needs a new EHLO first
            response = await client.execute_command(b"AUTH", b"LOGIN")
            assert (response.code, response.message) == (503, "5.5.1 Error: send EHLO first")
            await client.ehlo()
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
                await client.auth_plain(USER, "wrong")
            assert (refused.value.code, refused.value.message) == (535, "5.7.8 Authentication credentials invalid")
            response = await client.auth_login(USER, PASSWORD)  # a failure does not end the session
            assert response.code == 235

    asyncio.run(run())


def test_auth_without_tls_when_configured(servers: Servers) -> None:
    server = servers.plain(credentials=credentials, auth_without_tls=True)

    async def run() -> None:
        async with aio(server, username=USER, password=PASSWORD) as client:
            assert client.server_auth_methods == ["plain", "login"]
            await client.send_message(email("auth without TLS"))

    asyncio.run(run())
    [info] = server.messages()
    assert info.auth_identity == USER and info.tls is None


# --- smtplib -----------------------------------------------------------------------------------------------------


def test_smtplib_starttls_login_and_send(servers: Servers, certificate: Certificate) -> None:
    server = servers.tls(require_tls=True)
    with server.client() as client:
        client.ehlo()
        assert client.mail(SENDER) == (530, b"5.7.0 Must issue a STARTTLS command first")
        assert client.docmd("AUTH", "LOGIN") == (538, AUTH_NEEDS_TLS.encode())
        assert client.starttls(context=certificate.client_context())[0] == 220
        assert isinstance(client.sock, ssl.SSLSocket)
        client.ehlo()
        assert client.has_extn("auth") and not client.has_extn("starttls")
        assert client.login(USER, PASSWORD)[0] == 235
        assert client.sendmail(SENDER, [RECIPIENT], MESSAGE) == {}
        assert client.docmd("STARTTLS") == (503, b"5.5.1 Error: TLS already active")
    [info] = server.messages()
    assert info.auth_identity == USER and info.tls is not None


def test_smtplib_refuses_a_certificate_it_does_not_trust(servers: Servers) -> None:
    server = servers.tls()
    with server.client() as client:
        client.ehlo()
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=ssl.create_default_context(cafile=None, capath="/nonexistent"))
    with server.client() as client:  # the failed handshake did not hurt the server
        assert client.noop()[0] == 250


# --- swaks -------------------------------------------------------------------------------------------------------


def swaks(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    program = need("swaks")
    argv = [program, "--server", f"{server.host}:{server.port}", "--from", SENDER, "--to", RECIPIENT]
    return subprocess.run(
        [*argv, "--helo", "swaks.example.test", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_swaks_starttls_auth_and_pipelining(servers: Servers) -> None:
    server = servers.tls()
    for mechanism in ("PLAIN", "LOGIN"):
        result = swaks(
            server,
            "--tls",
            "--auth",
            mechanism,
            "--auth-user",
            USER,
            "--auth-password",
            PASSWORD,
            "--pipeline",
            "--header",
            f"Subject: swaks {mechanism}",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "=== TLS started with cipher TLSv1." in result.stdout
        assert (
            "<~  250-AUTH PLAIN LOGIN" in result.stdout and "<~  235 2.7.0 Authentication successful" in result.stdout
        )
        # pipelined (RFC 2920): MAIL, RCPT and DATA go out together, then the three replies come back
        assert (
            " ~> MAIL FROM:<sender@example.test>\n ~> RCPT TO:<bob@lab.test>\n ~> DATA\n<~  250 2.1.0" in result.stdout
        )
    infos = server.messages()
    assert sorted(info.subject or "" for info in infos) == ["swaks LOGIN", "swaks PLAIN"]
    assert all(info.auth_identity == USER and info.tls is not None for info in infos)


def test_swaks_auth_without_tls_is_refused(servers: Servers) -> None:
    server = servers.tls()
    result = swaks(server, "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD)
    assert result.returncode == 28, result.stdout + result.stderr  # swaks: 28 = AUTH failed
    assert "250-AUTH" not in result.stdout and "Host did not advertise authentication" in result.stderr
    assert server.messages() == []
    result = swaks(server, "--tls", "--auth", "PLAIN", "--auth-user", USER, "--auth-password", "wrong")
    assert result.returncode == 28, result.stdout + result.stderr
    assert "535 5.7.8 Authentication credentials invalid" in result.stdout
    assert server.messages() == []


# --- STARTTLS on a raw socket -------------------------------------------------------------------------------------


def test_commands_pipelined_after_starttls_are_not_run_under_tls(servers: Servers, certificate: Certificate) -> None:
    """RFC 3207 section 6 (CVE-2011-0411 class): plaintext sent in the same packet as STARTTLS must not be taken
    as if it came over TLS. The injected RSET/MAIL would answer before our EHLO if it were."""
    server = servers.tls()
    with server.connect() as sock:
        assert read_replies(sock, 1)[0].startswith("220 ")
        sock.sendall(b"EHLO raw.example.test\r\n")
        read_replies(sock, 1)
        sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\nNOOP\r\n")
        assert read_replies(sock, 1) == ["220 2.0.0 Ready to start TLS"]
        with certificate.client_context().wrap_socket(sock, server_hostname=HOSTNAME) as tls:
            tls.sendall(b"EHLO raw.example.test\r\nMAIL FROM:<ok@example.test>\r\n")
            ehlo, mail = read_replies(tls, 2)
            assert ehlo.startswith(f"250-{HOSTNAME}\n") and "AUTH PLAIN LOGIN" in ehlo
            assert mail == "250 2.1.0 Ok"
            tls.sendall(b"QUIT\r\n")
            assert read_replies(tls, 1) == ["221 2.0.0 Bye"]
    assert server.messages() == []
