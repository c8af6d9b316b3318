"""The policy pipeline and the built-in policies (``smtplens.server.pipeline``, ``smtplens.server.policies``)."""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

import pytest
from click.testing import CliRunner

from smtplens.cli.serve import apply_flags, parse_rate, serve_cmd
from smtplens.diagnose.dns import DnsTempError
from smtplens.model import Stage
from smtplens.server.assemble import assemble, build_policies
from smtplens.server.config import ServeSettings
from smtplens.server.decisions import Decision, DecisionError, Outcome, reply_for
from smtplens.server.pipeline import Pipeline
from smtplens.server.policies import (
    AccessPolicy,
    AccessRule,
    DnsblPolicy,
    GreylistPolicy,
    RateLimit,
    RateLimitPolicy,
    RelayPolicy,
)
from smtplens.server.protocol import MailFrom, RcptTo
from smtplens.server.session import Context, Envelope
from tests.memory_dns import MemoryResolver


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ctx(ip: str = "192.0.2.1", sender: str | None = "a@sender.test", rcpt: str | None = None) -> Context:
    mail = MailFrom(sender) if sender is not None else None
    return Context(Envelope(ip, "client.test", mail), RcptTo(rcpt) if rcpt else None)


def run(policy: object, stage: Stage, context: Context) -> Decision | None:
    result: Decision | None = asyncio.run(policy.check(stage, context))  # type: ignore[attr-defined]
    return result


def text(stage: Stage, decision: Decision | None) -> str | None:
    if decision is None:
        return None
    reply = reply_for(stage, decision)
    return f"{reply.basic} {reply.enhanced} {' '.join(reply.text)}" if reply else "accept"


# --- pipeline ------------------------------------------------------------------------------------------------


class Fixed:
    def __init__(self, name: str, decision: Decision | None, stages: frozenset[Stage] = frozenset({Stage.RCPT})):
        self.name = name
        self.stages = stages
        self.decision = decision
        self.calls = 0

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        self.calls += 1
        return self.decision


class Crash:
    name = "crash"
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.CONNECT, Stage.RCPT})

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        raise RuntimeError("boom")


class Slow:
    name = "slow"
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.MAIL})
    timeout = 0.05

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        await asyncio.sleep(5)
        return None


def test_pipeline_first_non_accept_wins_and_names_the_policy() -> None:
    first = Fixed("first", Decision.accept())
    second = Fixed("second", Decision.defer())
    third = Fixed("third", Decision.reject())
    pipeline = Pipeline([first, second, third])
    decision = asyncio.run(pipeline.decide(Stage.RCPT, ctx(rcpt="b@x.test")))
    assert decision.outcome is Outcome.DEFER
    assert decision.policy == "second"
    assert (first.calls, second.calls, third.calls) == (1, 1, 0)


def test_pipeline_runs_only_the_stage_policies_and_accepts_by_default() -> None:
    rcpt_only = Fixed("r", Decision.reject())
    pipeline = Pipeline([rcpt_only, Fixed("none", None)])
    assert asyncio.run(pipeline.decide(Stage.MAIL, ctx())).outcome is Outcome.ACCEPT
    assert rcpt_only.calls == 0
    assert [p.name for p in pipeline.for_stage(Stage.RCPT)] == ["r", "none"]


def test_pipeline_crash_gives_451_430_and_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    later = Fixed("later", Decision.reject())
    pipeline = Pipeline([Crash(), later])
    with caplog.at_level(logging.ERROR, "smtplens.server.pipeline"):
        decision = asyncio.run(pipeline.decide(Stage.RCPT, ctx(rcpt="b@x.test")))
    assert text(Stage.RCPT, decision) == "451 4.3.0 Error: policy failure, try again later"
    assert later.calls == 0
    assert "crash" in caplog.text and "boom" in caplog.text
    greeting = asyncio.run(pipeline.decide(Stage.CONNECT, ctx()))
    assert greeting.disconnect and text(Stage.CONNECT, greeting) is not None
    assert text(Stage.CONNECT, greeting).startswith("421 4.3.0")  # type: ignore[union-attr]


def test_pipeline_timeout_gives_451(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "smtplens.server.pipeline"):
        decision = asyncio.run(Pipeline([Slow()], timeout=30).decide(Stage.MAIL, ctx()))
    assert text(Stage.MAIL, decision) == "451 4.3.0 Error: policy failure, try again later"
    assert "timed out" in caplog.text


def test_pipeline_rejects_a_bad_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Pipeline([], timeout=0)


# --- relay ---------------------------------------------------------------------------------------------------


