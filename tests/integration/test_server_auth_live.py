"""SPF, DKIM, DMARC, content and spam policies in a live server on 127.0.0.1, driven by Python's smtplib.

DNS answers come from an in-memory resolver (the client is always 127.0.0.1, which the test zones authorize or
not); the spam filter is a real SpamAssassin spamd started on a free loopback port (Debian packages ``spamd``
and ``spamassassin``), which knows GTUBE from its stock rules. The rspamd client is checked against a real
rspamd (Debian package ``rspamd``), started with the stock configuration plus a private ``LOCAL_CONFDIR`` that
moves its workers to free loopback ports and its DNS to a loopback port where nothing answers. A missing program
fails in CI and skips elsewhere. The last tests play scenarios at the AUTH stage against smtplib's ``login()`` over
STARTTLS (a self-signed certificate made in the test, ``tests/integration/selfsigned.py``).
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtplens.server.net import ServerConfig
from smtplens.server.pipeline import Pipeline, Policy
from smtplens.server.policies import (
    AuthenticationPolicy,
    ContentPolicy,
    DkimPolicy,
    DmarcPolicy,
    RelayPolicy,
    SpamdClient,
    SpamPolicy,
    SpfPolicy,
)
from smtplens.server.policies.rspamd import RspamdClient
from smtplens.server.policies.spam import GTUBE
from smtplens.server.policies.spamfilter import SpamAction
from smtplens.server.protocol import MailFrom, RcptTo, SessionConfig
from smtplens.server.scenarios import ScenarioBook, ScenarioPolicy
from smtplens.server.session import Envelope
from tests.integration.conftest import Daemon, free_port, need, start, wait_until
from tests.integration.selfsigned import TLS_HOSTNAME, Certificate, make_certificate
from tests.integration.test_server_live import DOMAIN, MESSAGE, RECIPIENT, SENDER, LiveServer, wait_for
from tests.memory_dns import MemoryResolver
from tests.test_server_auth import SELECTOR, key_pair, signed

HOST = "mx.lab.test"
RSPAMD_START_TIMEOUT = 120.0


def body(from_: str, text: str = "Hello Bob.", *, date: bool = True) -> bytes:
    date_line = "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n" if date else ""
    return (
        f"From: <{from_}>\r\nTo: <{RECIPIENT}>\r\nSubject: live\r\n{date_line}Message-ID: <live@example.org>\r\n"
        f"\r\n{text}\r\n"
    ).encode()


def resolver() -> MemoryResolver:
    _, key = key_pair()
    return MemoryResolver(
        {
            ("TXT", "example.org"): ["v=spf1 ip4:127.0.0.1 -all"],
            ("TXT", f"{SELECTOR}._domainkey.example.org"): [key],
            ("TXT", "_dmarc.example.org"): ["v=DMARC1; p=reject"],
            ("TXT", "forged.test"): ["v=spf1 ip4:192.0.2.0/24 -all"],
            ("TXT", "_dmarc.strict.test"): ["v=DMARC1; p=reject"],
        }
    )


@pytest.fixture(scope="module")
def spamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    program = need("spamd")
    home = tmp_path_factory.mktemp("spamd")
    home.chmod(0o777)
    port = free_port()
    argv = [
        program,
        f"--listen=127.0.0.1:{port}",
        "--allowed-ips=127.0.0.1",
        "--min-children=1",
        "--max-children=1",
        "--local",  # no network tests: DNS blocklists, Razor, Pyzor stay off
        "--nouser-config",
        "--syslog=stderr",
        f"--helper-home-dir={home}",
    ]
    if os.geteuid() == 0:
        argv.append("--username=nobody")
    daemon: Daemon = start("spamd", argv, home / "spamd.log")
    wait_until(daemon, lambda: _listening(port), f"listen on 127.0.0.1:{port}")
    try:
        yield port
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    program = need("rspamd")
    root = tmp_path_factory.mktemp("rspamd")
    ports = {worker: free_port() for worker in ("normal", "controller", "proxy")}
    override = root / "conf" / "override.d"
    local = root / "conf" / "local.d"
    for directory in (override, local, root / "db", root / "run", root / "log"):
        directory.mkdir(parents=True)
    for worker, port in ports.items():
        (override / f"worker-{worker}.inc").write_text(f'bind_socket = "127.0.0.1:{port}";\ncount = 1;\n')
    (override / "logging.inc").write_text('type = "console";\nlevel = "warning";\n')
    dead_dns = free_port()  # nothing listens there: every lookup fails at once, none leaves the machine
    (local / "options.inc").write_text(f'dns {{\n  nameserver = ["127.0.0.1:{dead_dns}"];\n  retransmits = 1;\n}}\n')
    for path in (root, *root.rglob("*")):
        path.chmod(0o777 if path.is_dir() else 0o644)
    argv = [program, "-f", "-c", "/etc/rspamd/rspamd.conf"]
    if os.geteuid() == 0:
        argv += ["-u", "nobody", "-g", "nogroup"]
    for name, value in (("LOCAL_CONFDIR", "conf"), ("DBDIR", "db"), ("RUNDIR", "run"), ("LOGDIR", "log")):
        argv += ["--var", f"{name}={root / value}"]
    daemon = start("rspamd", argv, root / "rspamd.log")
    deadline = time.monotonic() + RSPAMD_START_TIMEOUT  # loading the stock rules takes ~15 s on a busy machine
    while not _listening(ports["normal"]):
        daemon.assert_running()
        if time.monotonic() > deadline:
            daemon.stop()
            pytest.fail(f"rspamd did not listen within {RSPAMD_START_TIMEOUT:.0f} s:\n{daemon.log_tail()}")
        time.sleep(0.2)
    try:
        yield ports["normal"]
    finally:
        daemon.stop()


def text_of(error: smtplib.SMTPResponseException) -> str:
    """The reply text of a refusal as smtplib keeps it (enhanced code first)."""
    value = error.smtp_error
    return value.decode() if isinstance(value, bytes) else value


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def server(tmp_path: Path, spamd: int) -> Iterator[LiveServer]:
    dns = resolver()
    policies: list[Policy] = [
        RelayPolicy([DOMAIN]),
        AuthenticationPolicy(
            HOST,
            spf=SpfPolicy(dns, receiver=HOST),
            dkim=DkimPolicy(dns),
            dmarc=DmarcPolicy(dns),
        ),
        ContentPolicy(),
        SpamPolicy((), spam_filter=SpamdClient(port=spamd, timeout=30)),
    ]
    config = ServerConfig(session=SessionConfig(hostname=HOST), accepted_domains=frozenset({DOMAIN}))
    live = LiveServer(tmp_path / "data", config, Pipeline(policies, hostname=HOST, timeout=40).decide)
    yield live
    live.stop()


def test_spf_fail_is_refused_at_mail(server: LiveServer) -> None:
    with server.client() as client, pytest.raises(smtplib.SMTPSenderRefused) as refused:
        client.sendmail("someone@forged.test", [RECIPIENT], body("someone@forged.test"))
    assert refused.value.smtp_code == 550
    assert text_of(refused.value) == "5.7.23 Message rejected due to: SPF fail - not authorized"


def test_dkim_signed_mail_is_stored_with_authentication_results_first(server: LiveServer) -> None:
    with server.client() as client:
        assert client.sendmail("alice@example.org", [RECIPIENT], signed(body("alice@example.org"))) == {}
    [info] = server.messages()
    stored = server.store.message(info.queue_id)
    assert stored is not None and stored.raw is not None
    assert stored.raw.startswith(
        b"Authentication-Results: mx.lab.test;\r\n\tspf=pass smtp.mailfrom=alice@example.org;\r\n\tdkim=pass "
        b"header.d=example.org header.s=sel1 header.b="
    )
    head = stored.raw.partition(b"\r\n\r\n")[0]
    assert b"\r\n\tdmarc=pass (p=reject dis=none) header.from=example.org\r\n" in head
    assert b"\r\nReceived-SPF: pass (mx.lab.test: domain of alice@example.org designates 127.0.0.1" in head
    assert b"\r\nX-Spam-Status: No, " in head


def test_dmarc_reject_domain_is_refused_at_end_of_data(server: LiveServer) -> None:
    with server.client() as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail("bounces@example.org", [RECIPIENT], body("ceo@strict.test"))
    assert refused.value.smtp_code == 550
    assert text_of(refused.value) == (
        "5.7.1 Unauthenticated email from strict.test is not accepted due to domain's DMARC policy"
    )
    assert server.messages() == []


def test_malformed_message_is_refused_with_554_5_6_0(server: LiveServer) -> None:
    with server.client() as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail("alice@example.org", [RECIPIENT], signed(body("alice@example.org", date=False)))
    assert refused.value.smtp_code == 554
    assert text_of(refused.value) == ("5.6.0 Error: message has no Date: header field (RFC 5322 section 3.6)")


def test_gtube_is_refused_by_real_spamd(server: LiveServer) -> None:
    with server.client(timeout=60) as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail("alice@example.org", [RECIPIENT], signed(body("alice@example.org", GTUBE)))
    assert refused.value.smtp_code == 554
    text = text_of(refused.value)
    assert text.startswith("5.7.1 Message rejected as spam (") and "GTUBE" in text
    assert server.messages() == []


def test_rspamd_client_against_real_rspamd(rspamd: int) -> None:
    envelope = Envelope("127.0.0.1", "client.example.test", MailFrom("alice@example.org"), (RcptTo(RECIPIENT),))
    client = RspamdClient(port=rspamd, timeout=60)
    spam = asyncio.run(client.scan(body("alice@example.org", GTUBE), envelope))
    assert spam.action is SpamAction.REJECT
    assert "GTUBE" in spam.symbols
    ham = asyncio.run(client.scan(body("alice@example.org"), envelope))
    assert ham.action is SpamAction.ACCEPT
    assert ham.score < ham.threshold
    assert "TO_MATCH_ENVRCPT_ALL" in ham.symbols  # rspamd saw the envelope sent in the request headers


# --- scenarios at the AUTH stage (real smtplib login over STARTTLS) ----------------------------------------------

USER, PASSWORD = "alice", "s3cret pass"


class AuthLab:
    """A live server offering STARTTLS and AUTH PLAIN/LOGIN (under TLS only) that plays ``book``; the pipeline
    itself is the decision source, so the server asks about AUTH only while a scenario wants it."""

    def __init__(self, directory: Path, certificate: Certificate) -> None:
        self.book = ScenarioBook()
        self.certificate = certificate
        self.logins: list[str] = []
        session = SessionConfig(hostname=TLS_HOSTNAME, tls_available=True, credentials=self.verify)
        config = ServerConfig(
            session=session,
            accepted_domains=frozenset({DOMAIN}),
            certificate=certificate.cert,
            private_key=certificate.key,
        )
        pipeline = Pipeline([RelayPolicy([DOMAIN]), ScenarioPolicy(self.book, hostname=TLS_HOSTNAME)])
        self.server = LiveServer(directory, config, pipeline)

    def verify(self, user: str, password: str) -> bool:
        self.logins.append(user)
        return (user, password) == (USER, PASSWORD)

    def client(self) -> smtplib.SMTP:
        """A client that has said EHLO over TLS (AUTH is offered now)."""
        client = self.server.client(timeout=10)
        client.starttls(context=self.certificate.client_context())
        client.ehlo()
        assert client.has_extn("auth")
        return client

    def transcript_of(self, needle: str) -> list[tuple[str, str, str | None]]:
        """The transcript of the recorded session with a line containing ``needle`` (recorded at its end)."""
        found: list[list[tuple[str, str, str | None]]] = []

        def recorded() -> bool:
            found[:] = [
                list(record.transcript)
                for record in self.server.store.sessions(limit=100)
                if any(needle in entry[1] for entry in record.transcript)
            ]
            return bool(found)

        wait_for(recorded, f"a session transcript with {needle!r}")
        return found[0]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def auth_lab(tmp_path: Path, certificate: Certificate) -> Iterator[AuthLab]:
    lab = AuthLab(tmp_path / "data", certificate)
    yield lab
    lab.server.stop()


def test_smtplib_login_meets_an_auth_scenario_then_logs_in_once_it_is_gone(auth_lab: AuthLab) -> None:
    auth_lab.book.add({"preset": "outlook-smtp-auth-disabled"})
    with auth_lab.client() as client, pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        client.login(USER, PASSWORD)  # smtplib tries PLAIN, then LOGIN: both are refused before the exchange
    assert refused.value.smtp_code == 535
    assert text_of(refused.value).startswith("5.7.139 Authentication unsuccessful, SmtpClientAuthentication is")
    assert auth_lab.logins == []  # the scenario answered: the credentials were never checked
    transcript = auth_lab.transcript_of("SmtpClientAuthentication")
    assert ("C", "AUTH PLAIN ****", None) in transcript
    refusals = [entry for entry in transcript if entry[1].startswith("535 ")]
    assert refusals and all(entry[2] == "scenario:outlook-smtp-auth-disabled" for entry in refusals)

    auth_lab.book.remove("outlook-smtp-auth-disabled")
    with auth_lab.client() as client:
        assert client.login(USER, PASSWORD)[0] == 235
        assert client.sendmail(SENDER, [RECIPIENT], MESSAGE) == {}
    assert auth_lab.logins == [USER]
    [info] = auth_lab.server.messages()
    assert info.auth_identity == USER


def test_a_deferring_auth_scenario_gives_smtplib_a_454(auth_lab: AuthLab) -> None:
    auth_lab.book.add({"id": "auth-later", "stage": "auth", "outcome": "defer", "client": "127.0.0.1"})
    with auth_lab.client() as client, pytest.raises(smtplib.SMTPAuthenticationError) as deferred:
        client.login(USER, PASSWORD)
    assert (deferred.value.smtp_code, text_of(deferred.value)) == (454, "4.7.0 Temporary authentication failure")
