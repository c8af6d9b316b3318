"""The shortcuts of the server's hot path give exactly what the general paths give: the ``queued as`` reply, the
greeting made once per configuration, queue ids from a block of random octets, and transcripts recorded by a
store that can only be awaited (no ``record_session_soon``)."""

from __future__ import annotations

import asyncio
import dataclasses
import email.parser
import email.policy
import json
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtplens.server import store_envelope, store_files
from smtplens.server.net import ServerConfig, SmtpServer
from smtplens.server.protocol import BodyType, MailFrom, RcptTo, Replies, SessionConfig, encode_reply
from smtplens.server.session import Deliver, Envelope, Send, Session
from smtplens.server.store_envelope import EnvelopeLike, normalize_envelope, subject_of
from smtplens.server.store_files import QueueIds, is_queue_id

NO_STAGES = SessionConfig(hostname="mx.test", decision_stages=frozenset())


def session_at_end_of_data() -> Session:
    """A session whose message waits for the store's answer (every stage accepted at once)."""
    session = Session(NO_STAGES, "192.0.2.7")
    session.start()
    actions = session.receive(b"EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\nHi\r\n.\r\n")
    assert isinstance(actions[-1], Deliver)
    return session


@pytest.mark.parametrize("queue_id", ["0661234ABCDEF0A1B2C3", "abc", "with space", "x\x01y", "é", "Q" * 600])
def test_the_queued_reply_is_what_encoding_the_reply_gives(queue_id: str) -> None:
    session = session_at_end_of_data()
    actions = session.stored(True, queue_id)
    wire = encode_reply(Replies.queued(queue_id))
    assert actions == [Send(wire)]
    expected = wire.decode("ascii").split("\r\n")[:-1]
    assert [line.text for line in session.transcript[-len(expected) :]] == expected
    assert session.outcome == "250"


def test_a_store_without_an_id_or_failing_gets_the_general_replies() -> None:
    session = session_at_end_of_data()
    assert session.stored(True, None) == [Send(encode_reply(Replies.queued(None)))]
    session = session_at_end_of_data()
    assert session.stored(False) == [Send(encode_reply(Replies.STORE_FAILED))]


def test_each_configuration_greets_with_its_own_banner() -> None:
    first = SessionConfig(hostname="one.test", banner="ESMTP first", decision_stages=frozenset())
    second = SessionConfig(hostname="two.test", banner="ESMTP second", decision_stages=frozenset())
    for _ in range(2):  # the second round comes from the cache
        assert Session(first).start() == [Send(b"220 one.test ESMTP first\r\n")]
        assert Session(second).start() == [Send(b"220 two.test ESMTP second\r\n")]


def test_queue_ids_stay_unique_and_ordered_beyond_one_block_of_random_octets() -> None:
    ids = QueueIds()
    made = [ids.next() for _ in range(3 * store_files._RANDOM_BLOCK + 5)]
    assert all(is_queue_id(queue_id) for queue_id in made)
    assert made == sorted(made) and len(set(made)) == len(made)
    assert len({queue_id[-6:] for queue_id in made}) > len(made) // 2  # the tails are random, not a counter


