"""SPF, DKIM and DMARC policies and their Authentication-Results field (``smtplens.server.policies``).

DNS is an in-memory resolver; DKIM signatures are made by dkimpy with a key generated for the test run and
published in that resolver.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable
from functools import cache
from typing import TypeVar

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from smtplens.diagnose.dns import DnsTempError
from smtplens.diagnose.spf import SpfOutcome
from smtplens.model import Stage
from smtplens.server.decisions import Decision, Outcome, reply_for
from smtplens.server.pipeline import Pipeline
from smtplens.server.policies import AuthenticationPolicy, DkimPolicy, DmarcPolicy, SpfPolicy, spf_actions
from smtplens.server.policies.authres import MethodResult, authentication_results, header_value
from smtplens.server.policies.dkim import DkimOutcome, verify_signatures
from smtplens.server.policies.dmarc import DmarcOutcome, aligned, discover
from smtplens.server.policies.headers import author, header_fields
from smtplens.server.policies.orgdomain import organizational_domain
from smtplens.server.policies.spf import received_spf
from smtplens.server.protocol import MailFrom, MessageBuffer, RcptTo
from smtplens.server.session import Context, Envelope
from tests.memory_dns import Data, MemoryResolver

T = TypeVar("T")

CLIENT = "192.0.2.10"
OTHER = "198.51.100.7"
HELO = "mail.example.org"
SELECTOR = "sel1"
MX = "mx.lab.test"


def run(job: Awaitable[T]) -> T:
    async def wrapper() -> T:
        return await job

    return asyncio.run(wrapper())


@cache
def key_pair() -> tuple[bytes, str]:
    """A fresh 2048-bit RSA key: the PKCS#1 PEM dkimpy signs with, and the DNS record that publishes it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


def message(from_: str = "alice@example.org", body: str = "Hello Bob.\r\n", extra: str = "") -> bytes:
    return (
        f"From: Alice <{from_}>\r\nTo: bob@lab.test\r\nSubject: test\r\n"
        f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n{extra}\r\n{body}"
    ).encode()


def signed(data: bytes, domain: str = "example.org") -> bytes:
    private, _ = key_pair()
    signature: bytes = dkim.sign(
        data, SELECTOR.encode(), domain.encode(), private, include_headers=[b"from", b"to", b"subject", b"date"]
    )
    return signature + data


def zone() -> Data:
    _, record = key_pair()
    data: Data = {
        ("TXT", "example.org"): ["v=spf1 ip4:192.0.2.0/24 -all"],
        ("TXT", "bounce.example.org"): ["v=spf1 ip4:192.0.2.0/24 -all"],
        ("TXT", f"{SELECTOR}._domainkey.example.org"): [record],
        ("TXT", f"{SELECTOR}._domainkey.other.test"): [record],
        ("TXT", "_dmarc.example.org"): ["v=DMARC1; p=reject; rua=mailto:d@example.org"],
        ("TXT", "other.test"): ["v=spf1 -all"],
    }
    return data


def envelope(sender: str = "alice@example.org", ip: str = CLIENT, helo: str = HELO) -> Envelope:
    return Envelope(ip, helo, MailFrom(sender), (RcptTo("bob@lab.test"),))


def eod(env: Envelope, data: bytes) -> Context:
    buffer = MessageBuffer(0)
    buffer.add(data)
    return Context(env, None, data, buffer.facts())


def auth(
    resolver: MemoryResolver, *, spf: dict[SpfOutcome, Decision | None] | None = None, **dmarc: object
) -> AuthenticationPolicy:
    return AuthenticationPolicy(
        MX,
        spf=SpfPolicy(resolver, actions=spf or spf_actions(fail="accept"), receiver=MX),
        dkim=DkimPolicy(resolver),
        dmarc=DmarcPolicy(resolver, sample=lambda: 0.0, **dmarc),  # type: ignore[arg-type]
    )


