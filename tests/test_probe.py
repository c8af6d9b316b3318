"""smtplens probe: the SMTP client rules, TLS description, the probe's session manners and the CLI.

The peer is a scripted asyncio SMTP server started inside the test on 127.0.0.1 (a port the OS picks), in a
thread of its own so that the CLI can be driven synchronously through click's CliRunner. It answers each
command from a table and records what it received, so a test can check what the probe sent (nothing after a
421, only QUIT after a 554). Certificates are made with ``cryptography`` in a temporary directory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smtplens.cli.main import cli
from smtplens.diagnose.dns import Answer, DnsTempError
from smtplens.diagnose.probe import (
    ProbeError,
    ProbeInputError,
    ProbeReport,
    StepName,
    Timeouts,
    parse_target,
    probe,
    probe_message,
)
from smtplens.diagnose.smtp_client import (
    Failure,
    ReplyReader,
    SmtpClientError,
    check_command,
    dot_stuff,
    parse_ehlo,
)
from smtplens.diagnose.tlsinfo import name_matches, parse_certificate

FAST = Timeouts.uniform(5.0)

EHLO_REPLY = "\n".join(
    [
        "250-mx1.example.test",
        "250-PIPELINING",
        "250-SIZE 10240000",
        "250-AUTH PLAIN LOGIN",
        "250-ENHANCEDSTATUSCODES",
        "250-8BITMIME",
        "250 SMTPUTF8",
    ]
)
EHLO_TLS = EHLO_REPLY.replace("250-PIPELINING", "250-PIPELINING\n250-STARTTLS")


# --- the scripted server ----------------------------------------------------------------------------------------------


@dataclass
class Script:
    """How the server answers: the greeting, then a reply per command verb (``MAIL``, ``RCPT``…)."""

    greeting: str | None = "220 mx1.example.test ESMTP smtplens-test"
    replies: dict[str, str] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None
    end_of_data: str = "250 2.0.0 Ok: queued as 4ABC"

    def reply(self, verb: str) -> str:
        defaults = {
            "EHLO": EHLO_REPLY,
            "HELO": "250 mx1.example.test",
            "MAIL": "250 2.1.0 Ok",
            "RCPT": "250 2.1.5 Ok",
            "DATA": "354 End data with <CR><LF>.<CR><LF>",
            "STARTTLS": "220 2.0.0 Ready to start TLS",
            "QUIT": "221 2.0.0 Bye",
        }
        return self.replies.get(verb, defaults.get(verb, "502 5.5.2 Error: command not recognized"))


@dataclass
class Session:
    peer: str
    commands: list[str] = field(default_factory=list)
    message: bytes = b""


class ScriptedServer:
    """An SMTP server on 127.0.0.1 in its own thread and event loop, answering from a :class:`Script`."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.sessions: list[Session] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        assert self._ready.wait(5), "the scripted server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(peer=writer.get_extra_info("peername")[0])
        self.sessions.append(session)
        script = self.script
        try:
            greeting = script.greeting
            if greeting is None:  # never answers
                await asyncio.sleep(3600)
                return
            await self._send(writer, greeting)
            if greeting.startswith("421"):
                return
            refused = greeting.startswith("554")
            while line := await reader.readline():
                command = line.decode("utf-8", "replace").rstrip("\r\n")
                session.commands.append(command)
                verb = command.split(" ", 1)[0].split(":", 1)[0].upper()
                answer = "503 5.7.0 Error: access denied" if refused and verb != "QUIT" else script.reply(verb)
                await self._send(writer, answer)
                if verb == "QUIT" or answer.startswith("421") or answer == "CLOSE":
                    return
                if verb == "STARTTLS" and answer.startswith("220") and script.tls is not None:
                    try:
                        await writer.start_tls(script.tls)
                    except (ssl.SSLError, ConnectionError):
                        return  # the client refused our certificate
                if verb == "DATA" and answer.startswith("354"):
                    session.message = await reader.readuntil(b"\r\n.\r\n")
                    await self._send(writer, script.end_of_data)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, text: str) -> None:
        if text == "CLOSE":  # close without a reply
            return
        writer.write(text.replace("\n", "\r\n").encode() + b"\r\n")
        await writer.drain()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        server = ScriptedServer(script).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class FakeResolver:
    """A :class:`~smtplens.diagnose.dns.Resolver` from a table of (type, name) -> records."""

    def __init__(self, records: dict[tuple[str, str], list[str]], fail: bool = False) -> None:
        self.records = records
        self.fail = fail
        self.asked: list[tuple[str, str]] = []

    async def _answer(self, rdtype: str, name: str) -> Answer:
        self.asked.append((rdtype, name))
        if self.fail:
            raise DnsTempError(f"no answer for {name} {rdtype}: timeout")
        if not any(key[1] == name for key in self.records):
            return Answer((), nxdomain=True)
        return Answer(tuple(self.records.get((rdtype, name), ())))

    async def txt(self, name: str) -> Answer:
        return await self._answer("TXT", name)

    async def a(self, name: str) -> Answer:
        return await self._answer("A", name)

    async def aaaa(self, name: str) -> Answer:
        return await self._answer("AAAA", name)

    async def mx(self, name: str) -> Answer:
        return await self._answer("MX", name)

    async def ptr(self, ip: str) -> Answer:
        return await self._answer("PTR", ip)

    async def cname(self, name: str) -> Answer:
        return Answer(())