class AwaitedSink:
    """A message sink with only the awaitable ``record_session`` (no ``record_session_soon``), which really
    suspends before it records: the server must wait for it in a task."""

    def __init__(self) -> None:
        self.ids = QueueIds()
        self.sessions: list[tuple[str, str | None, int]] = []

    async def store(
        self, envelope: EnvelopeLike, message: bytes, session_id: str | None = None, *, alone: bool = False
    ) -> str:
        await asyncio.sleep(0)
        return self.ids.next()

    async def record_session(
        self,
        session_id: str,
        *,
        client_address: str,
        started_at: float,
        ended_at: float | None = None,
        transcript: Sequence[Sequence[str | None]] = (),
        outcome: str | None = None,
    ) -> None:
        await asyncio.sleep(0)
        self.sessions.append((client_address, outcome, len(transcript)))

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to release."""


def test_a_store_that_must_be_awaited_still_records_every_transcript() -> None:
    async def main() -> AwaitedSink:
        sink = AwaitedSink()
        config = ServerConfig(session=SessionConfig(hostname="mx.lab.test"), accepted_domains=frozenset({"lab.test"}))
        server = SmtpServer(config, sink)
        await server.start("127.0.0.1", 0)
        for _ in range(3):
            reader, writer = await asyncio.open_connection(*server.address)
            writer.write(b"EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<b@lab.test>\r\nDATA\r\nHi\r\n.\r\nQUIT\r\n")
            while await asyncio.wait_for(reader.readline(), 10):
                pass
            writer.close()
        await server.shutdown(5)
        return sink

    sink = asyncio.run(main())
    assert [(address, outcome) for address, outcome, _ in sink.sessions] == [("127.0.0.1", "221")] * 3
    assert all(lines >= 12 for _, _, lines in sink.sessions)


def parsed_subject(head: bytes) -> str | None:
    """The Subject as the email parser reads it (what ``subject_of`` falls back to)."""
    subject = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(head)["subject"]
    return None if subject is None else " ".join(str(subject).split())[:998]


HEADER_PIECES = [*"aZ09 \t:;,.()<>\"\\=?@[]-_'!#~", "\r\n", "\n", "\r", "\r\n ", "\n\t"]
HEADER_TEXT = st.lists(st.sampled_from(HEADER_PIECES), max_size=12).map("".join)
HEADER_LINE = st.one_of(
    st.builds(
        lambda name, value: f"{name}:{value}",
        st.sampled_from(["Subject", "subject", "SUBJECT", "From", "X-A"]),
        HEADER_TEXT,
    ),
    st.builds(lambda value: f" {value}", HEADER_TEXT),
    HEADER_TEXT,
)


@given(st.lists(HEADER_LINE, max_size=6), st.sampled_from(["\r\n", "\n"]), st.booleans())
@settings(max_examples=400, deadline=None)
def test_the_plain_subject_reader_agrees_with_the_email_parser(lines: list[str], end: str, blank: bool) -> None:
    head = end.join(lines).encode("ascii") + (end.encode() * 2 if blank else b"")
    handled, subject = store_envelope._plain_subject(head)
    if handled:
        assert subject == parsed_subject(head)


@pytest.mark.parametrize(
    ("head", "subject"),
    [
        (b"From: a@b.test\r\nSubject: Hello\r\n  world\r\n\r\n", "Hello world"),
        (b"Subject:\r\n\r\n", ""),
        (b"To: x\r\n\r\n", None),
        (b"Subject: first\r\nSubject: second\r\n\r\n", "first"),
        (b"subject:\tTabs\t and  spaces \n\n", "Tabs and spaces"),
    ],
)
def test_the_plain_subject_reader_on_common_headers(head: bytes, subject: str | None) -> None:
    assert store_envelope._plain_subject(head) == (True, subject)
    assert subject_of(head + b"body\r\n") == subject == parsed_subject(head)


@pytest.mark.parametrize(
    "head",
    [b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n", "Subject: café\r\n\r\n".encode(), b"From x\r\nSubject: y\r\n\r\n"],
)
def test_headers_the_plain_reader_leaves_to_the_parser(head: bytes) -> None:
    assert store_envelope._plain_subject(head) == (False, None)
    assert subject_of(head) == parsed_subject(head)


def test_a_session_envelope_is_stored_as_asdict_gives_it() -> None:
    envelope = Envelope(
        "192.0.2.9",
        "client.test",
        MailFrom("a@c.test", size=10, body=BodyType.EIGHT_BIT_MIME, envid="E1"),
        (RcptTo("b@mx.test", ("SUCCESS", "DELAY"), "rfc822;b@mx.test"), RcptTo("c@mx.test")),
        True,
        "user",
    )
    assert store_envelope._as_dict(envelope) == dataclasses.asdict(envelope)
    assert normalize_envelope(envelope, "s1", 5.0) == normalize_envelope(dataclasses.asdict(envelope), "s1", 5.0)


JSON_KEY = st.one_of(st.text(max_size=5), st.integers(-3, 3), st.booleans(), st.none(), st.floats(allow_nan=False))
JSON_ATOM = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(list(BodyType)),
)
NESTED = st.recursive(
    JSON_ATOM,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(JSON_KEY, inner, max_size=4),
    ),
    max_leaves=12,
)


@given(NESTED)
@settings(max_examples=400, deadline=None)
def test_the_json_copy_is_what_the_json_round_trip_gives(value: object) -> None:
    expected = json.loads(json.dumps(value, default=str))
    copied = store_envelope.json_copy(value)
    assert copied == expected
    assert json.dumps(copied) == json.dumps(expected)  # the same types too (a str enum becomes its text)


def test_the_json_copy_of_odd_values_takes_the_round_trip() -> None:
    envelope = {"when": dataclasses, "set": {1}, "bytes": b"x", BodyType.SEVEN_BIT: 1, 1.5: [(), {}]}
    assert store_envelope.json_copy(envelope) == json.loads(json.dumps(envelope, default=str))
