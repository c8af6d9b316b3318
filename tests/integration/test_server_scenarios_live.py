"""Scenarios in a live server on 127.0.0.1 (docs/scenarios.md), driven by Python's smtplib, raw sockets, swaks and
a real Postfix as the sending MTA (``tests/integration/postfix_sender.py``; needs root, as CI has).

Each test starts a real ``SmtpServer`` with ``Pipeline([RelayPolicy(...), ScenarioPolicy(book)])`` and changes the
book while the server runs. Linux routes all of 127.0.0.0/8 to loopback, so clients pick their source address
(127.0.0.2, 127.0.0.3, …) to meet the scenarios that match by client network. Timings are only lower bounds.
"""

from __future__ import annotations

import smtplib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtplens.server.net import ServerConfig
from smtplens.server.pipeline import Pipeline
from smtplens.server.policies import RelayPolicy
from smtplens.server.protocol import SessionConfig
from smtplens.server.scenarios import ScenarioBook, ScenarioPolicy
from smtplens.server.store_model import SessionRecord
from tests.integration.conftest import need
from tests.integration.test_server_live import DOMAIN, MESSAGE, RECIPIENT, SENDER, LiveServer, read_replies, wait_for

HOST = "mx.lab.test"


class Lab:
    """A live server playing ``book``; ``client`` and ``connect`` can pick the source address."""

    def __init__(self, directory: Path) -> None:
        self.book = ScenarioBook()
        config = ServerConfig(session=SessionConfig(hostname=HOST), accepted_domains=frozenset({DOMAIN}))
        pipeline = Pipeline([RelayPolicy([DOMAIN]), ScenarioPolicy(self.book, hostname=HOST)], hostname=HOST)
        self.server = LiveServer(directory, config, pipeline.decide)

    def client(self, source: str = "127.0.0.1", timeout: float = 10) -> smtplib.SMTP:
        return smtplib.SMTP(
            self.server.host,
            self.server.port,
            local_hostname="client.example.test",
            timeout=timeout,
            source_address=(source, 0),
        )

    def connect(self, source: str = "127.0.0.1") -> socket.socket:
        return socket.create_connection((self.server.host, self.server.port), timeout=10, source_address=(source, 0))

    def session_with(self, needle: str) -> SessionRecord:
        """The recorded session whose transcript has a line containing ``needle`` (sessions are recorded when
        their connection ends, so this polls)."""
        found: list[SessionRecord] = []

        def recorded() -> bool:
            found[:] = [
                record
                for record in self.server.store.sessions(limit=100)
                if any(needle in entry[1] for entry in record.transcript)
            ]
            return bool(found)

        wait_for(recorded, f"a session transcript with {needle!r}")
        return found[0]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    made = Lab(tmp_path / "data")
    yield made
    made.server.stop()


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed the connection (the next read gives end of file)."""
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


# --- deterministic triggers ------------------------------------------------------------------------------------


def test_a_421_recipient_gets_421_and_the_server_closes(lab: Lab) -> None:
    lab.book.add({"preset": "address-421"})
    with lab.connect() as sock:
        sock.sendall(b"EHLO c.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<421@lab.test>\r\n")
        replies = read_replies(sock, 4)
        assert replies[0].startswith("220 ") and replies[2] == "250 2.1.0 Ok"
        assert replies[3] == f"421 4.7.0 {HOST} Service not available, closing transmission channel"
        assert closed_by_server(sock)
    with lab.client() as client:  # other recipients are not affected
        assert client.sendmail(SENDER, [RECIPIENT], MESSAGE) == {}
    with lab.client() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail(SENDER, [f"421@{DOMAIN}"], MESSAGE)
    assert refused.value.recipients[f"421@{DOMAIN}"][0] == 421


def test_a_greylist_address_is_deferred_once_then_accepted(lab: Lab) -> None:
    lab.book.add({"preset": "greylist-plus-address"})
    recipient = f"bob+greylist@{DOMAIN}"
    with lab.client() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail(SENDER, [recipient], MESSAGE)
    code, text = refused.value.recipients[recipient]
    assert (code, text.decode()) == (
        450,
        f"4.2.0 <{recipient}>: Recipient address rejected: Greylisted, see "
        f"http://postgrey.schweikert.ch/help/{DOMAIN}.html",
    )
    assert lab.server.messages() == []
    with lab.client() as client:
        assert client.sendmail(SENDER, [recipient], MESSAGE) == {}
    [stored] = lab.server.messages()
    assert stored.recipients == (recipient,)


def test_only_the_third_attempt_fails(lab: Lab) -> None:
    lab.book.add(
        {"id": "third", "recipient": f"flaky@{DOMAIN}", "attempts": 3, "per": "recipient", "reply": "451 4.3.0 oops"}
    )
    results: list[dict[str, tuple[int, bytes]]] = []
    for _ in range(4):
        with lab.client() as client:
            try:
                results.append(client.sendmail(SENDER, [RECIPIENT, f"flaky@{DOMAIN}"], MESSAGE))
            except smtplib.SMTPRecipientsRefused as exc:  # pragma: no cover - would be a failure below
                results.append(exc.recipients)
    assert results == [{}, {}, {f"flaky@{DOMAIN}": (451, b"4.3.0 oops")}, {}]
    assert len(lab.server.messages()) == 4
    record = lab.session_with("TO:<flaky@lab.test>")
    assert record.client_address == "127.0.0.1"


def test_greeting_554_and_421_by_client_address(lab: Lab) -> None:
    lab.book.add({"id": "ban", "stage": "connect", "client": "127.0.0.2", "reply": "554 5.7.1 go away {client}"})
    lab.book.add({"preset": "postfix-too-many-connections", "client": "127.0.0.3"})
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        lab.client("127.0.0.2")
    assert (refused.value.smtp_code, refused.value.smtp_error) == (554, b"5.7.1 go away 127.0.0.2")
    with lab.connect("127.0.0.2") as sock:  # RFC 5321 3.1: the session stays, every command but QUIT gets 503
        assert read_replies(sock, 1) == ["554 5.7.1 go away 127.0.0.2"]
        sock.sendall(b"EHLO c.test\r\nQUIT\r\n")
        replies = read_replies(sock, 2)
        assert replies[0].startswith("503 5.7.0") and replies[1].startswith("221 ")
    with lab.connect("127.0.0.3") as sock:
        assert read_replies(sock, 1) == [f"421 4.7.0 {HOST} Error: too many connections from 127.0.0.3"]
        assert closed_by_server(sock)
    with lab.client("127.0.0.4") as client:
        assert client.noop()[0] == 250


def test_a_preset_seen_by_swaks(lab: Lab) -> None:
    program = need("swaks")
    lab.book.add({"preset": "yahoo-deferred-tss04", "client": "127.0.0.5"})
    argv = [program, "--server", f"{lab.server.host}:{lab.server.port}", "--from", SENDER, "--to", RECIPIENT]
    result = subprocess.run([*argv, "-li", "127.0.0.5"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 23, result.stdout + result.stderr  # swaks: 23 = failed at MAIL
    assert "421 4.7.0 [TSS04] Messages from 127.0.0.5 temporarily deferred" in result.stdout
    result = subprocess.run([*argv, "-li", "127.0.0.6"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- connection faults -----------------------------------------------------------------------------------------


def test_a_delayed_reply_takes_at_least_the_delay(lab: Lab) -> None:
    lab.book.add({"id": "wait", "stage": "mail", "delay": 0.6})
    with lab.client() as client:
        client.ehlo()
        started = time.monotonic()
        assert client.mail(SENDER)[0] == 250
        assert time.monotonic() - started >= 0.6
        assert client.rcpt(RECIPIENT)[0] == 250
    record = lab.session_with("reply delayed 0.6 s")
    assert ("*", "reply delayed 0.6 s", "scenario:wait") in [tuple(entry) for entry in record.transcript]


def test_a_slow_link_slows_the_replies(lab: Lab) -> None:
    lab.book.add({"id": "slow", "stage": "connect", "slow": 400})
    with lab.client() as client:
        started = time.monotonic()
        code, text = client.ehlo()
        elapsed = time.monotonic() - started
    assert code == 250
    assert elapsed >= (len(text) + 40) / 400 * 0.9  # the EHLO reply's octets at 400 octets/s (lower bound)


def test_a_drop_at_the_greeting_closes_with_no_reply(lab: Lab) -> None:
    lab.book.add({"preset": "drop-at-greeting", "client": "127.0.0.7"})
    with pytest.raises(smtplib.SMTPServerDisconnected):
        lab.client("127.0.0.7")
    with lab.connect("127.0.0.7") as sock:
        assert closed_by_server(sock)
    lab.session_with("connection dropped without a reply")


def test_a_drop_after_the_final_dot_stores_nothing(lab: Lab) -> None:
    lab.book.add({"preset": "drop-after-data"})
    with lab.client() as client, pytest.raises(smtplib.SMTPServerDisconnected):
        client.sendmail(SENDER, [RECIPIENT], MESSAGE)
    assert lab.server.messages() == []


def test_a_cut_in_the_middle_of_data(lab: Lab) -> None:
    lab.book.add({"id": "cut", "cut_after": 100})
    with lab.connect() as sock:
        sock.sendall(b"EHLO c.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\n")
        replies = read_replies(sock, 5)
        assert replies[-1].startswith("354 ")
        sock.sendall(b"Subject: cut\r\n\r\n" + b"x" * 70 + b"\r\n")  # 88 octets: not yet
        sock.sendall(b"y" * 70 + b"\r\n")  # past 100 octets: the server hangs up, never answering
        assert closed_by_server(sock)
    record = lab.session_with("connection cut after")
    notes = [entry[1] for entry in record.transcript if entry[0] == "*"]
    assert any(note.startswith("connection cut after ") and note.endswith(" octets of message data") for note in notes)
    assert lab.server.messages() == []
    with lab.client() as client, pytest.raises(smtplib.SMTPServerDisconnected):
        client.sendmail(SENDER, [RECIPIENT], MESSAGE)  # a short message is cut at its end


# --- switching at run time -------------------------------------------------------------------------------------


def test_scenarios_are_added_switched_and_removed_while_the_server_runs(lab: Lab) -> None:
    with lab.client() as client:
        assert client.sendmail(SENDER, [RECIPIENT], MESSAGE) == {}
        scenario = lab.book.add({"preset": "gmail-no-such-user", "recipient": RECIPIENT})
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(SENDER, [RECIPIENT], MESSAGE)  # the same connection sees the new scenario
        code, text = refused.value.recipients[RECIPIENT]
        assert code == 550 and text.startswith(b"5.1.1 The email account that you tried to reach does not exist.")
        lab.book.set_enabled(scenario.id, False)
        assert client.sendmail(SENDER, [RECIPIENT], MESSAGE) == {}
        lab.book.set_enabled(scenario.id, True)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail(SENDER, [RECIPIENT], MESSAGE)
        assert lab.book.remove(scenario.id)
        assert client.sendmail(SENDER, [RECIPIENT], MESSAGE) == {}
    assert len(lab.server.messages()) == 3
    record = lab.session_with("does not exist")
    assert any(entry[2] == f"scenario:{scenario.id}" for entry in record.transcript)


# --- a real sender: Postfix ------------------------------------------------------------------------------------


def test_postfix_defers_on_faults_and_delivers_greylisted_mail_on_its_retry(tmp_path: Path) -> None:
    """What a real MTA makes of the faults: a drop after the final dot and a cut in the middle of DATA are broken
    connections, so Postfix keeps the message and retries (it warns it may be sent twice); greylisting by
    address is passed on Postfix's own retry."""
    from tests.integration.postfix_sender import SENDER_DOMAIN, postfix_sender

    lab = Lab(tmp_path / "data")
    try:
        lab.book.add({"id": "drop", "stage": "end_of_data", "recipient": "drop@*", "drop": True})
        lab.book.add({"id": "cut", "stage": "data", "recipient": "cut@*", "cut_after": 20})
        lab.book.add({"preset": "greylist-plus-address"})
        with postfix_sender(lab.server.port) as postfix:
            sender = f"alice@{SENDER_DOMAIN}"
            ids = {}
            for local in ("drop", "cut", "carol+greylist"):
                recipient = f"{local}@{DOMAIN}"
                lines = 20_000 if local == "cut" else 2  # the cut one is still being written when the link breaks
                body = f"From: {sender}\r\nTo: {recipient}\r\nSubject: {local}\r\n\r\n".encode()
                body += (b"x" * 76 + b"\r\n") * lines
                ids[local] = postfix.submit(sender, [recipient], body)
            dropped = postfix.wait_for_status(ids["drop"], "deferred")[0]
            assert "lost connection with 127.0.0.1[127.0.0.1] while sending end of data" in dropped.reason
            cut = postfix.wait_for_status(ids["cut"], "deferred")[0]
            assert "lost connection with 127.0.0.1[127.0.0.1] while sending" in cut.reason  # message body or end
            lab.session_with("connection cut after")
            greylisted = postfix.wait_for_status(ids["carol+greylist"], "sent")
            first = greylisted[0]
            assert first.status == "deferred" and "450 4.2.0" in first.reason and "Greylisted" in first.reason
        assert [info.recipients for info in lab.server.messages()] == [(f"carol+greylist@{DOMAIN}",)]
    finally:
        lab.server.stop()