def test_relay_accepts_configured_domains_recipients_and_postmaster() -> None:
    relay = RelayPolicy(["Lab.Test."], ["ops@other.test"])
    for rcpt in ("bob@lab.test", "BOB@LAB.TEST", "ops@other.test", "postmaster"):
        decision = run(relay, Stage.RCPT, ctx(rcpt=rcpt))
        assert decision is not None and decision.outcome is Outcome.ACCEPT
    refused = run(relay, Stage.RCPT, ctx(rcpt="x@elsewhere.test"))
    assert text(Stage.RCPT, refused) == "554 5.7.1 <x@elsewhere.test>: Relay access denied"
    assert run(relay, Stage.MAIL, ctx()) is None


def test_relay_reply_can_be_a_deferral() -> None:
    relay = RelayPolicy([], reply=Decision.defer(code="454", enhanced="4.7.1", text="Relay access denied"))
    assert text(Stage.RCPT, run(relay, Stage.RCPT, ctx(rcpt="x@y.test"))) == "454 4.7.1 Relay access denied"


# --- access --------------------------------------------------------------------------------------------------


def test_access_client_networks() -> None:
    policy = AccessPolicy(
        clients=[
            AccessRule("192.0.2.7", Decision.accept()),
            AccessRule("192.0.2.0/24"),
            AccessRule("2001:db8::/32", Decision.defer(code="421", disconnect=True, text="go away")),
        ]
    )
    assert policy.stages == {Stage.CONNECT}
    assert text(Stage.CONNECT, run(policy, Stage.CONNECT, ctx("192.0.2.7"))) == "accept"
    assert (
        text(Stage.CONNECT, run(policy, Stage.CONNECT, ctx("192.0.2.9")))
        == "554 5.7.1 <unknown[192.0.2.9]>: Client host rejected: Access denied"
    )
    assert text(Stage.CONNECT, run(policy, Stage.CONNECT, ctx("2001:db8::1"))) == "421 4.3.2 go away"
    assert run(policy, Stage.CONNECT, ctx("198.51.100.1")) is None
    assert run(policy, Stage.CONNECT, ctx("unknown")) is None


def test_access_sender_and_recipient_patterns() -> None:
    policy = AccessPolicy(
        senders=[AccessRule("*@spam.test"), AccessRule("<>", Decision.defer(text="no bounces now"))],
        recipients=[AccessRule("abuse@*", Decision.reject(code="550", enhanced="5.1.1", text="no such user"))],
        client_stage=Stage.RCPT,
    )
    assert policy.stages == {Stage.MAIL, Stage.RCPT}
    assert (
        text(Stage.MAIL, run(policy, Stage.MAIL, ctx(sender="Eve@SPAM.test")))
        == "554 5.7.1 <Eve@SPAM.test>: Sender address rejected: Access denied"
    )
    assert text(Stage.MAIL, run(policy, Stage.MAIL, ctx(sender=""))) == "450 4.7.1 no bounces now"
    assert run(policy, Stage.MAIL, ctx(sender="a@good.test")) is None
    assert text(Stage.RCPT, run(policy, Stage.RCPT, ctx(rcpt="abuse@lab.test"))) == "550 5.1.1 no such user"
    with pytest.raises(ValueError, match="cannot be checked"):
        AccessPolicy(client_stage=Stage.DATA)


# --- rate limits ---------------------------------------------------------------------------------------------


def test_rate_limit_connections_per_client_with_a_sliding_window() -> None:
    clock = Clock()
    policy = RateLimitPolicy([RateLimit("connections", "client", 2, 60)], hostname="mx.lab.test", clock=clock)
    assert run(policy, Stage.CONNECT, ctx()) is None
    assert run(policy, Stage.CONNECT, ctx()) is None
    refused = run(policy, Stage.CONNECT, ctx())
    assert refused is not None and refused.disconnect
    assert text(Stage.CONNECT, refused) == "421 4.7.0 mx.lab.test Error: too many connections from 192.0.2.1"
    assert run(policy, Stage.CONNECT, ctx("192.0.2.2")) is None  # another client
    clock.now += 60
    assert run(policy, Stage.CONNECT, ctx()) is None