NO_DNS = FakeResolver({})


def run_probe(target: str, **kwargs: object) -> ProbeReport:
    kwargs.setdefault("resolver", NO_DNS)
    kwargs.setdefault("timeouts", FAST)
    return asyncio.run(probe(target, **kwargs))  # type: ignore[arg-type]


def names(report: ProbeReport, attempt: int = 0) -> list[str]:
    return [step.name.value for step in report.attempts[attempt].steps]


# --- certificates -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    self_signed: ssl.SSLContext
    ca_signed: ssl.SSLContext
    self_signed_der: bytes


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        san = [x509.DNSName("mx1.example.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
    return builder.sign(signer, hashes.SHA256())


def _server_context(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> ssl.SSLContext:
    cert_file, key_file = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_key, leaf_key, self_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _cert("smtplens test CA", "smtplens test CA", ca_key, ca_key, ca=True)
    leaf = _cert("mx1.example.test", "smtplens test CA", leaf_key, ca_key, ca=False)
    self_signed = _cert("mx1.example.test", "mx1.example.test", self_key, self_key, ca=False)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return Pki(
        ca_file=ca_file,
        self_signed=_server_context(directory, "self", self_signed, self_key),
        ca_signed=_server_context(directory, "leaf", leaf, leaf_key),
        self_signed_der=self_signed.public_bytes(serialization.Encoding.DER),
    )


# --- pure parts -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "port", "kind"),
    [
        ("example.test", "example.test", None, "domain"),
        ("Example.TEST.", "example.test", None, "domain"),
        ("bob@example.test", "example.test", None, "domain"),
        ("mx1.example.test:2525", "mx1.example.test", 2525, "host"),
        ("192.0.2.1", "192.0.2.1", None, "ip"),
        ("192.0.2.1:587", "192.0.2.1", 587, "ip"),
        ("2001:db8::1", "2001:db8::1", None, "ip"),
        ("[2001:db8::1]:25", "2001:db8::1", 25, "ip"),
        ("[IPv6:2001:DB8::1]", "2001:db8::1", None, "ip"),
        ("[192.0.2.1]", "192.0.2.1", None, "ip"),
    ],
)
def test_parse_target(text: str, host: str, port: int | None, kind: str) -> None:
    target = parse_target(text)
    assert (target.host, target.port, target.kind) == (host, port, kind)


@pytest.mark.parametrize(
    "text",
    ["", "  ", "exa mple.test", "host:0", "host:99999", "host:x", "[::1", "[nope]:25", "[::1]x", "-bad-.test", "a..b"],
)
def test_parse_target_refuses_bad_input(text: str) -> None:
    with pytest.raises(ProbeInputError):
        parse_target(text)


def test_reply_reader_multiline_and_limits() -> None:
    reader = ReplyReader()
    assert reader.feed(b"250-mx1.example.test\r\n") is None
    assert reader.feed(b"250-SIZE 100\r\n") is None
    reply = reader.feed(b"250 OK\r\n")
    assert reply is not None
    assert (reply.code, reply.lines) == (250, ("mx1.example.test", "SIZE 100", "OK"))
    assert reply.raw == "250-mx1.example.test\n250-SIZE 100\n250 OK" and reply.positive
    bare = reader.feed(b"354\n")  # the reader is ready for the next reply; a bare LF is tolerated
    assert bare is not None and bare.code == 354 and bare.intermediate and bare.lines == ("",)
    mixed = ReplyReader()
    mixed.feed(b"250-a\r\n")
    with pytest.raises(SmtpClientError, match="changed its code"):
        mixed.feed(b"550 b\r\n")
    with pytest.raises(SmtpClientError, match="not an SMTP reply") as garbage:
        ReplyReader().feed(b"HTTP/1.1 400 Bad Request\r\n")
    assert garbage.value.failure is Failure.PROTOCOL
    many = ReplyReader(max_lines=3)
    many.feed(b"250-a\r\n")
    many.feed(b"250-b\r\n")
    with pytest.raises(SmtpClientError, match="more than 3 lines"):
        many.feed(b"250-c\r\n")
    with pytest.raises(SmtpClientError, match="longer than 10 octets"):
        ReplyReader(max_octets=10).feed(b"250 " + b"x" * 20 + b"\r\n")


def test_parse_ehlo_capabilities() -> None:
    lines = [line[4:] for line in EHLO_TLS.split("\n")] + ["AUTH=LOGIN", "size-less"]
    caps = parse_ehlo(lines)
    assert caps.name == "mx1.example.test"
    assert caps.size == 10240000
    assert caps.auth == ("PLAIN", "LOGIN")
    assert caps.starttls and caps.pipelining and caps.eightbitmime and caps.smtputf8 and caps.enhanced_status_codes
    assert caps.has("size-less")
    assert not parse_ehlo(["mx"]).starttls
    assert parse_ehlo([]).name == ""


def test_check_command_and_dot_stuffing() -> None:
    assert check_command("MAIL FROM:<>") == b"MAIL FROM:<>\r\n"
    with pytest.raises(ValueError, match="line break"):
        check_command("RCPT TO:<a@b>\r\nDATA")
    with pytest.raises(ValueError, match="512"):
        check_command("RCPT TO:<" + "a" * 600 + "@example.test>")
    assert dot_stuff(b"a\n.b\r\n..c\n") == b"a\r\n..b\r\n...c\r\n.\r\n"


def test_timeouts_follow_rfc_5321() -> None:
    rfc = Timeouts()
    assert (rfc.greeting, rfc.mail, rfc.rcpt, rfc.data, rfc.data_block, rfc.end_of_data) == (
        300,
        300,
        300,
        120,
        180,
        600,
    )
    quick = Timeouts.uniform(2)
    assert {quick.connect, quick.greeting, quick.end_of_data, quick.quit} == {2.0}
    with pytest.raises(ValueError, match="positive"):
        Timeouts.uniform(0)


@pytest.mark.parametrize(
    ("host", "names", "ips", "match"),
    [
        ("mx.example.com", ("mx.example.com",), (), True),
        ("MX.Example.com.", ("mx.example.com",), (), True),
        ("mx.example.com", ("*.example.com",), (), True),
        ("example.com", ("*.example.com",), (), False),
        ("a.mx.example.com", ("*.example.com",), (), False),
        ("mx.example.com", ("m*.example.com",), (), False),
        ("mx.example.com", ("*.com",), (), False),
        ("mx.example.com", ("mx.*.com",), (), False),
        ("mx.example.com", ("other.example.com",), (), False),
        ("127.0.0.1", ("127.0.0.1",), (), False),
        ("127.0.0.1", (), ("127.0.0.1",), True),
        ("::1", (), ("0:0::1",), True),
    ],
)
def test_name_matches_wildcard_rules(host: str, names: tuple[str, ...], ips: tuple[str, ...], match: bool) -> None:
    assert name_matches(host, names, ips) is match


def test_parse_certificate(pki: Pki) -> None:
    cert = parse_certificate(pki.self_signed_der)
    assert cert.subject == cert.issuer == "CN=mx1.example.test"
    assert cert.dns_names == ("mx1.example.test",) and cert.ip_addresses == ("127.0.0.1",)
    assert cert.self_issued and not cert.expired(dt.datetime.now(dt.UTC))
    with pytest.raises(ValueError, match=r"."):  # cryptography's own message
        parse_certificate(b"not a certificate")


def test_probe_message() -> None:
    message = probe_message("<>", ["<bob@example.test>"], "client.example.test", now=0).decode()
    assert "From: smtplens probe <postmaster@client.example.test>\r\n" in message
    assert "To: bob@example.test\r\n" in message and "Date: Thu, 01 Jan 1970 00:00:00 -0000" in message
    assert message.endswith("\r\n")


# --- sessions ---------------------------------------------------------------------------------------------------------


def test_accepting_server(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script())
    report = run_probe(f"127.0.0.1:{server.port}", rcpt_to="bob@example.test", helo="client.example.test")
    assert names(report) == ["connect", "greeting", "ehlo", "mail", "rcpt", "quit"]
    assert server.sessions[0].commands == [
        "EHLO client.example.test",
        "MAIL FROM:<>",
        "RCPT TO:<bob@example.test>",
        "QUIT",
    ]
    attempt = report.attempts[0]
    caps = attempt.capabilities
    assert caps is not None and caps.size == 10240000 and caps.auth == ("PLAIN", "LOGIN") and caps.smtputf8
    assert not caps.starttls
    rcpt = attempt.step("rcpt")
    assert rcpt is not None and rcpt.reply is not None and rcpt.reply.enhanced == "2.1.5" and rcpt.explanation is None
    assert rcpt.reply.stage is not None and rcpt.reply.stage.value == "rcpt"
    assert all(step.elapsed >= 0 for step in attempt.steps)
    assert report.ok and report.reached is attempt
    assert report.verdict.startswith(f"127.0.0.1 port {server.port} accepts mail")
    assert [item.code for item in report.findings] == ["probe.no_starttls"]
    json.dumps(report.to_dict())


def test_421_greeting_sends_nothing(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script(greeting="421 4.7.0 mx1.example.test Error: too many connections from 127.0.0.1"))
    report = run_probe(f"127.0.0.1:{server.port}", rcpt_to="bob@example.test")
    assert names(report) == ["connect", "greeting"]
    assert server.sessions[0].commands == []
    greeting = report.attempts[0].step(StepName.GREETING)
    assert greeting is not None and greeting.explanation is not None
    assert greeting.explanation.retry and not greeting.explanation.permanent
    assert not report.ok and report.reached is not None
    assert "overloaded or is limiting your connections; retry later" in report.verdict
    assert any(item.code == "probe.greeting_4xx" for item in report.findings)


def test_554_greeting_gets_quit_only(serve: Callable[[Script], ScriptedServer]) -> None:
    text = "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org"
    server = serve(Script(greeting=text))
    report = run_probe(f"127.0.0.1:{server.port}", rcpt_to="bob@example.test")
    assert server.sessions[0].commands == ["QUIT"]
    assert names(report) == ["connect", "greeting", "quit"]
    quit_step = report.attempts[0].step("quit")
    assert quit_step is not None and quit_step.code == 221
    greeting = report.attempts[0].step("greeting")
    assert greeting is not None and greeting.explanation is not None
    assert greeting.explanation.reason == "blocklisted" and greeting.explanation.permanent
    assert "refuses your connections; check your IP address's blocklist listings" in report.verdict
    assert any(item.code == "probe.greeting_5xx" and item.is_error for item in report.findings)


def test_ehlo_refused_falls_back_to_helo(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script(replies={"EHLO": "502 5.5.2 Error: command not recognized"}))
    report = run_probe(f"127.0.0.1:{server.port}", helo="client.example.test")
    assert names(report) == ["connect", "greeting", "ehlo", "helo", "mail", "quit"]
    assert [item.code for item in report.findings] == ["probe.ehlo_refused", "probe.no_starttls"]
    assert report.ok


def test_rcpt_refused_is_explained(serve: Callable[[Script], ScriptedServer]) -> None:
    text = "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table"
    server = serve(Script(replies={"RCPT": text}))
    report = run_probe(f"127.0.0.1:{server.port}", rcpt_to=["nobody@example.test"], send=True)
    assert names(report) == ["connect", "greeting", "ehlo", "mail", "rcpt", "quit"]  # no DATA without a recipient
    assert "DATA" not in server.sessions[0].commands
    rcpt = report.attempts[0].step("rcpt")
    assert rcpt is not None and rcpt.explanation is not None and rcpt.explanation.reason == "user_unknown"
    finding = next(item for item in report.findings if item.code == "probe.rcpt_5xx")
    assert finding.is_error and "Unknown recipient" in finding.message and finding.fix
    assert "RCPT TO:<nobody@example.test> got 550 5.1.1 <nobody@example.test>: Recipient" in report.verdict


def test_421_mid_session_sends_nothing_more(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script(replies={"MAIL": "421 4.4.2 mx1.example.test Error: timeout exceeded"}))
    report = run_probe(f"127.0.0.1:{server.port}", rcpt_to="bob@example.test")
    assert names(report) == ["connect", "greeting", "ehlo", "mail"]
    assert server.sessions[0].commands[-1] == "MAIL FROM:<>"


def test_connection_closed_mid_session(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script(replies={"MAIL": "CLOSE"}))
    report = run_probe(f"127.0.0.1:{server.port}")
    mail = report.attempts[0].step("mail")
    assert mail is not None and mail.error is Failure.CLOSED and mail.reply is None
    assert names(report)[-1] == "mail"
    assert any(item.code == "probe.mail_closed" for item in report.findings) and not report.ok


def test_send_delivers_a_dot_stuffed_message(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script())
    report = run_probe(
        f"127.0.0.1:{server.port}", mail_from="alice@example.test", rcpt_to=["bob@example.test"], send=True
    )
    assert names(report) == ["connect", "greeting", "ehlo", "mail", "rcpt", "data", "end_of_data", "quit"]
    message = server.sessions[0].message
    assert b"Subject: smtplens probe test message\r\n" in message and message.endswith(b"\r\n.\r\n")
    assert b"From: smtplens probe <alice@example.test>" in message
    assert report.ok and "message accepted (250 2.0.0 Ok: queued as 4ABC)" in report.verdict


def test_source_address(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script())
    report = run_probe(f"127.0.0.1:{server.port}", source_ip="127.0.0.2")
    assert server.sessions[0].peer == "127.0.0.2"
    assert report.reached is not None


def test_timeout_when_the_server_never_answers(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script(greeting=None))
    report = run_probe(f"127.0.0.1:{server.port}", timeouts=Timeouts.uniform(0.3))
    greeting = report.attempts[0].step("greeting")
    assert greeting is not None and greeting.error is Failure.TIMEOUT and "no answer in time" in (greeting.detail or "")
    assert report.reached is None and "could not reach any mail host" in report.verdict


def test_refused_port() -> None:
    report = run_probe(f"127.0.0.1:{closed_port()}")
    connect = report.attempts[0].step("connect")
    assert connect is not None and connect.error is Failure.REFUSED and str(connect.error) == "refused"
    assert report.reached is None
    assert [item.code for item in report.findings] == ["probe.connect_refused"]


# --- STARTTLS ---------------------------------------------------------------------------------------------------------


def test_starttls_self_signed_is_described(serve: Callable[[Script], ScriptedServer], pki: Pki) -> None:
    server = serve(Script(replies={"EHLO": EHLO_TLS}, tls=pki.self_signed))
    resolver = FakeResolver({("MX", "example.test"): ["10 mx1.example.test"], ("A", "mx1.example.test"): ["127.0.0.1"]})
    report = run_probe("example.test", resolver=resolver, port=server.port, rcpt_to="bob@example.test")
    assert names(report) == ["connect", "greeting", "ehlo", "starttls", "ehlo", "mail", "rcpt", "quit"]
    tls = report.attempts[0].tls
    assert tls is not None and tls.version is not None and tls.version.startswith("TLSv1.")
    assert not tls.verified and tls.verify_error is not None and "self" in tls.verify_error
    assert tls.subject == "CN=mx1.example.test" and tls.names == ("mx1.example.test", "127.0.0.1")
    assert tls.name_match and not tls.expired and tls.not_after is not None
    assert len(server.sessions) == 2  # the verifying handshake failed; the second describes and carries on
    assert server.sessions[1].commands[:3] == [
        server.sessions[1].commands[0],
        "STARTTLS",
        server.sessions[1].commands[0],
    ]
    assert [item.code for item in report.findings] == ["probe.tls_unverified"]
    assert report.ok  # opportunistic TLS: an unverified certificate is worth knowing, not a failure
    json.dumps(report.to_dict())


def test_starttls_verified_against_a_trusted_ca(
    serve: Callable[[Script], ScriptedServer], pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    server = serve(Script(replies={"EHLO": EHLO_TLS}, tls=pki.ca_signed))
    report = run_probe(f"127.0.0.1:{server.port}", starttls=True)
    tls = report.attempts[0].tls
    assert tls is not None and tls.verified and tls.verify_error is None
    assert tls.issuer == "CN=smtplens test CA" and tls.name_match  # 127.0.0.1 is an IP entry of the certificate
    assert len(server.sessions) == 1 and report.ok and report.findings == ()


def test_required_starttls_not_offered(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script())
    report = run_probe(f"127.0.0.1:{server.port}", starttls=True, rcpt_to="bob@example.test")
    assert names(report) == ["connect", "greeting", "ehlo", "quit"]
    assert "required (--starttls) but not offered" in report.verdict
    assert any(item.code == "probe.no_starttls" and item.is_error for item in report.findings)


def test_starttls_refused_goes_on_in_the_clear(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script(replies={"EHLO": EHLO_TLS, "STARTTLS": "454 4.7.0 TLS not available due to local problem"}))
    report = run_probe(f"127.0.0.1:{server.port}")
    assert names(report) == ["connect", "greeting", "ehlo", "starttls", "mail", "quit"]
    assert [item.code for item in report.findings] == ["probe.starttls_refused"]


def test_tls_handshake_failure(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script(replies={"EHLO": EHLO_TLS}))  # 220 to STARTTLS, but the server stays in plain text
    report = run_probe(f"127.0.0.1:{server.port}", timeouts=Timeouts.uniform(1.0))
    step = report.attempts[0].step("starttls")
    assert step is not None and step.error is not None and step.error in (Failure.TLS, Failure.CLOSED, Failure.TIMEOUT)
    assert names(report)[-1] == "starttls" and not report.ok


# --- domains and MX ---------------------------------------------------------------------------------------------------


def test_mx_order_and_fallback(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script())
    resolver = FakeResolver(
        {
            ("MX", "example.test"): ["20 mx2.example.test", "10 mx1.example.test"],
            ("A", "mx1.example.test"): ["127.0.0.3"],
            ("A", "mx2.example.test"): ["127.0.0.1"],
        }
    )
    # mx1 (preference 10) is 127.0.0.3, where nothing listens (the server is bound to 127.0.0.1); mx2 answers
    report = run_probe("example.test", resolver=resolver, port=server.port)
    assert report.mx == ((10, "mx1.example.test"), (20, "mx2.example.test"))
    assert [(a.host, a.address) for a in report.attempts] == [
        ("mx1.example.test", "127.0.0.3"),
        ("mx2.example.test", "127.0.0.1"),
    ]
    assert report.attempts[0].steps[0].error is Failure.REFUSED
    assert report.reached is report.attempts[1]
    first = next(item for item in report.findings if item.code == "probe.connect_refused")
    assert first.severity.value == "warning"
    assert ("AAAA", "mx1.example.test") in resolver.asked


def test_null_mx_does_not_connect() -> None:
    resolver = FakeResolver({("MX", "nomail.test"): ["0 ."]})
    report = run_probe("nomail.test", resolver=resolver)
    assert report.null_mx and report.attempts == ()
    assert report.verdict == "nomail.test: the domain does not accept mail (RFC 7505)"
    assert [item.code for item in report.findings] == ["probe.null_mx"]
    assert ("A", "nomail.test") not in resolver.asked


def test_implicit_mx(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script())
    resolver = FakeResolver({("A", "plain.test"): ["127.0.0.1"]})
    report = run_probe("plain.test", resolver=resolver, port=server.port)
    assert report.implicit_mx and report.mx == ()
    assert report.attempts[0].host == "plain.test" and report.reached is not None


def test_missing_domain_and_dns_failure() -> None:
    report = run_probe("missing.test", resolver=FakeResolver({}))
    assert [item.code for item in report.findings] == ["probe.nxdomain"] and report.attempts == ()
    no_host = run_probe("empty.test", resolver=FakeResolver({("TXT", "empty.test"): ["v=spf1 -all"]}))
    assert [item.code for item in no_host.findings] == ["probe.no_mail_host"]
    with pytest.raises(ProbeError, match=r"could not look up example\.test"):
        run_probe("example.test", resolver=FakeResolver({}, fail=True))


def test_bad_input() -> None:
    with pytest.raises(ProbeInputError, match="--to"):
        run_probe("127.0.0.1", send=True)
    with pytest.raises(ProbeInputError, match="not a mail address"):
        run_probe("127.0.0.1", rcpt_to="bob@example.test>\r\nDATA")
    with pytest.raises(ProbeInputError, match="source-ip"):
        run_probe("127.0.0.1", source_ip="here")
    with pytest.raises(ProbeInputError, match="not of one family"):
        run_probe("[::1]:25", source_ip="127.0.0.1")


# --- the command ------------------------------------------------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["probe", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_success(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script())
    code, out, _ = invoke(f"127.0.0.1:{server.port}", "--to", "bob@example.test", "--helo", "client.example.test")
    lines = out.splitlines()
    assert code == 0, out
    assert lines[0].startswith(f"127.0.0.1 port {server.port} accepts mail")
    assert any(line.split()[:1] == ["greeting"] and "220 mx1.example.test" in line for line in lines)
    assert any("RCPT TO:<bob@example.test> → 250 2.1.5 Ok" in line for line in lines)
    assert any(line.strip().startswith("capabilities: PIPELINING, SIZE 10240000") for line in lines)
    assert " ms" in out


def test_cli_problem_shows_reason_and_action(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script(greeting="421 4.7.0 mx1.example.test Error: too many connections from 127.0.0.1"))
    code, out, _ = invoke(f"127.0.0.1:{server.port}")
    assert code == 3, out
    assert "retry later" in out.splitlines()[0]
    assert "reason: Rate limited (rate_limited, temporary)" in out
    assert "action: " in out


def test_cli_cannot_connect() -> None:
    port = closed_port()
    code, out, _ = invoke(f"127.0.0.1:{port}", "--timeout", "2")
    assert code == 1
    assert (
        out.splitlines()[0] == f"127.0.0.1: could not reach any mail host (127.0.0.1 port {port}: connection refused)"
    )
    assert any(
        line.split() == ["connect", *line.split()[1:3], "refused:", "connection", "refused"]
        for line in out.splitlines()
    )


def test_cli_timeout(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script(greeting=None))
    code, out, _ = invoke(f"127.0.0.1:{server.port}", "--timeout", "0.3")
    assert code == 1 and "timeout: greeting: no answer in time" in out


def test_cli_json(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(Script(replies={"RCPT": "450 4.2.0 <bob@example.test>: Recipient address rejected: Greylisted"}))
    code, out, _ = invoke(f"127.0.0.1:{server.port}", "--to", "bob@example.test", "--json")
    assert code == 3
    data = json.loads(out)
    assert data["ok"] is False and data["target"] == f"127.0.0.1:{server.port}"
    steps = data["attempts"][0]["steps"]
    rcpt = next(step for step in steps if step["name"] == "rcpt")
    assert rcpt["command"] == "RCPT TO:<bob@example.test>" and rcpt["reply"]["basic"] == "450"
    assert rcpt["explanation"]["reason"] == "greylisted" and rcpt["explanation"]["retry"] is True
    assert data["attempts"][0]["capabilities"]["size"] == 10240000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["exa mple.test"], "not a valid host"),
        (["127.0.0.1:25", "--port", "26"], "TARGET names port 25"),
        (["127.0.0.1", "--send"], "needs at least one recipient"),
        (["127.0.0.1", "--dns", "resolver.example"], "not an IP address"),
        (["127.0.0.1", "--source-ip", "here"], "not an IP address"),
        (["127.0.0.1", "--timeout", "0"], "--timeout"),
    ],
)
def test_cli_usage_errors(args: list[str], message: str) -> None:
    code, _, err = invoke(*args)
    assert code == 2 and message in err


def test_cli_dns_failure_exits_1() -> None:
    # a resolver on a closed port of 127.0.0.1 gives no answer at all
    code, _, err = invoke("example.test", "--dns", f"127.0.0.1:{closed_port()}", "--timeout", "1")
    assert code == 1 and "the probe could not run" in err
