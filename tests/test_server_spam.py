"""The spam policy (``smtplens.server.policies.spam``) and its filter clients.

The spamd and rspamd clients talk here to a small scripted TCP peer that answers in each protocol's format
(the SPAMD/1.1 reply of SpamAssassin's PROTOCOL file, rspamd's /checkv2 JSON); the live test with a real spamd
is in tests/integration/test_server_auth_live.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from smtplens.model import Stage
from smtplens.server.decisions import Decision, Outcome, reply_for
from smtplens.server.policies import RspamdClient, SpamdClient, SpamPolicy, SpamRule
from smtplens.server.policies.rspamd import parse_rspamd_reply
from smtplens.server.policies.spam import DEFAULT_RULES, GTUBE, matching_rules
from smtplens.server.policies.spamd import parse_spamd_response, spamd_request
from smtplens.server.policies.spamfilter import SpamAction, SpamFilterError
from smtplens.server.protocol import MailFrom, MessageBuffer, RcptTo
from smtplens.server.session import Context, Envelope

T = TypeVar("T")

HAM = b"From: a@example.org\r\nSubject: lunch\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nSee you at noon.\r\n"
SPAM = HAM.replace(b"See you at noon.", GTUBE.encode())
ENVELOPE = Envelope("192.0.2.1", "client.test", MailFrom("a@example.org"), (RcptTo("b@lab.test"), RcptTo("c@lab.test")))


def context(data: bytes) -> Context:
    buffer = MessageBuffer(0)
    buffer.add(data)
    return Context(ENVELOPE, None, data, buffer.facts())


def answer(decision: Decision | None) -> str:
    assert decision is not None
    reply = reply_for(Stage.END_OF_DATA, decision)
    return f"{reply.basic} {reply.enhanced} {' '.join(reply.text)}" if reply else "accept"


class Peer:
    """A scripted TCP peer on 127.0.0.1: reads what the client sends until it has ``expect(data)``, answers."""

    def __init__(self, respond: Callable[[bytes], bytes], expect: Callable[[bytes], bool]) -> None:
        self.respond = respond
        self.expect = expect
        self.received: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        while not self.expect(data):
            chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
        self.received.append(data)
        writer.write(self.respond(data))
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> Peer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def complete_request(data: bytes) -> bool:
    """A request with a Content-Length header has arrived whole."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def run(job: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(job())  # type: ignore[arg-type]


# --- rules -----------------------------------------------------------------------------------------------------


def test_gtube_is_rejected_by_the_default_rules() -> None:
    decision = run(lambda: SpamPolicy().check(Stage.END_OF_DATA, context(SPAM)))
    assert answer(decision) == "554 5.7.1 Message rejected as spam (GTUBE)"
    assert decision is not None and decision.policy == "spam"


def test_rule_scores_add_up_to_the_threshold() -> None:
    rules = [
        SpamRule("SUBJ_LUNCH", 2.5, r"^lun", "header", header="Subject", regex=True, source="test"),
        SpamRule("NOON", 2.5, "NOON", "body", source="test"),
        SpamRule("NOT_THERE", 9.0, "viagra", source="test"),
    ]
    assert [rule.name for rule in matching_rules(rules, HAM)] == ["SUBJ_LUNCH", "NOON"]
    assert answer(run(lambda: SpamPolicy(rules).check(Stage.END_OF_DATA, context(HAM)))) == (
        "554 5.7.1 Message rejected as spam (SUBJ_LUNCH, NOON)"
    )
    lenient = run(lambda: SpamPolicy(rules, threshold=6).check(Stage.END_OF_DATA, context(HAM)))
    assert lenient is not None and lenient.outcome is Outcome.ACCEPT
    assert lenient.headers == ("X-Spam-Status: No, score=5.0 required=6.0 tests=SUBJ_LUNCH,NOON",)


def test_body_rules_do_not_look_at_the_header() -> None:
    rule = SpamRule("LUNCH", 10, "lunch", "body", source="test")
    assert matching_rules([rule], HAM) == ()


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="needs the header field's name"):
        SpamRule("X", 1, "x", "header")
    with pytest.raises(ValueError, match="use letters"):
        SpamRule("has space", 1, "x")
    assert all(rule.source for rule in DEFAULT_RULES)


# --- spamd -----------------------------------------------------------------------------------------------------

SPAMD_SPAM = b"SPAMD/1.1 0 EX_OK\r\nContent-length: 18\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE,NO_RECEIVED\r\n"
SPAMD_HAM = b"SPAMD/1.1 0 EX_OK\r\nContent-length: 9\r\nSpam: False ; 0.1 / 5.0\r\n\r\nNO_RELAYS"


def test_spamd_request_and_response_format() -> None:
    assert spamd_request(b"abc", user="nobody") == b"SYMBOLS SPAMC/1.5\r\nContent-length: 3\r\nUser: nobody\r\n\r\nabc"
    verdict = parse_spamd_response(SPAMD_SPAM)
    assert (verdict.action, verdict.score, verdict.threshold, verdict.symbols) == (
        SpamAction.REJECT,
        1000.0,
        5.0,
        ("GTUBE", "NO_RECEIVED"),
    )
    with pytest.raises(SpamFilterError, match="spamd error 76: Bad header line"):
        parse_spamd_response(b"SPAMD/1.0 76 Bad header line: X\r\n\r\n")
    with pytest.raises(SpamFilterError, match="no valid Spam: header"):
        parse_spamd_response(b"SPAMD/1.1 0 EX_OK\r\n\r\n")
    with pytest.raises(SpamFilterError, match="not a SPAMD status line"):
        parse_spamd_response(b"HTTP/1.1 200 OK\r\n\r\n")