def test_rate_limit_messages_and_recipients() -> None:
    clock = Clock()
    policy = RateLimitPolicy(
        [
            RateLimit("messages", "sender_domain", 1, 10),
            RateLimit("recipients", "client", 2, 10),
            RateLimit("messages", "recipient_domain", 1, 10),
        ],
        clock=clock,
    )
    assert policy.stages == {Stage.MAIL, Stage.RCPT}
    assert run(policy, Stage.MAIL, ctx()) is None
    assert text(Stage.MAIL, run(policy, Stage.MAIL, ctx(ip="192.0.2.9"))) == (
        "450 4.7.1 Error: too much mail from sender.test"
    )
    assert run(policy, Stage.RCPT, ctx(rcpt="a@one.test")) is None
    # a second recipient of the same message and domain is not another message for that domain
    same_message = Context(
        Envelope("192.0.2.1", "c", MailFrom("a@s.test"), (RcptTo("a@one.test"),)), RcptTo("b@one.test")
    )
    assert run(policy, Stage.RCPT, same_message) is None
    assert text(Stage.RCPT, run(policy, Stage.RCPT, ctx(rcpt="c@two.test"))) == (
        "450 4.7.1 Error: too many recipients from 192.0.2.1"
    )
    assert text(Stage.RCPT, run(policy, Stage.RCPT, ctx(ip="192.0.2.8", rcpt="d@one.test"))) == (
        "450 4.7.1 Error: too much mail from one.test"
    )
    clock.now += 11
    assert run(policy, Stage.MAIL, ctx()) is None


def test_rate_limit_rejects_bad_rules() -> None:
    with pytest.raises(ValueError, match="per client only"):
        RateLimit("connections", "sender_domain", 1, 1)
    with pytest.raises(ValueError, match="positive"):
        RateLimit("messages", "client", 0, 1)


# --- greylisting ---------------------------------------------------------------------------------------------


def test_greylist_defers_then_accepts_the_retry_and_whitelists() -> None:
    clock = Clock()
    policy = GreylistPolicy(300, retry_window=3600, lifetime=86400, clock=clock)
    first = run(policy, Stage.RCPT, ctx(rcpt="bob@lab.test"))
    assert text(Stage.RCPT, first) == (
        "451 4.7.1 <bob@lab.test>: Recipient address rejected: Greylisted, please try again in 300 seconds"
    )
    clock.now += 100.5
    assert "try again in 200 seconds" in str(text(Stage.RCPT, run(policy, Stage.RCPT, ctx(rcpt="bob@lab.test"))))
    clock.now += 200
    # the retry comes from another address of the same /24
    retry = run(policy, Stage.RCPT, ctx("192.0.2.200", rcpt="Bob@Lab.test"))
    assert retry is not None and retry.outcome is Outcome.ACCEPT
    clock.now += 80000
    assert text(Stage.RCPT, run(policy, Stage.RCPT, ctx(rcpt="bob@lab.test"))) == "accept"
    # other triplets are greylisted on their own
    assert text(Stage.RCPT, run(policy, Stage.RCPT, ctx("198.51.100.1", rcpt="bob@lab.test"))).startswith("451")  # type: ignore[union-attr]
    assert text(Stage.RCPT, run(policy, Stage.RCPT, ctx(sender="z@z.test", rcpt="bob@lab.test"))).startswith("451")  # type: ignore[union-attr]


def test_greylist_retry_window_and_lifetime_expire() -> None:
    clock = Clock()
    policy = GreylistPolicy(60, retry_window=600, lifetime=1000, clock=clock)
    assert run(policy, Stage.RCPT, ctx(rcpt="a@lab.test")) is not None
    clock.now += 700  # too late: starts over
    assert "60 seconds" in str(text(Stage.RCPT, run(policy, Stage.RCPT, ctx(rcpt="a@lab.test"))))
    clock.now += 60
    assert text(Stage.RCPT, run(policy, Stage.RCPT, ctx(rcpt="a@lab.test"))) == "accept"
    clock.now += 1001  # whitelist expired
    assert str(text(Stage.RCPT, run(policy, Stage.RCPT, ctx(rcpt="a@lab.test")))).startswith("451 4.7.1")
    assert policy.network("2001:db8:1:2:3::9") == "2001:db8:1:2::/64"
    assert run(policy, Stage.MAIL, ctx()) is None


# --- DNSBL ---------------------------------------------------------------------------------------------------


def listed_resolver() -> MemoryResolver:
    return MemoryResolver(
        {
            ("A", "2.2.0.192.bl.lab.test"): ["127.0.0.2"],
            ("TXT", "2.2.0.192.bl.lab.test"): ["Listed, see https://bl.lab.test/q/192.0.2.2"],
            ("A", "3.2.0.192.bl.lab.test"): ["127.0.0.1"],  # an error answer
            ("A", "4.2.0.192.bl.lab.test"): DnsTempError("SERVFAIL"),
            ("A", "5.2.0.192.other.test"): ["127.0.0.4"],
        }
    )