def reply(stage: Stage, decision: Decision | None) -> str:
    assert decision is not None
    answer = reply_for(stage, decision)
    return f"{answer.basic} {answer.enhanced} {' '.join(answer.text)}" if answer else "accept"


def end(policy: AuthenticationPolicy, env: Envelope, data: bytes) -> Decision:
    decision = run(policy.check(Stage.END_OF_DATA, eod(env, data)))
    assert decision is not None
    return decision


# --- SPF -------------------------------------------------------------------------------------------------------


def test_spf_fail_is_refused_at_mail_with_rfc7372_code() -> None:
    policy = SpfPolicy(MemoryResolver(zone()))
    decision = run(policy.check(Stage.MAIL, Context(envelope(ip=OTHER))))
    assert reply(Stage.MAIL, decision) == "550 5.7.23 Message rejected due to: SPF fail - not authorized"
    assert decision is not None and decision.policy == "spf"


def test_spf_fail_carries_the_domains_explanation() -> None:
    data = zone()
    data[("TXT", "example.org")] = ["v=spf1 -all exp=why.example.org"]
    data[("TXT", "why.example.org")] = ["%{i} is not one of %{d}'s mail servers"]
    decision = run(SpfPolicy(MemoryResolver(data)).check(Stage.MAIL, Context(envelope())))
    assert reply(Stage.MAIL, decision).endswith(
        "SPF fail - not authorized: 192.0.2.10 is not one of example.org's mail servers"
    )


def test_spf_pass_none_and_softfail_are_accepted_by_default() -> None:
    data = zone()
    data[("TXT", "soft.test")] = ["v=spf1 ~all"]
    policy = SpfPolicy(MemoryResolver(data))
    for sender in ("alice@example.org", "x@nospf.test", "x@soft.test"):
        assert run(policy.check(Stage.MAIL, Context(envelope(sender)))) is None


def test_spf_temperror_defers_and_permerror_follows_configuration() -> None:
    data = zone()
    data[("TXT", "broken.test")] = DnsTempError("SERVFAIL")
    data[("TXT", "bad.test")] = ["v=spf1 ip4:300.1.1.1 -all"]
    policy = SpfPolicy(MemoryResolver(data))
    temp = run(policy.check(Stage.MAIL, Context(envelope("x@broken.test"))))
    assert reply(Stage.MAIL, temp) == "451 4.4.3 SPF temporary error - DNS lookup failed, try again later"
    assert run(policy.check(Stage.MAIL, Context(envelope("x@bad.test")))) is None
    strict = SpfPolicy(MemoryResolver(data), actions=spf_actions(permerror="reject", softfail="defer"))
    perm = run(strict.check(Stage.MAIL, Context(envelope("x@bad.test"))))
    assert reply(Stage.MAIL, perm) == "550 5.7.24 SPF permanent error - the sender's SPF record is invalid"


def test_spf_null_sender_checks_the_helo_identity() -> None:
    data = zone()
    data[("TXT", HELO)] = ["v=spf1 ip4:192.0.2.10 -all"]
    policy = SpfPolicy(MemoryResolver(data))
    check = run(policy.evaluate(envelope("")))
    assert check is not None
    assert (check.identity, check.sender, check.outcome) == ("helo", "postmaster@mail.example.org", SpfOutcome.PASS)
    assert check.method_result().clause() == "spf=pass smtp.helo=mail.example.org"


def test_spf_results_are_cached_per_client_helo_and_sender_and_bounded() -> None:
    resolver = MemoryResolver(zone())
    policy = SpfPolicy(resolver, cache_size=2)
    run(policy.evaluate(envelope()))
    queries = len(resolver.queries)
    run(policy.evaluate(envelope()))
    assert len(resolver.queries) == queries
    other = run(policy.evaluate(envelope(ip=OTHER)))
    assert other is not None and other.outcome is SpfOutcome.FAIL
    run(policy.evaluate(envelope("bob@bounce.example.org")))
    run(policy.evaluate(envelope()))
    assert len(resolver.queries) > queries + 2  # the first entry was pushed out and checked again


