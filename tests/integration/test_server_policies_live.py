"""The policy pipeline in a live server on 127.0.0.1, driven by Python's smtplib (docs/server.md).

Greylisting and rate limits run on a fake clock the test moves forward; the DNSBL uses an in-memory resolver.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.net import ServerConfig
from smtplens.server.pipeline import Pipeline, Policy
from smtplens.server.policies import (
    AccessPolicy,
    AccessRule,
    DnsblPolicy,
    GreylistPolicy,
    RateLimit,
    RateLimitPolicy,
    RelayPolicy,
)
from smtplens.server.protocol import SessionConfig
from smtplens.server.session import Context
from tests.integration.test_server_live import DOMAIN, MESSAGE, RECIPIENT, SENDER, LiveServer
from tests.memory_dns import MemoryResolver


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Start = list[LiveServer]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Start]:
    started: Start = []
    yield started
    for server in started:
        server.stop()


def serve(started: Start, tmp_path: Path, *policies: Policy) -> LiveServer:
    config = ServerConfig(session=SessionConfig(hostname="mx.lab.test"), accepted_domains=frozenset({DOMAIN}))
    pipeline = Pipeline([RelayPolicy([DOMAIN]), *policies], hostname="mx.lab.test")
    server = LiveServer(tmp_path / f"data{len(started)}", config, pipeline.decide)
    started.append(server)
    return server


def test_greylist_first_attempt_451_and_the_retry_after_the_delay_is_accepted(servers: Start, tmp_path: Path) -> None:
    clock = Clock()
    server = serve(servers, tmp_path, GreylistPolicy(300, clock=clock))
    with server.client() as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(SENDER, [RECIPIENT], MESSAGE)
        code, text = refused.value.recipients[RECIPIENT]
        assert code == 451
        assert text.decode() == (
            f"4.7.1 <{RECIPIENT}>: Recipient address rejected: Greylisted, please try again in 300 seconds"
        )
    assert server.messages() == []
    clock.now += 301
    with server.client() as client:
        assert client.sendmail(SENDER, [RECIPIENT], MESSAGE) == {}
    assert len(server.messages()) == 1


def test_rate_limits_give_450_at_mail_and_421_at_connect(servers: Start, tmp_path: Path) -> None:
    clock = Clock()
    limits = [RateLimit("messages", "client", 1, 60), RateLimit("connections", "client", 2, 60)]
    server = serve(servers, tmp_path, RateLimitPolicy(limits, hostname="mx.lab.test", clock=clock))
    with server.client() as client:
        assert client.sendmail(SENDER, [RECIPIENT], MESSAGE) == {}
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(SENDER, [RECIPIENT], MESSAGE)
        assert refused.value.smtp_code == 450
        assert refused.value.smtp_error.decode() == "4.7.1 Error: too much mail from 127.0.0.1"
    with server.client() as client:
        assert client.noop()[0] == 250
    with pytest.raises(smtplib.SMTPConnectError) as closed:
        server.client()
    assert closed.value.smtp_code == 421
    assert closed.value.smtp_error == b"4.7.0 mx.lab.test Error: too many connections from 127.0.0.1"
    clock.now += 61
    with server.client() as client:
        assert client.sendmail(SENDER, [RECIPIENT], MESSAGE) == {}


def test_access_lists(servers: Start, tmp_path: Path) -> None:
    access = AccessPolicy(
        senders=[AccessRule("*@spam.test")],
        recipients=[AccessRule("gone@*", Decision.reject(code="550", enhanced="5.1.1", text="User unknown"))],
    )
    server = serve(servers, tmp_path, access)
    with server.client() as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as sender:
            client.sendmail("eve@spam.test", [RECIPIENT], MESSAGE)
        assert sender.value.smtp_code == 554
        assert b"Sender address rejected: Access denied" in sender.value.smtp_error
        client.rset()
        assert client.sendmail(SENDER, [RECIPIENT, f"gone@{DOMAIN}"], MESSAGE) == {
            f"gone@{DOMAIN}": (550, b"5.1.1 User unknown")
        }
    blocked = serve(servers, tmp_path, AccessPolicy(clients=[AccessRule("127.0.0.0/8")]))
    with pytest.raises(smtplib.SMTPConnectError) as greeting:
        blocked.client()
    assert greeting.value.smtp_code == 554
    assert b"Client host rejected: Access denied" in greeting.value.smtp_error


class Crash:
    name = "crash"
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.RCPT})

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        raise RuntimeError("policy bug")


def test_a_crashing_policy_gives_451_430(servers: Start, tmp_path: Path) -> None:
    server = serve(servers, tmp_path, Crash())
    with server.client() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail(SENDER, [RECIPIENT], MESSAGE)
    assert refused.value.recipients[RECIPIENT] == (451, b"4.3.0 Error: policy failure, try again later")


def test_dnsbl_at_the_greeting_and_at_rcpt(servers: Start, tmp_path: Path) -> None:
    resolver = MemoryResolver(
        {
            ("A", "1.0.0.127.bl.lab.test"): ["127.0.0.2"],
            ("TXT", "1.0.0.127.bl.lab.test"): ["Blocked, see https://bl.lab.test/127.0.0.1"],
            ("A", "1.0.0.127.broken.lab.test"): ["127.0.0.1"],
        }
    )
    expected = (
        b"5.7.1 Service unavailable; Client host [127.0.0.1] blocked using bl.lab.test; "
        b"Blocked, see https://bl.lab.test/127.0.0.1"
    )
    greeting = serve(servers, tmp_path, DnsblPolicy(["bl.lab.test"], resolver))
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        greeting.client()
    assert refused.value.smtp_code == 554
    assert refused.value.smtp_error == expected
    at_rcpt = serve(servers, tmp_path, DnsblPolicy(["bl.lab.test"], resolver, stage=Stage.RCPT))
    with at_rcpt.client() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as rcpt:
        client.sendmail(SENDER, [RECIPIENT], MESSAGE)
    assert rcpt.value.recipients[RECIPIENT] == (554, expected)
    error_answer = serve(servers, tmp_path, DnsblPolicy(["broken.lab.test"], resolver))
    with error_answer.client() as client:
        assert client.sendmail(SENDER, [RECIPIENT], MESSAGE) == {}