def test_dnsbl_blocks_a_listed_client_with_the_txt() -> None:
    resolver = listed_resolver()
    policy = DnsblPolicy(["bl.lab.test", "other.test"], resolver)
    assert text(Stage.CONNECT, run(policy, Stage.CONNECT, ctx("192.0.2.2"))) == (
        "554 5.7.1 Service unavailable; Client host [192.0.2.2] blocked using bl.lab.test; "
        "Listed, see https://bl.lab.test/q/192.0.2.2"
    )
    assert text(Stage.CONNECT, run(policy, Stage.CONNECT, ctx("192.0.2.5"))) == (
        "554 5.7.1 Service unavailable; Client host [192.0.2.5] blocked using other.test"
    )
    queries = len(resolver.queries)
    run(policy, Stage.CONNECT, ctx("192.0.2.2"))
    assert len(resolver.queries) == queries  # cached


def test_dnsbl_errors_never_block_and_rcpt_stage() -> None:
    policy = DnsblPolicy(["bl.lab.test"], listed_resolver(), stage=Stage.RCPT)
    assert policy.stages == {Stage.RCPT}
    for ip in ("192.0.2.3", "192.0.2.4", "192.0.2.9", "unknown"):
        assert run(policy, Stage.RCPT, ctx(ip, rcpt="b@lab.test")) is None
    assert str(text(Stage.RCPT, run(policy, Stage.RCPT, ctx("192.0.2.2", rcpt="b@lab.test")))).startswith("554 5.7.1")
    assert run(policy, Stage.CONNECT, ctx("192.0.2.2")) is None
    with pytest.raises(ValueError, match="at least one"):
        DnsblPolicy([], listed_resolver())
    with pytest.raises(ValueError, match="greeting"):
        DnsblPolicy(["z"], listed_resolver(), stage=Stage.MAIL)


# --- serve wiring --------------------------------------------------------------------------------------------


def test_serve_flags_build_the_pipeline_with_relay_first() -> None:
    flags = {
        "domains": ("Lab.test",),
        "greylist": 60.0,
        "dnsbl": ("bl.lab.test",),
        "dnsbl_at": "rcpt",
        "dns": "127.0.0.1:5353",
        "rate_limit": "5/60",
    }
    settings = apply_flags(ServeSettings(), flags)
    assert settings.smtp.accept_domains == frozenset({"lab.test"}) and settings.dns == ("127.0.0.1", 5353)
    policies = build_policies(settings, lambda server: MemoryResolver({}))
    assert [p.name for p in policies] == ["scenario", "relay", "ratelimit", "dnsbl", "greylist"]
    plain = assemble(apply_flags(ServeSettings(), {"domains": ("lab.test",)}))
    assert [p.name for p in plain.pipeline.policies] == ["scenario", "relay"]
    refused = asyncio.run(plain.pipeline.decide(Stage.RCPT, ctx(rcpt="x@other.test")))
    assert refused.outcome is Outcome.REJECT


def test_parse_rate_and_serve_options() -> None:
    assert parse_rate("10/60") == (10, 60.0)
    for bad in ("10", "0/60", "a/b", "5/0"):
        with pytest.raises(ValueError, match="N/SECONDS"):
            parse_rate(bad)
    result = CliRunner().invoke(serve_cmd, ["--help"])
    for option in ("--greylist", "--dnsbl", "--dnsbl-at", "--dns", "--rate-limit", "--config", "--http"):
        assert option in result.output
    result = CliRunner().invoke(serve_cmd, ["--rate-limit", "x"])
    assert result.exit_code == 2 and "N/SECONDS" in result.output and "--rate-limit" in result.output
    result = CliRunner().invoke(serve_cmd, ["--smtp", "nowhere"])
    assert result.exit_code == 2 and "--smtp" in result.output


class _AddsHeader:
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.END_OF_DATA})

    def __init__(self, name: str) -> None:
        self.name = name

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        return Decision.accept(headers=(f"X-{self.name}: yes",))


def test_accepting_decisions_add_headers_in_order() -> None:
    pipeline = Pipeline([_AddsHeader("A"), _AddsHeader("B")])
    decision = asyncio.run(pipeline.decide(Stage.END_OF_DATA, Context(Envelope("127.0.0.1"))))
    assert decision.headers == ("X-A: yes", "X-B: yes")
    assert Decision.accept(headers=("X-A: one\r\n\ttwo",)).headers


@pytest.mark.parametrize("header", ["no colon here", "X-A: one\r\nX-B: two", "X A: b", ": empty name"])
def test_decision_rejects_malformed_header_fields(header: str) -> None:
    with pytest.raises(DecisionError):
        Decision.accept(headers=(header,))


def test_only_an_acceptance_adds_header_fields() -> None:
    with pytest.raises(DecisionError):
        Decision(Outcome.REJECT, headers=("X-A: b",))
