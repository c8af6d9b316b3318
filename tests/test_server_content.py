"""The content policy (``smtplens.server.policies.content``): malformed messages and size limits."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtplens.model import Stage
from smtplens.server.decisions import Decision, reply_for
from smtplens.server.policies import ContentPolicy
from smtplens.server.policies.content import CHECKS, CONTENT_REPLIES
from smtplens.server.protocol import BodyType, MailFrom, MessageBuffer, RcptTo
from smtplens.server.session import Context, Envelope

GOOD = (
    b"From: Alice <alice@example.org>\r\nTo: bob@lab.test\r\nSubject: hi\r\n"
    b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nHello.\r\n"
)


def context(
    data: bytes, body: BodyType = BodyType.SEVEN_BIT, *, smtputf8: bool = False, rcpt: str = "bob@lab.test"
) -> Context:
    buffer = MessageBuffer(0)
    buffer.add(data)
    envelope = Envelope(
        "192.0.2.1", "client.test", MailFrom("a@example.org", body=body, smtputf8=smtputf8), (RcptTo(rcpt),)
    )
    return Context(envelope, None, data, buffer.facts())


def answer(policy: ContentPolicy, data: bytes, **kwargs: object) -> str | None:
    decision: Decision | None = asyncio.run(policy.check(Stage.END_OF_DATA, context(data, **kwargs)))  # type: ignore[arg-type]
    if decision is None:
        return None
    reply = reply_for(Stage.END_OF_DATA, decision)
    assert reply is not None
    return f"{reply.basic} {reply.enhanced} {' '.join(reply.text)}"


def test_a_well_formed_message_passes() -> None:
    assert answer(ContentPolicy(), GOOD) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            GOOD.replace(b"From: Alice <alice@example.org>\r\n", b""),
            "554 5.6.0 Error: message has no From: header field (RFC 5322 section 3.6)",
        ),
        (
            GOOD.replace(b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n", b""),
            "554 5.6.0 Error: message has no Date: header field (RFC 5322 section 3.6)",
        ),
        (GOOD.replace(b"Hello.", b"Hel\x00lo."), "554 5.6.0 Error: NUL character in message"),
        (GOOD.replace(b"Hello.\r\n", b"Hello.\nBye.\r\n"), "554 5.6.0 Error: bare <LF> received"),
        (GOOD.replace(b"Hello.\r\n", b"Hello.\rBye.\r\n"), "554 5.6.0 Error: bare <CR> received"),
        (GOOD.replace(b"Hello.", "Grüße.".encode()), "554 5.6.0 Error: 8-bit data without BODY=8BITMIME"),
        (
            GOOD.replace(b"Subject: hi\r\n", b"Subject: hi\r\nSubject: again\r\n"),
            "554 5.6.0 Error: message has 2 Subject: header fields, RFC 5322 section 3.6 allows one",
        ),
        (
            GOOD.replace(b"From: Alice <alice@example.org>", b"From: alice@example.org, carol@example.org"),
            "554 5.6.0 Error: From: holds several addresses but there is no Sender: header field "
            "(RFC 5322 section 3.6.2)",
        ),
    ],
)
def test_malformed_messages_get_554_5_6_0(data: bytes, expected: str) -> None:
    assert answer(ContentPolicy(), data) == expected


def test_eight_bit_is_fine_with_8bitmime_or_smtputf8() -> None:
    data = GOOD.replace(b"Hello.", "Grüße.".encode())
    assert answer(ContentPolicy(), data, body=BodyType.EIGHT_BIT_MIME) is None
    assert answer(ContentPolicy(), data, smtputf8=True) is None


def test_several_from_addresses_with_a_sender_pass() -> None:
    data = GOOD.replace(
        b"From: Alice <alice@example.org>", b"From: alice@example.org, carol@example.org\r\nSender: alice@example.org"
    )
    assert answer(ContentPolicy(), data) is None


def test_every_check_can_be_switched_off() -> None:
    data = GOOD.replace(b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n", b"").replace(b"Hello.\r\n", b"Hello.\nBye.\r\n")
    assert answer(ContentPolicy(disable={"bare_lf", "missing_date"}), data) is None
    assert answer(ContentPolicy(disable=CHECKS), b"\x00junk") is None
    with pytest.raises(ValueError, match="unknown content checks: nope"):
        ContentPolicy(disable={"nope"})


def test_stricter_line_limit() -> None:
    data = GOOD.replace(b"Hello.", b"x" * 100)
    assert answer(ContentPolicy(), data) is None
    assert answer(ContentPolicy(max_line=78), data) == "554 5.6.0 Error: message line too long"


def test_size_limits_overall_and_per_recipient_domain() -> None:
    assert answer(ContentPolicy(max_size=50), GOOD) == "552 5.3.4 Error: message file too big"
    per_domain = ContentPolicy(domain_sizes={"Small.test": 50})
    assert answer(per_domain, GOOD) is None
    assert answer(per_domain, GOOD, rcpt="x@small.test") == "552 5.3.4 Error: message file too big for small.test"


def test_every_reply_has_a_source() -> None:
    assert all(reply.source for reply in CONTENT_REPLIES.values())
    assert set(CHECKS) <= set(CONTENT_REPLIES)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_get_an_answer_not_an_exception(data: bytes) -> None:
    result = answer(ContentPolicy(max_line=100), data)
    assert result is None or result.startswith(("554 5.6.0 ", "552 5.3.4 "))