def test_spam_policy_with_spamd_peer() -> None:
    async def scenario() -> tuple[Decision | None, Decision | None, bytes]:
        async with Peer(lambda data: SPAMD_SPAM if GTUBE.encode() in data else SPAMD_HAM, complete_request) as peer:
            policy = SpamPolicy((), spam_filter=SpamdClient(port=peer.port, timeout=10))
            spam = await policy.check(Stage.END_OF_DATA, context(SPAM))
            ham = await policy.check(Stage.END_OF_DATA, context(HAM))
            return spam, ham, peer.received[0]

    spam, ham, request = run(scenario)
    assert answer(spam) == "554 5.7.1 Message rejected as spam (GTUBE, NO_RECEIVED)"
    assert ham is not None and ham.headers == ("X-Spam-Status: No, score=0.1 required=5.0 tests=NO_RELAYS",)
    assert request == spamd_request(SPAM)


def test_an_unreachable_or_broken_filter_defers_never_rejects() -> None:
    async def scenario() -> tuple[Decision | None, Decision | None, Decision | None]:
        async with Peer(lambda _: b"SPAMD/1.0 74 I/O error\r\n\r\n", complete_request) as peer:
            broken = SpamPolicy((), spam_filter=SpamdClient(port=peer.port, timeout=10))
            errored = await broken.check(Stage.END_OF_DATA, context(HAM))
        closed = SpamdClient(port=peer.port, timeout=10)  # the peer has stopped listening
        deferred = await SpamPolicy((), spam_filter=closed).check(Stage.END_OF_DATA, context(HAM))
        lenient = SpamPolicy((), spam_filter=closed, on_filter_error="accept")
        return errored, deferred, await lenient.check(Stage.END_OF_DATA, context(HAM))

    errored, deferred, accepted = run(scenario)
    assert answer(errored) == "451 4.7.1 Spam filter unavailable, try again later"
    assert answer(deferred) == "451 4.7.1 Spam filter unavailable, try again later"
    assert accepted is not None and accepted.outcome is Outcome.ACCEPT


def test_local_rules_decide_before_the_filter_is_asked() -> None:
    async def scenario() -> tuple[Decision | None, int]:
        async with Peer(lambda _: SPAMD_HAM, complete_request) as peer:
            policy = SpamPolicy(spam_filter=SpamdClient(port=peer.port, timeout=10))
            decision = await policy.check(Stage.END_OF_DATA, context(SPAM))
            return decision, len(peer.received)

    decision, asked = run(scenario)
    assert answer(decision) == "554 5.7.1 Message rejected as spam (GTUBE)"
    assert asked == 0


# --- rspamd ----------------------------------------------------------------------------------------------------


def http(reply: dict[str, object], status: str = "200 OK") -> bytes:
    body = json.dumps(reply).encode()
    return f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def test_rspamd_reply_parsing() -> None:
    verdict = parse_rspamd_reply(
        http({"action": "add header", "score": 7.5, "required_score": 15, "symbols": {"B": {}, "A": {}}})
    )
    assert (verdict.action, verdict.score, verdict.threshold, verdict.symbols) == (
        SpamAction.ADD_HEADER,
        7.5,
        15.0,
        ("A", "B"),
    )
    chunked = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n{"action": "reject"}\r\n0\r\n\r\n'
    assert parse_rspamd_reply(chunked).action is SpamAction.REJECT
    with pytest.raises(SpamFilterError, match="HTTP 500"):
        parse_rspamd_reply(http({}, "500 Internal Server Error"))
    with pytest.raises(SpamFilterError, match="could not be read"):
        parse_rspamd_reply(http({"action": "explode"}))


@pytest.mark.parametrize(
    ("action", "expected", "headers"),
    [
        ("reject", "554 5.7.1 Message rejected as spam (GTUBE)", ()),
        ("soft reject", "451 4.7.1 Try again later", ()),
        ("greylist", "451 4.7.1 Try again later", ()),
        ("add header", "accept", ("X-Spam-Flag: YES", "X-Spam-Status: Yes, score=9.0 required=15.0 tests=GTUBE")),
        ("no action", "accept", ("X-Spam-Status: No, score=9.0 required=15.0 tests=GTUBE",)),
    ],
)
def test_spam_policy_with_rspamd_peer(action: str, expected: str, headers: tuple[str, ...]) -> None:
    reply = http({"action": action, "score": 9.0, "required_score": 15.0, "symbols": {"GTUBE": {"score": 9.0}}})

    async def scenario() -> tuple[Decision | None, bytes]:
        async with Peer(lambda _: reply, complete_request) as peer:
            policy = SpamPolicy((), spam_filter=RspamdClient(port=peer.port, timeout=10))
            return await policy.check(Stage.END_OF_DATA, context(HAM)), peer.received[0]

    decision, request = run(scenario)
    assert answer(decision) == expected
    assert decision is not None and decision.headers == headers
    head = request.partition(b"\r\n\r\n")[0].decode()
    assert head.startswith("POST /checkv2 HTTP/1.1\r\n")
    for line in ("IP: 192.0.2.1", "Helo: client.test", "From: a@example.org", "Rcpt: b@lab.test", "Rcpt: c@lab.test"):
        assert f"\r\n{line}\r\n" in head + "\r\n"
    assert request.endswith(HAM)