def test_spf_skips_a_client_address_that_is_not_an_ip() -> None:
    assert run(SpfPolicy(MemoryResolver({})).check(Stage.MAIL, Context(envelope(ip="unix")))) is None


def test_received_spf_field() -> None:
    check = run(SpfPolicy(MemoryResolver(zone())).evaluate(envelope()))
    assert check is not None
    assert received_spf(check, MX) == (
        "Received-SPF: pass (mx.lab.test: domain of alice@example.org designates 192.0.2.10 as permitted sender)"
        '\r\n\tclient-ip=192.0.2.10; envelope-from="alice@example.org"; helo=mail.example.org; '
        'receiver=mx.lab.test; identity=mailfrom; mechanism="ip4:192.0.2.0/24";'
    )


# --- DKIM ------------------------------------------------------------------------------------------------------


def test_dkim_signature_made_by_dkimpy_passes_with_the_key_from_our_resolver() -> None:
    resolver = MemoryResolver(zone())
    results = run(verify_signatures(signed(message()), resolver))
    assert [(r.result, r.domain, r.selector) for r in results] == [(DkimOutcome.PASS, "example.org", SELECTOR)]
    assert ("TXT", f"{SELECTOR}._domainkey.example.org") in resolver.queries


def test_dkim_tampered_body_fails() -> None:
    data = signed(message()).replace(b"Hello Bob.", b"Hello Eve.")
    [result] = run(verify_signatures(data, MemoryResolver(zone())))
    assert result.result is DkimOutcome.FAIL
    assert result.reason == "body hash mismatch"


def test_dkim_missing_key_is_permerror_and_dns_failure_temperror() -> None:
    data = signed(message(), domain="nokey.test")
    [missing] = run(verify_signatures(data, MemoryResolver(zone())))
    assert (missing.result, missing.reason) == (DkimOutcome.PERMERROR, f"no key at {SELECTOR}._domainkey.nokey.test")
    failing = zone()
    failing[("TXT", f"{SELECTOR}._domainkey.nokey.test")] = DnsTempError("timeout")
    [temp] = run(verify_signatures(data, MemoryResolver(failing)))
    assert temp.result is DkimOutcome.TEMPERROR


def test_dkim_short_key_and_garbled_signature_are_permerrors() -> None:
    [short] = run(verify_signatures(signed(message()), MemoryResolver(zone()), minkey=4096))
    assert short.result is DkimOutcome.PERMERROR
    garbled = b"DKIM-Signature: v=1; d=example.org; s=sel1; junk\r\n" + message()
    [bad] = run(verify_signatures(garbled, MemoryResolver(zone())))
    assert bad.result is DkimOutcome.PERMERROR


def test_dkim_requirements_give_rfc7372_codes() -> None:
    resolver = MemoryResolver(zone())
    unsigned = eod(envelope(), message())
    assert run(DkimPolicy(resolver).check(Stage.END_OF_DATA, unsigned)) is None
    assert run(DkimPolicy(resolver, require="signed").check(Stage.END_OF_DATA, unsigned)) is None
    needs_pass = run(DkimPolicy(resolver, require="pass").check(Stage.END_OF_DATA, unsigned))
    assert reply(Stage.END_OF_DATA, needs_pass) == "550 5.7.20 No passing DKIM signature found"
    tampered = eod(envelope(), signed(message()).replace(b"Hello", b"Bye"))
    signed_bad = run(DkimPolicy(resolver, require="signed").check(Stage.END_OF_DATA, tampered))
    assert reply(Stage.END_OF_DATA, signed_bad) == "550 5.7.20 No passing DKIM signature found"
    foreign = eod(envelope(), signed(message(), domain="other.test"))
    assert run(DkimPolicy(resolver, require="pass").check(Stage.END_OF_DATA, foreign)) is None
    by_author = run(DkimPolicy(resolver, require="author").check(Stage.END_OF_DATA, foreign))
    assert reply(Stage.END_OF_DATA, by_author) == "550 5.7.22 No valid author-matched DKIM signature found"
    own = eod(envelope(), signed(message()))
    assert run(DkimPolicy(resolver, require="author").check(Stage.END_OF_DATA, own)) is None


def test_dkim_requirement_defers_when_only_a_key_lookup_failed() -> None:
    data = zone()
    data[("TXT", f"{SELECTOR}._domainkey.example.org")] = DnsTempError("SERVFAIL")
    decision = run(
        DkimPolicy(MemoryResolver(data), require="pass").check(Stage.END_OF_DATA, eod(envelope(), signed(message())))
    )
    assert reply(Stage.END_OF_DATA, decision) == "451 4.4.3 DKIM temporary error - key lookup failed, try again later"


# --- DMARC -----------------------------------------------------------------------------------------------------


def test_dmarc_reject_when_neither_spf_nor_dkim_aligns() -> None:
    policy = auth(MemoryResolver(zone()))
    decision = end(policy, envelope(ip=OTHER), message())
    assert reply(Stage.END_OF_DATA, decision) == (
        "550 5.7.1 Unauthenticated email from example.org is not accepted due to domain's DMARC policy"
    )
    assert decision.policy == "dmarc"


def test_dmarc_pass_by_dkim_gives_one_authentication_results_field() -> None:
    policy = auth(MemoryResolver(zone()))
    data = signed(message())
    decision = end(policy, envelope(ip=OTHER), data)
    assert decision.outcome is Outcome.ACCEPT
    header, received = decision.headers
    b = header_fields(data)["DKIM-Signature"].split("b=")[-1].replace("\r\n", "").replace(" ", "")[:8]
    b = b.replace("\t", "")
    assert header == (
        "Authentication-Results: mx.lab.test;\r\n\tspf=fail smtp.mailfrom=alice@example.org;\r\n\t"
        f"dkim=pass header.d=example.org header.s=sel1 header.b={header_value(b)};\r\n\t"
        "dmarc=pass (p=reject dis=none) header.from=example.org"
    )
    assert received.startswith("Received-SPF: fail (mx.lab.test: domain of alice@example.org does not designate")


def test_dmarc_pass_by_aligned_spf_relaxed_but_not_strict() -> None:
    bounce = envelope("bounces@bounce.example.org")
    decision = end(auth(MemoryResolver(zone())), bounce, message())
    assert decision.outcome is Outcome.ACCEPT
    assert "dmarc=pass (p=reject dis=none)" in decision.headers[0]
    strict = zone()
    strict[("TXT", "_dmarc.example.org")] = ["v=DMARC1; p=reject; aspf=s"]
    refused = end(auth(MemoryResolver(strict)), bounce, message())
    assert refused.outcome is Outcome.REJECT


def test_dmarc_dkim_alignment_relaxed_and_strict() -> None:
    data = zone()
    data[("TXT", "_dmarc.news.example.org")] = ["v=DMARC1; p=reject; adkim=s"]
    sub = signed(message(from_="alice@news.example.org"))
    assert end(auth(MemoryResolver(data)), envelope(ip=OTHER), sub).outcome is Outcome.REJECT
    data[("TXT", "_dmarc.news.example.org")] = ["v=DMARC1; p=reject"]
    assert end(auth(MemoryResolver(data)), envelope(ip=OTHER), sub).outcome is Outcome.ACCEPT


def test_dmarc_quarantine_accepts_with_a_header_or_rejects_by_configuration() -> None:
    data = zone()
    data[("TXT", "_dmarc.example.org")] = ["v=DMARC1; p=quarantine"]
    accepted = end(auth(MemoryResolver(data)), envelope(ip=OTHER), message())
    assert accepted.outcome is Outcome.ACCEPT
    assert "dmarc=fail (p=quarantine dis=quarantine) header.from=example.org" in accepted.headers[0]
    assert accepted.headers[1] == "X-Quarantine: DMARC policy of example.org is quarantine"
    refused = end(auth(MemoryResolver(data), quarantine="reject"), envelope(ip=OTHER), message())
    assert reply(Stage.END_OF_DATA, refused) == "550 5.7.1 Email rejected per DMARC policy for example.org"


def test_dmarc_none_policy_only_reports() -> None:
    data = zone()
    data[("TXT", "_dmarc.example.org")] = ["v=DMARC1; p=none"]
    decision = end(auth(MemoryResolver(data)), envelope(ip=OTHER), message())
    assert decision.outcome is Outcome.ACCEPT
    assert "dmarc=fail (p=none dis=none) header.from=example.org" in decision.headers[0]


def test_dmarc_pct_sample_outside_applies_the_milder_policy() -> None:
    data = zone()
    data[("TXT", "_dmarc.example.org")] = ["v=DMARC1; p=reject; pct=50"]
    resolver = MemoryResolver(data)
    policy = AuthenticationPolicy(
        MX,
        spf=SpfPolicy(resolver, actions=spf_actions(fail="accept")),
        dmarc=DmarcPolicy(resolver, sample=lambda: 0.7),
    )
    decision = end(policy, envelope(ip=OTHER), message())
    assert decision.outcome is Outcome.ACCEPT
    assert "dmarc=fail (p=reject dis=quarantine)" in decision.headers[0]
    policy.dmarc = DmarcPolicy(resolver, sample=lambda: 0.2)
    assert end(policy, envelope(ip=OTHER), message()).outcome is Outcome.REJECT


def test_dmarc_organizational_domain_record_uses_sp() -> None:
    data = zone()
    data[("TXT", "_dmarc.example.co.uk")] = ["v=DMARC1; p=none; sp=reject"]
    resolver = MemoryResolver(data)
    found = run(discover("a.b.example.co.uk", resolver))
    assert found.organizational == "example.co.uk" and found.inherited
    assert ("TXT", "_dmarc.b.example.co.uk") not in resolver.queries
    decision = end(auth(resolver), envelope(ip=OTHER), message(from_="x@a.b.example.co.uk"))
    assert decision.outcome is Outcome.REJECT


def test_dmarc_from_problems_and_dns_failure() -> None:
    no_from = b"To: bob@lab.test\r\nSubject: x\r\n\r\nbody\r\n"
    decision = end(auth(MemoryResolver(zone())), envelope(), no_from)
    assert reply(Stage.END_OF_DATA, decision) == (
        "550 5.7.1 Messages missing a valid address in the From: header, or having no From: header, are not accepted"
    )
    two = b"From: a@example.org, b@example.org\r\n\r\nbody\r\n"
    malformed = end(auth(MemoryResolver(zone()), bad_from="malformed"), envelope(), two)
    assert reply(Stage.END_OF_DATA, malformed) == "554 5.6.0 Mail message is malformed. Not accepted"
    ignored = end(auth(MemoryResolver(zone()), bad_from="ignore"), envelope(), two)
    assert "dmarc=permerror (the From header field holds 2 addresses, not one)" in ignored.headers[0]
    data = zone()
    data[("TXT", "_dmarc.example.org")] = DnsTempError("timeout")
    deferred = end(auth(MemoryResolver(data)), envelope(), message())
    assert reply(Stage.END_OF_DATA, deferred) == "451 4.4.3 Temporary DMARC DNS lookup failure"
    accepted = end(auth(MemoryResolver(data), on_temperror="accept"), envelope(), message())
    assert "dmarc=temperror (DNS lookup failed) header.from=example.org" in accepted.headers[0]


def test_no_dmarc_record_is_dmarc_none() -> None:
    data = zone()
    del data[("TXT", "_dmarc.example.org")]
    decision = end(auth(MemoryResolver(data)), envelope(ip=OTHER), message())
    assert "dmarc=none (no DMARC record) header.from=example.org" in decision.headers[0]


def test_alignment_and_organizational_domains() -> None:
    assert organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert organizational_domain("Mail.Example.ORG.") == "example.org"
    assert organizational_domain("co.uk") == "co.uk"
    assert aligned("mail.example.org", "example.org", "r")
    assert not aligned("mail.example.org", "example.org", "s")
    assert not aligned("example.com", "example.org", "r")


def test_author_extraction() -> None:
    assert author(header_fields(message())).domain == "example.org"
    assert author(header_fields(b"From: a@example.org\r\nFrom: b@example.org\r\n\r\n")).problem == (
        "the message has 2 From header fields"
    )
    assert author(header_fields(b"From: nobody\r\n\r\n")).domain is None


# --- Authentication-Results ------------------------------------------------------------------------------------


def test_authentication_results_format() -> None:
    results = [
        MethodResult("spf", "pass", (("smtp.mailfrom", "a@example.org"),)),
        MethodResult("dkim", "fail", (("header.d", "example.org"),), "body hash (mismatch)"),
    ]
    assert authentication_results("mx.test", results) == (
        "Authentication-Results: mx.test;\r\n\tspf=pass smtp.mailfrom=a@example.org;\r\n\t"
        "dkim=fail (body hash \\(mismatch\\)) header.d=example.org"
    )
    assert authentication_results("mx.test", []) == "Authentication-Results: mx.test;\r\n\tnone"
    assert header_value('a "b"') == '"a \\"b\\""'


def test_authentication_policy_in_a_pipeline_prepends_its_fields() -> None:
    resolver = MemoryResolver(zone())
    pipeline = Pipeline([auth(resolver)], hostname=MX)
    env = envelope()
    assert run(pipeline.decide(Stage.MAIL, Context(env))).outcome is Outcome.ACCEPT
    decision = run(pipeline.decide(Stage.END_OF_DATA, eod(env, signed(message()))))
    assert decision.outcome is Outcome.ACCEPT
    assert decision.headers[0].startswith("Authentication-Results: mx.lab.test;\r\n\tspf=pass")
    assert "dmarc=pass (p=reject dis=none)" in decision.headers[0]


def test_dmarc_verdict_without_dkim_policy() -> None:
    resolver = MemoryResolver(zone())
    policy = AuthenticationPolicy(MX, spf=SpfPolicy(resolver), dmarc=DmarcPolicy(resolver), received_spf=False)
    decision = end(policy, envelope(), message())
    assert decision.headers == (
        "Authentication-Results: mx.lab.test;\r\n\tspf=pass smtp.mailfrom=alice@example.org;\r\n\t"
        "dmarc=pass (p=reject dis=none) header.from=example.org",
    )
    assert DmarcOutcome.PASS.value == "pass"


# --- robustness ------------------------------------------------------------------------------------------------

_FIELD = st.sampled_from(["From", "DKIM-Signature", "Date", "Sender", "To", "X"])
_VALUE = st.one_of(
    st.binary(max_size=60),
    st.sampled_from([b"v=1; d=example.org; s=sel1; b=; bh=; h=from", b"a@example.org, b@example.org", b"<>", b"@"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_FIELD, _VALUE), max_size=6), st.binary(max_size=80))
def test_authentication_policy_answers_any_message(fields: list[tuple[str, bytes]], rest: bytes) -> None:
    data = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in fields) + b"\r\n" + rest
    decision = end(auth(MemoryResolver(zone())), envelope(), data)
    assert decision.outcome in (Outcome.ACCEPT, Outcome.REJECT, Outcome.DEFER)
