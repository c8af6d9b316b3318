"""The sans-I/O server session, driven with bytes: no sockets, no clocks, no files."""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtplens.model import Reply, Stage
from smtplens.server import (
    BodyType,
    Close,
    Decision,
    DecisionError,
    Deliver,
    Direction,
    Limits,
    MailFrom,
    NeedDecision,
    RcptTo,
    Send,
    Session,
    SessionConfig,
    SessionError,
    StartTls,
    reply_for,
)
from smtplens.server.protocol import encode_reply, make_reply, parse_command, parse_mail, parse_rcpt
from smtplens.server.session import Action

HOST = "mx.test"
USER, PASSWORD = "alice", "s3cret-Pa55"
PLAIN = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
NO_DECISIONS: frozenset[Stage] = frozenset()


def check_password(user: str, password: str) -> bool:
    return (user, password) == (USER, PASSWORD)


def config(**changes: object) -> SessionConfig:
    settings_: dict[str, object] = {"hostname": HOST, "decision_stages": NO_DECISIONS}
    settings_.update(changes)
    return SessionConfig(**settings_)  # type: ignore[arg-type]


def sent(actions: Iterable[Action]) -> list[str]:
    """The reply lines the actions send, without CRLF."""
    data = b"".join(action.data for action in actions if isinstance(action, Send))
    return data.decode("ascii").split("\r\n")[:-1]


_CODES = re.compile(r"[0-9]{3}(?: [245]\.[0-9]{1,3}\.[0-9]{1,3}(?= |$))?")


def codes(actions: Iterable[Action]) -> list[str]:
    """The final line of every reply, shortened to ``code enhanced``."""
    return [match[0] for line in sent(actions) if line[3] == " " and (match := _CODES.match(line))]


def greeted(**changes: object) -> Session:
    session = Session(config(**changes), "192.0.2.1")
    session.start()
    session.receive(b"EHLO client.test\r\n")
    return session


def in_transaction(**changes: object) -> Session:
    session = greeted(**changes)
    assert codes(session.receive(b"MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@rcpt.test>\r\n")) == [
        "250 2.1.0",
        "250 2.1.5",
    ]
    return session


def send_message(session: Session, body: bytes) -> list[Action]:
    assert codes(session.receive(b"DATA\r\n")) == ["354"]
    return session.receive(body)


def delivered(actions: Iterable[Action]) -> Deliver:
    found = [action for action in actions if isinstance(action, Deliver)]
    assert len(found) == 1, actions
    return found[0]


# --------------------------------------------------------------------------------------------- transaction


def test_full_transaction_asks_every_stage_and_answers_250_only_after_the_store() -> None:
    session = Session(SessionConfig(hostname=HOST), "192.0.2.1")
    actions = session.start()
    assert len(actions) == 1 and isinstance(actions[0], NeedDecision) and actions[0].stage is Stage.CONNECT
    assert actions[0].context.envelope.client_address == "192.0.2.1"
    assert sent(session.decided(Decision.accept())) == [f"220 {HOST} ESMTP smtplens"]

    actions = session.receive(b"EHLO client.test\r\n")
    assert isinstance(actions[0], NeedDecision) and actions[0].context.envelope.helo == "client.test"
    lines = sent(session.decided(Decision.accept()))
    assert lines[0] == f"250-{HOST}" and lines[-1] == "250 SMTPUTF8"
    assert {"250-PIPELINING", "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250-DSN"} <= set(lines)
    assert "250-SIZE 10485760" in lines and not any("STARTTLS" in line or "AUTH" in line for line in lines)

    actions = session.receive(b"MAIL FROM:<a@sender.test> SIZE=60 BODY=8BITMIME\r\n")
    assert isinstance(actions[0], NeedDecision) and actions[0].stage is Stage.MAIL
    assert actions[0].context.envelope.mail_from == "a@sender.test"
    assert codes(session.decided(Decision.accept())) == ["250 2.1.0"]

    actions = session.receive(b"RCPT TO:<b@rcpt.test> NOTIFY=SUCCESS,FAILURE\r\n")
    assert isinstance(actions[0], NeedDecision) and actions[0].context.recipient == RcptTo(
        "b@rcpt.test", ("SUCCESS", "FAILURE")
    )
    assert codes(session.decided(Decision.accept())) == ["250 2.1.5"]

    actions = session.receive(b"DATA\r\n")
    assert isinstance(actions[0], NeedDecision) and actions[0].stage is Stage.DATA
    assert sent(session.decided(Decision.accept())) == ["354 End data with <CR><LF>.<CR><LF>"]

    actions = session.receive(b"Subject: hello\r\n\r\nBody\r\n.\r\n")
    assert len(actions) == 1 and isinstance(actions[0], NeedDecision) and actions[0].stage is Stage.END_OF_DATA
    context = actions[0].context
    assert context.message == b"Subject: hello\r\n\r\nBody\r\n"
    assert context.facts is not None and context.facts.size == 24 and not context.facts.eight_bit

    actions = session.decided(Decision.accept())
    deliver = delivered(actions)
    assert sent(actions) == []  # no 250 before the store says the message is durable
    assert session.timeout is None and session.waiting
    envelope = deliver.envelope
    assert (envelope.client_address, envelope.helo, envelope.mail_from) == ("192.0.2.1", "client.test", "a@sender.test")
    assert envelope.body is BodyType.EIGHT_BIT_MIME and envelope.size == 60 and not envelope.tls
    assert [r.address for r in envelope.recipients] == ["b@rcpt.test"]
    assert sent(session.stored(True, "4XyZ")) == ["250 2.0.0 Ok: queued as 4XyZ"]

    assert sent(session.receive(b"QUIT\r\n")) == ["221 2.0.0 Bye"]
    assert session.closed
    assert session.receive(b"NOOP\r\n") == []


def test_accepting_end_of_data_decision_prepends_its_header_fields() -> None:
    session = Session(SessionConfig(hostname=HOST), "192.0.2.1")
    session.start()
    session.decided(Decision.accept())
    for line in (b"EHLO c.test\r\n", b"MAIL FROM:<a@sender.test>\r\n", b"RCPT TO:<b@rcpt.test>\r\n", b"DATA\r\n"):
        session.receive(line)
        session.decided(Decision.accept())
    session.receive(b"Subject: x\r\n\r\nBody\r\n.\r\n")
    headers = ("Authentication-Results: mx.test;\r\n\tspf=pass", "X-Extra: 1")
    deliver = delivered(session.decided(Decision.accept(headers=headers)))
    assert deliver.message == (
        b"Authentication-Results: mx.test;\r\n\tspf=pass\r\nX-Extra: 1\r\nSubject: x\r\n\r\nBody\r\n"
    )


def test_store_failure_answers_451_and_ends_the_transaction() -> None:
    session = in_transaction()
    delivered(send_message(session, b"x\r\n.\r\n"))
    assert codes(session.stored(False, None)) == ["451 4.3.0"]
    assert codes(session.receive(b"RCPT TO:<c@rcpt.test>\r\n")) == ["503 5.5.1"]


def test_helo_gives_no_extensions_and_refuses_parameters() -> None:
    session = Session(config(), "192.0.2.1")
    session.start()
    assert sent(session.receive(b"HELO client.test\r\n")) == [f"250 {HOST}"]
    assert codes(session.receive(b"MAIL FROM:<a@sender.test> SIZE=10\r\n")) == ["555 5.5.4"]
    assert codes(session.receive(b"MAIL FROM:<a@sender.test>\r\n")) == ["250 2.1.0"]


def test_sequence_errors() -> None:
    session = Session(config(), "192.0.2.1")
    session.start()
    assert codes(session.receive(b"MAIL FROM:<a@sender.test>\r\n")) == ["503 5.5.1"]
    assert codes(session.receive(b"EHLO\r\n")) == ["501 5.5.4"]
    session.receive(b"EHLO client.test\r\n")
    assert codes(session.receive(b"RCPT TO:<b@rcpt.test>\r\nDATA\r\n")) == ["503 5.5.1", "503 5.5.1"]
    session.receive(b"MAIL FROM:<>\r\n")
    assert codes(session.receive(b"MAIL FROM:<a@sender.test>\r\n")) == ["503 5.5.1"]  # nested
    assert codes(session.receive(b"FOO bar\r\nRSET\r\nNOOP\r\nVRFY x\r\nEXPN y\r\nHELP\r\n")) == [
        "500 5.5.2",
        "250 2.0.0",
        "250 2.0.0",
        "252 2.0.0",
        "502 5.5.1",
        "214 2.0.0",
    ]


def test_data_without_recipients_is_554_5_5_1() -> None:
    session = greeted()
    session.receive(b"MAIL FROM:<a@sender.test>\r\n")
    assert sent(session.receive(b"DATA\r\n")) == ["554 5.5.1 Error: no valid recipients"]


# ------------------------------------------------------------------------------------------------ pipelining


def test_pipelined_commands_wait_for_each_decision_in_order() -> None:
    session = Session(SessionConfig(hostname=HOST, decision_stages=frozenset({Stage.MAIL, Stage.RCPT})))
    session.start()
    session.receive(b"EHLO client.test\r\n")
    actions = session.receive(b"MAIL FROM:<a@s.test>\r\nRCPT TO:<b@r.test>\r\nRCPT TO:<c@r.test>\r\nDATA\r\n")
    assert [type(action) for action in actions] == [NeedDecision]
    assert session.waiting and session.timeout is None
    actions = session.decided(Decision.accept())
    assert codes(actions) == ["250 2.1.0"] and isinstance(actions[-1], NeedDecision)
    actions = session.decided(Decision.reject(policy="access"))
    assert sent(actions)[0] == "550 5.7.1 Recipient address rejected: Access denied"
    actions = session.decided(Decision.accept())
    assert codes(actions) == ["250 2.1.5", "354"]  # the reply to RCPT and DATA leave in one write
    assert len([action for action in actions if isinstance(action, Send)]) == 1
    assert ("550 5.7.1 Recipient address rejected: Access denied", "access") in [
        (line.text, line.policy) for line in session.transcript
    ]


def test_decided_without_a_question_is_an_adapter_error() -> None:
    session = greeted()
    with pytest.raises(SessionError):
        session.decided(Decision.accept())
    with pytest.raises(SessionError):
        session.stored(True, "x")
    with pytest.raises(SessionError):
        session.start()


CONVERSATION = (
    b"EHLO client.test\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@r.test>\r\nDATA\r\n"
    b"From: a@s.test\r\n..leading dot\r\n.\r\nNOOP\r\nRSET\r\nQUIT\r\n"
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(CONVERSATION)), max_size=12))
def test_any_split_of_the_input_gives_the_same_replies(cuts: list[int]) -> None:
    def run(pieces: list[bytes]) -> tuple[list[str], bytes]:
        message = b""
        session = Session(config(), "192.0.2.1")
        actions = session.start()
        for piece in pieces:
            for action in session.receive(piece):
                if isinstance(action, Deliver):
                    actions += session.stored(True, "Q")
                    message = action.message
                actions.append(action)
        return sent(actions), message

    bounds = [0, *sorted(cuts), len(CONVERSATION)]
    pieces = [CONVERSATION[a:b] for a, b in itertools.pairwise(bounds)]
    assert run(pieces) == run([CONVERSATION])


# ----------------------------------------------------------------------------------------- connect decisions


def test_554_greeting_leaves_only_quit() -> None:
    session = Session(SessionConfig(hostname=HOST), "192.0.2.1")
    session.start()
    actions = session.decided(Decision.reject(text="Client host [192.0.2.1] blocked using zen.example"))
    assert sent(actions) == ["554 5.7.1 Client host [192.0.2.1] blocked using zen.example"]
    assert not any(isinstance(action, Close) for action in actions)
    answers = codes(session.receive(b"EHLO client.test\r\nMAIL FROM:<a@s.test>\r\nNOOP\r\nSTARTTLS\r\n"))
    assert answers == ["503 5.7.0"] * 4
    actions = session.receive(b"QUIT\r\n")
    assert codes(actions) == ["221 2.0.0"] and isinstance(actions[-1], Close)


def test_421_greeting_closes() -> None:
    session = Session(SessionConfig(hostname=HOST))
    session.start()
    actions = session.decided(Decision.defer(code="421", enhanced="4.7.0", text="Error: too many connections"))
    assert sent(actions) == ["421 4.7.0 Error: too many connections"]
    assert isinstance(actions[-1], Close) and session.closed


def test_any_421_closes_and_disconnecting_decisions_close() -> None:
    session = Session(SessionConfig(hostname=HOST, decision_stages=frozenset({Stage.RCPT})))
    session.start()
    session.receive(b"EHLO c.test\r\nMAIL FROM:<a@s.test>\r\n")
    session.receive(b"RCPT TO:<b@r.test>\r\nRCPT TO:<c@r.test>\r\n")
    actions = session.decided(Decision.defer(code="421", text="Too busy"))  # a 421 without disconnect=True
    assert codes(actions) == ["421 4.7.1"] and isinstance(actions[-1], Close)
    assert session.decided(Decision.accept()) == []  # a late answer after the close is ignored

    session = Session(SessionConfig(hostname=HOST, decision_stages=frozenset({Stage.MAIL})))
    session.start()
    session.receive(b"EHLO c.test\r\n")
    session.receive(b"MAIL FROM:<a@s.test>\r\n")
    actions = session.decided(Decision.defer(disconnect=True))
    assert sent(actions) == ["421 4.7.1 Service not available, closing transmission channel"]
    assert isinstance(actions[-1], Close)

    session = Session(SessionConfig(hostname=HOST, decision_stages=frozenset({Stage.HELO})))
    session.start()
    session.receive(b"EHLO c.test\r\n")
    actions = session.decided(Decision.reject(disconnect=True))
    assert codes(actions) == ["550 5.7.1"] and isinstance(actions[-1], Close)


def test_accepting_decision_can_change_the_banner() -> None:
    session = Session(SessionConfig(hostname=HOST))
    session.start()
    assert sent(session.decided(Decision.accept(text="ESMTP Postfix (Debian)"))) == [
        f"220 {HOST} ESMTP Postfix (Debian)"
    ]


@pytest.mark.parametrize(
    ("stage", "reject", "defer"),
    [
        (Stage.CONNECT, "554 5.7.1", "421 4.3.2"),
        (Stage.HELO, "550 5.7.1", "450 4.7.1"),
        (Stage.MAIL, "550 5.7.1", "450 4.7.1"),
        (Stage.RCPT, "550 5.7.1", "450 4.7.1"),
        (Stage.DATA, "554 5.7.1", "451 4.7.1"),
        (Stage.END_OF_DATA, "554 5.7.1", "451 4.7.1"),
    ],
)
def test_reply_for_picks_the_stage_code(stage: Stage, reject: str, defer: str) -> None:
    def short(reply: Reply | None) -> str:
        assert reply is not None
        return f"{reply.basic} {reply.enhanced}"

    assert reply_for(stage, Decision.accept()) is None
    assert short(reply_for(stage, Decision.reject())) == reject
    assert short(reply_for(stage, Decision.defer())) == defer
    assert short(reply_for(stage, Decision.defer(disconnect=True)))[:3] == "421"
    custom = reply_for(stage, Decision.defer(code="451", enhanced="4.7.1", text="Greylisted\nsee https://x.test"))
    assert custom is not None and encode_reply(custom) == b"451-4.7.1 Greylisted\r\n451 4.7.1 see https://x.test\r\n"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Decision.reject(code="450"),
        lambda: Decision.defer(code="550"),
        lambda: Decision.reject(enhanced="4.7.1"),
        lambda: Decision.defer(code="4xx"),
        lambda: Decision(disconnect=True),
    ],
)
def test_inconsistent_decisions_are_refused(make: object) -> None:
    with pytest.raises(DecisionError):
        make()  # type: ignore[operator]


# ------------------------------------------------------------------------------------------------- limits


def test_command_line_limit_is_512_octets_with_crlf() -> None:
    session = greeted()
    assert codes(session.receive(b"NOOP " + b"x" * 505 + b"\r\n")) == ["250 2.0.0"]  # 512 octets
    assert codes(session.receive(b"NOOP " + b"x" * 506 + b"\r\n")) == ["500 5.5.6"]  # 513 octets
    assert session.receive(b"NOOP " + b"y" * 2000) == []  # the rest of the line is discarded as it comes
    assert session.receive(b"z" * 5000) == []
    assert codes(session.receive(b"zz\r\nNOOP\r\n")) == ["500 5.5.6", "250 2.0.0"]
    assert ("*", "line too long, discarded") in [(line.direction.value, line.text) for line in session.transcript]


def test_long_text_line_refuses_the_message_with_554_5_6_0() -> None:
    session = in_transaction()
    ok_line = b"a" * 998 + b"\r\n"
    actions = send_message(session, ok_line + b"." + b"b" * 998 + b"\r\n.\r\n")  # stuffed dot: 1001 octets
    assert codes(actions) == ["554 5.6.0"] and not any(isinstance(action, Deliver) for action in actions)
    session.receive(b"MAIL FROM:<a@s.test>\r\nRCPT TO:<b@r.test>\r\n")
    actions = send_message(session, ok_line + b"." + b"b" * 997 + b"\r\n.\r\n")
    assert delivered(actions).message == ok_line + b"b" * 997 + b"\r\n"


def test_long_line_split_over_many_reads() -> None:
    session = in_transaction()
    session.receive(b"DATA\r\n")
    for _ in range(10):
        assert session.receive(b"c" * 150) == []
    assert codes(session.receive(b"\r\n.\r\n")) == ["554 5.6.0"]


def test_size_declared_and_actual() -> None:
    session = greeted(limits=Limits(message_size=100))
    lines = sent(session.receive(b"EHLO c.test\r\n"))
    assert "250-SIZE 100" in lines
    assert sent(session.receive(b"MAIL FROM:<a@s.test> SIZE=101\r\n")) == [
        "552 5.3.4 Message size exceeds fixed maximum message size"
    ]
    session.receive(b"MAIL FROM:<a@s.test> SIZE=100\r\nRCPT TO:<b@r.test>\r\n")
    actions = send_message(session, b"x" * 70 + b"\r\n" + b"y" * 70 + b"\r\n.\r\n")
    assert codes(actions) == ["552 5.3.4"] and not any(isinstance(action, Deliver) for action in actions)


def test_recipient_limit_answers_452_4_5_3() -> None:
    session = greeted()
    session.receive(b"MAIL FROM:<a@s.test>\r\n")
    answers = codes(session.receive(b"".join(b"RCPT TO:<r%d@r.test>\r\n" % n for n in range(101))))
    assert answers == ["250 2.1.5"] * 100 + ["452 4.5.3"]
    assert len(delivered(send_message(session, b"x\r\n.\r\n")).envelope.recipients) == 100


def test_error_budget_ends_in_421_4_7_0() -> None:
    session = greeted(limits=Limits(errors=3))
    actions = session.receive(b"BOGUS\r\nBOGUS\r\nBOGUS\r\nNOOP\r\n")
    assert sent(actions)[-1] == f"421 4.7.0 {HOST} Error: too many errors"
    assert codes(actions) == ["500 5.5.2"] * 3 + ["421 4.7.0"] and isinstance(actions[-1], Close)


def test_pipelined_flood_while_waiting_is_cut_off() -> None:
    session = Session(SessionConfig(hostname=HOST, limits=Limits(buffer=1000), decision_stages=frozenset({Stage.MAIL})))
    session.start()
    session.receive(b"EHLO c.test\r\nMAIL FROM:<a@s.test>\r\n")
    assert session.receive(b"NOOP\r\n" * 100) == []
    actions = session.receive(b"NOOP\r\n" * 100)
    assert codes(actions) == ["421 4.7.0"] and isinstance(actions[-1], Close)


# ---------------------------------------------------------------------------------------------- DATA bytes


def test_dot_unstuffing_and_the_end_marker() -> None:
    session = in_transaction()
    body = b"..one\r\n.two\r\n...\r\n. \r\nend.\r\n..\r\n.\r\n"
    message = delivered(send_message(session, body)).message
    assert message == b".one\r\ntwo\r\n..\r\n \r\nend.\r\n.\r\n"


@pytest.mark.parametrize("split", [1, 2, 3, 4, 5])
def test_end_marker_split_across_reads(split: int) -> None:
    session = in_transaction()
    tail = b"body\r\n.\r\n"
    cut = len(tail) - split
    assert send_message(session, tail[:cut]) == []
    assert delivered(session.receive(tail[cut:])).message == b"body\r\n"


def test_empty_message() -> None:
    session = in_transaction()
    assert delivered(send_message(session, b".\r\n")).message == b""


def test_bare_lf_never_ends_a_message() -> None:
    session = in_transaction()
    actions = send_message(session, b"a\n.\nb\n.\r\nc\r\n.\r\n")
    deliver = delivered(actions)
    assert deliver.message == b"a\n.\nb\n.\r\nc\r\n"  # "<LF>.<CR><LF>" is not the end either (no smuggling)


def test_bare_lf_is_reported_to_policies_and_can_be_refused() -> None:
    session = Session(SessionConfig(hostname=HOST, decision_stages=frozenset({Stage.END_OF_DATA})))
    session.start()
    session.receive(b"EHLO c.test\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@r.test>\r\nDATA\r\n")
    actions = session.receive(b"x\ny\r\n\xc3\xa9\0z\rw\r\n.\r\n")
    assert isinstance(actions[0], NeedDecision)
    facts = actions[0].context.facts
    assert facts is not None and (facts.bare_lf, facts.bare_cr, facts.nul, facts.eight_bit) == (True, True, True, True)

    session = in_transaction(reject_bare_lf=True)
    assert sent(send_message(session, b"x\ny\r\n.\r\n")) == ["554 5.6.0 Error: bare <LF> received"]


def test_commands_may_end_with_a_bare_lf() -> None:
    session = Session(config())
    session.start()
    assert codes(session.receive(b"EHLO c.test\nMAIL FROM:<a@s.test>\nRCPT TO:<b@r.test>\n")) == [
        "250",
        "250 2.1.0",
        "250 2.1.5",
    ]


def test_nul_and_controls_in_commands_are_syntax_errors() -> None:
    session = greeted()
    assert sent(session.receive(b"NOOP\0\r\nMAIL FROM:<a@s\rtest>\r\n")) == [
        "500 5.5.2 Error: bad syntax",
        "500 5.5.2 Error: bad syntax",
    ]
    assert codes(session.receive(b"\xff\xfe\r\n")) == ["500 5.5.2"]


# ------------------------------------------------------------------------------------------- MAIL and RCPT


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("FROM:<>", MailFrom("")),
        ("FROM: <a@b.test>", MailFrom("a@b.test")),
        ("from:a@b.test", MailFrom("a@b.test")),
        ("FROM:<@relay.test,@r2.test:a@b.test>", MailFrom("a@b.test")),
        ('FROM:<"odd > name"@b.test>', MailFrom('"odd > name"@b.test')),
        ("FROM:<a@[192.0.2.1]>", MailFrom("a@[192.0.2.1]")),
        ("FROM:<a@[IPv6:2001:db8::1]>", MailFrom("a@[IPv6:2001:db8::1]")),
        ("FROM:<a@b.test> BODY=8bitmime SIZE=1000", MailFrom("a@b.test", size=1000, body=BodyType.EIGHT_BIT_MIME)),
        ("FROM:<δοκιμή@παράδειγμα.test> SMTPUTF8", MailFrom("δοκιμή@παράδειγμα.test", smtputf8=True)),
        ("FROM:<a@b.test> RET=HDRS ENVID=QQ+2B314", MailFrom("a@b.test", ret="HDRS", envid="QQ+314")),
        ("FROM:<a@b.test> AUTH=<>", MailFrom("a@b.test", auth="<>")),
        ("FROM:<a@b.test> AUTH=e+3Dmc2@b.test", MailFrom("a@b.test", auth="e=mc2@b.test")),
    ],
)
def test_parse_mail(argument: str, expected: MailFrom) -> None:
    assert parse_mail(argument, extended=True, config=config()) == expected


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("<a@b.test>", "501 5.5.4"),
        ("FROM:<a@b.test", "501 5.5.4"),
        ("FROM:<a b@c.test>", "501 5.1.7"),
        ("FROM:<a@b..test>", "501 5.1.7"),
        ("FROM:<a@-b.test>", "501 5.1.7"),
        ("FROM:<a@[300.1.1.1]>", "501 5.1.7"),
        ("FROM:<" + "l" * 65 + "@b.test>", "501 5.1.7"),
        ("FROM:<a@b.test>x", "501 5.5.4"),
        ("FROM:<δ@b.test>", "553 5.6.7"),
        ("FROM:<a@b.test> SIZE=12x", "501 5.5.4"),
        ("FROM:<a@b.test> BODY=9BIT", "501 5.5.4"),
        ("FROM:<a@b.test> BODY=BINARYMIME", "555 5.5.4"),
        ("FROM:<a@b.test> SMTPUTF8=yes", "501 5.5.4"),
        ("FROM:<a@b.test> RET=ALL", "501 5.5.4"),
        ("FROM:<a@b.test> ENVID=" + "x" * 101, "501 5.5.4"),
        ("FROM:<a@b.test> XFOO=1", "555 5.5.4"),
        ("FROM:<a@b.test> SIZE=1 SIZE=2", "501 5.5.4"),
        ("FROM:<a@b.test> =x", "501 5.5.4"),
    ],
)
def test_parse_mail_errors(argument: str, expected: str) -> None:
    reply = parse_mail(argument, extended=True, config=config())
    assert isinstance(reply, Reply) and f"{reply.basic} {reply.enhanced}" == expected


@pytest.mark.parametrize(
    ("argument", "smtputf8", "expected"),
    [
        ("TO:<b@r.test>", False, RcptTo("b@r.test")),
        ("TO:<Postmaster>", False, RcptTo("Postmaster")),
        ("TO:<b@r.test> NOTIFY=NEVER", False, RcptTo("b@r.test", ("NEVER",))),
        ("TO:<b@r.test> notify=delay,failure", False, RcptTo("b@r.test", ("DELAY", "FAILURE"))),
        ("TO:<b@r.test> ORCPT=rfc822;b+40r.test", False, RcptTo("b@r.test", orcpt="rfc822;b@r.test")),
        ("TO:<ü@r.test> ORCPT=utf-8;ü@r.test", True, RcptTo("ü@r.test", orcpt="utf-8;ü@r.test")),
        ("TO:<>", False, "501 5.1.3"),
        ("TO:<ü@r.test>", False, "553 5.6.7"),
        ("TO:<b@r.test> NOTIFY=NEVER,DELAY", False, "501 5.5.4"),
        ("TO:<b@r.test> ORCPT=rfc822", False, "501 5.5.4"),
        ("TO:<b@r.test> SIZE=5", False, "555 5.5.4"),
        ("FROM:<b@r.test>", False, "501 5.5.4"),
    ],
)
def test_parse_rcpt(argument: str, smtputf8: bool, expected: RcptTo | str) -> None:
    result = parse_rcpt(argument, extended=True, smtputf8=smtputf8)
    if isinstance(result, Reply):
        assert f"{result.basic} {result.enhanced}" == expected
    else:
        assert result == expected


def test_parse_command() -> None:
    assert parse_command(b"mail FROM:<a@b.test>  ") == ("MAIL", "FROM:<a@b.test>")
    assert parse_command(b"STARTTLS") == ("STARTTLS", "")
    for line in (b"", b"MAILX", b" MAIL FROM:<>", "MAİL".encode()):
        reply = parse_command(line)
        assert isinstance(reply, Reply) and reply.basic == "500"


def test_smtputf8_transaction_accepts_utf8_recipients() -> None:
    session = greeted()
    answers = codes(session.receive("MAIL FROM:<ä@s.test> SMTPUTF8\r\nRCPT TO:<ö@r.test>\r\n".encode()))
    assert answers == ["250 2.1.0", "250 2.1.5"]
    assert delivered(send_message(session, b"x\r\n.\r\n")).envelope.smtputf8


# -------------------------------------------------------------------------------------------- STARTTLS, AUTH


def test_starttls_resets_the_session_and_drops_injected_commands() -> None:
    session = greeted(tls_available=True)
    lines = sent(session.receive(b"EHLO c.test\r\n"))
    assert "250-STARTTLS" in lines
    actions = session.receive(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
    assert sent(actions) == ["220 2.0.0 Ready to start TLS"] and isinstance(actions[-1], StartTls)
    assert session.waiting and session.receive(b"RSET\r\n") == []
    assert session.tls_started("TLSv1.3 TLS_AES_128_GCM_SHA256") == []
    assert codes(session.receive(b"MAIL FROM:<a@s.test>\r\n")) == ["503 5.5.1"]  # EHLO again first
    lines = sent(session.receive(b"EHLO c.test\r\n"))
    assert not any("STARTTLS" in line for line in lines)
    assert codes(session.receive(b"STARTTLS\r\n")) == ["503 5.5.1"]
    session.receive(b"MAIL FROM:<a@s.test>\r\nRCPT TO:<b@r.test>\r\n")
    assert delivered(send_message(session, b"x\r\n.\r\n")).envelope.tls


def test_starttls_not_offered_without_certificate() -> None:
    session = greeted()
    assert codes(session.receive(b"STARTTLS\r\n")) == ["502 5.5.1"]
    with pytest.raises(SessionError):
        session.tls_started()


def tls_session(**changes: object) -> Session:
    session = greeted(tls_available=True, credentials=check_password, **changes)
    assert not any("AUTH" in line for line in sent(session.receive(b"EHLO c.test\r\n")))
    session.receive(b"STARTTLS\r\n")
    session.tls_started()
    assert "250-AUTH PLAIN LOGIN" in sent(session.receive(b"EHLO c.test\r\n"))
    return session


def test_auth_plain_under_tls() -> None:
    session = tls_session()
    assert sent(session.receive(f"AUTH PLAIN {PLAIN}\r\n".encode())) == ["235 2.7.0 Authentication successful"]
    assert codes(session.receive(f"AUTH PLAIN {PLAIN}\r\n".encode())) == ["503 5.5.1"]
    session.receive(b"MAIL FROM:<a@s.test>\r\nRCPT TO:<b@r.test>\r\n")
    assert delivered(send_message(session, b"x\r\n.\r\n")).envelope.auth == USER
    assert_no_secrets(session)


def test_auth_plain_with_a_challenge_and_wrong_password() -> None:
    session = tls_session()
    assert sent(session.receive(b"AUTH PLAIN\r\n")) == ["334 "]
    wrong = base64.b64encode(f"\0{USER}\0nope".encode())
    assert sent(session.receive(wrong + b"\r\n")) == ["535 5.7.8 Authentication credentials invalid"]
    assert codes(session.receive(b"AUTH PLAIN\r\n")) == ["334"]
    assert codes(session.receive(PLAIN.encode() + b"\r\n")) == ["235 2.7.0"]
    assert_no_secrets(session)


def test_auth_login() -> None:
    session = tls_session()
    assert sent(session.receive(b"AUTH LOGIN\r\n")) == ["334 VXNlcm5hbWU6"]
    assert sent(session.receive(base64.b64encode(USER.encode()) + b"\r\n")) == ["334 UGFzc3dvcmQ6"]
    assert codes(session.receive(base64.b64encode(PASSWORD.encode()) + b"\r\n")) == ["235 2.7.0"]
    assert_no_secrets(session)


def test_auth_login_with_initial_response_cancel_and_bad_base64() -> None:
    session = tls_session()
    user = base64.b64encode(USER.encode())
    assert sent(session.receive(b"AUTH LOGIN " + user + b"\r\n")) == ["334 UGFzc3dvcmQ6"]
    assert codes(session.receive(b"*\r\n")) == ["501 5.7.0"]
    assert codes(session.receive(b"AUTH LOGIN\r\n!!!\r\n")) == ["334", "501 5.5.2"]
    assert codes(session.receive(b"AUTH CRAM-MD5\r\nAUTH\r\n")) == ["504 5.5.4", "501 5.5.4"]


def test_auth_refused_without_tls() -> None:
    session = greeted(credentials=check_password)
    assert not any("AUTH" in line for line in sent(session.receive(b"EHLO c.test\r\n")))
    assert sent(session.receive(f"AUTH PLAIN {PLAIN}\r\n".encode())) == [
        "538 5.7.11 Encryption required for requested authentication mechanism"
    ]
    assert codes(greeted().receive(b"AUTH PLAIN\r\n")) == ["503 5.5.1"]  # no credentials configured


def test_auth_without_tls_when_configured_and_required_auth() -> None:
    session = greeted(credentials=check_password, auth_without_tls=True, require_auth=True)
    assert "250-AUTH PLAIN LOGIN" in sent(session.receive(b"EHLO c.test\r\n"))
    assert sent(session.receive(b"MAIL FROM:<a@s.test>\r\n")) == ["530 5.7.0 Authentication required"]
    assert codes(session.receive(f"AUTH PLAIN {PLAIN}\r\nMAIL FROM:<a@s.test>\r\n".encode())) == [
        "235 2.7.0",
        "250 2.1.0",
    ]


def test_auth_verifier_crash_is_a_temporary_failure() -> None:
    def broken(user: str, password: str) -> bool:
        raise OSError("database down")

    session = greeted(credentials=broken, auth_without_tls=True)
    assert codes(session.receive(f"AUTH PLAIN {PLAIN}\r\n".encode())) == ["454 4.7.0"]


def assert_no_secrets(session: Session) -> None:
    text = "\n".join(line.text for line in session.transcript)
    for secret in (PASSWORD, PLAIN, base64.b64encode(PASSWORD.encode()).decode()):
        assert secret not in text
    assert "****" in text


def test_require_tls() -> None:
    session = greeted(tls_available=True, require_tls=True)
    assert sent(session.receive(b"MAIL FROM:<a@s.test>\r\n")) == ["530 5.7.0 Must issue a STARTTLS command first"]


# ------------------------------------------------------------------------------------ shutdown and timeouts


def test_shutdown_idle_answers_421_at_once() -> None:
    session = greeted()
    actions = session.shutdown()
    assert sent(actions) == [f"421 4.3.2 {HOST} Service shutting down, closing transmission channel"]
    assert isinstance(actions[-1], Close)


def test_shutdown_mid_message_finishes_and_stores_it_first() -> None:
    session = in_transaction()
    session.receive(b"DATA\r\nSubject: part one\r\n")
    assert session.shutdown() == []
    actions = session.receive(b"rest\r\n.\r\nMAIL FROM:<next@s.test>\r\n")
    deliver = delivered(actions)
    assert deliver.message == b"Subject: part one\r\nrest\r\n" and sent(actions) == []
    actions = session.stored(True, "Q1")
    assert sent(actions) == [
        "250 2.0.0 Ok: queued as Q1",
        f"421 4.3.2 {HOST} Service shutting down, closing transmission channel",
    ]
    assert isinstance(actions[-1], Close)


def test_shutdown_while_a_decision_is_pending() -> None:
    session = Session(SessionConfig(hostname=HOST, decision_stages=frozenset({Stage.RCPT})))
    session.start()
    session.receive(b"EHLO c.test\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@r.test>\r\nRCPT TO:<c@r.test>\r\n")
    assert session.shutdown() == []
    actions = session.decided(Decision.accept())
    assert codes(actions) == ["250 2.1.5", "421 4.3.2"] and isinstance(actions[-1], Close)


def test_shutdown_between_commands_of_a_transaction_drops_the_unfinished_transaction() -> None:
    session = in_transaction()
    actions = session.shutdown()
    assert codes(actions) == ["421 4.3.2"] and session.closed


def test_timeouts() -> None:
    session = Session(config(idle_timeout=300.0, data_timeout=180.0))
    assert session.timeout is None
    session.start()
    assert session.timeout == 300.0
    session.receive(b"EHLO c.test\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@r.test>\r\nDATA\r\n")
    assert session.timeout == 180.0
    actions = session.timed_out()
    assert sent(actions) == [f"421 4.4.2 {HOST} Error: timeout exceeded"] and isinstance(actions[-1], Close)
    assert session.timeout is None and session.timed_out() == [] and session.shutdown() == []


# ----------------------------------------------------------------------------------------------------- BDAT


def test_bdat_chunks_with_pipelining() -> None:
    session = greeted(chunking=True)
    assert {"250 CHUNKING", "250-BINARYMIME"} <= set(sent(session.receive(b"EHLO c.test\r\n")))
    actions = session.receive(
        b"MAIL FROM:<a@s.test> BODY=BINARYMIME\r\nRCPT TO:<b@r.test>\r\nBDAT 7\r\nab\r\n.\r\nBDAT 3 LAST\r\n\0\xffz"
    )
    assert codes(actions) == ["250 2.1.0", "250 2.1.5", "250 2.0.0"]
    assert delivered(actions).message == b"ab\r\n.\r\n\0\xffz"  # BDAT data is taken as is
    assert session.receive(b"DATA\r\n") == []  # waits for the store
    assert codes(session.stored(True, "Q")) == ["250 2.0.0", "503 5.5.1"]  # the transaction is over


def test_bdat_refused_chunks_are_still_read() -> None:
    session = greeted(chunking=True)
    assert codes(session.receive(b"BDAT 4 LAST\r\nNOOP")) == ["503 5.5.1"]
    assert codes(session.receive(b"NOOP\r\n")) == ["250 2.0.0"]
    session.receive(b"MAIL FROM:<a@s.test> BODY=BINARYMIME\r\n")
    assert codes(session.receive(b"BDAT 1\r\nx")) == ["554 5.5.1"]
    session.receive(b"RCPT TO:<b@r.test>\r\n")
    assert sent(session.receive(b"DATA\r\n")) == ["503 5.5.1 Error: BODY=BINARYMIME needs BDAT"]
    assert codes(greeted().receive(b"BDAT 1 LAST\r\n")) == ["502 5.5.1"]


def test_bdat_refused_by_data_policy_refuses_the_rest() -> None:
    session = Session(SessionConfig(hostname=HOST, chunking=True, decision_stages=frozenset({Stage.DATA})))
    session.start()
    session.receive(b"EHLO c.test\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@r.test>\r\n")
    actions = session.receive(b"BDAT 2\r\nabBDAT 2\r\ncdBDAT 1 LAST\r\nx")
    assert isinstance(actions[-1], NeedDecision) and actions[-1].stage is Stage.DATA
    actions = session.decided(Decision.reject())
    assert codes(actions) == ["554 5.7.1", "503 5.5.1", "503 5.5.1"]
    assert codes(session.receive(b"MAIL FROM:<a@s.test>\r\n")) == ["250 2.1.0"]


# ----------------------------------------------------------------------------------------------- transcript


def test_transcript_is_bounded_and_names_policies() -> None:
    session = Session(
        SessionConfig(hostname=HOST, limits=Limits(transcript=10), decision_stages=frozenset({Stage.CONNECT}))
    )
    session.start()
    session.decided(Decision.accept(policy="maintenance"))
    assert session.transcript[0].policy == "maintenance" and session.transcript[0].direction is Direction.SERVER
    session.receive(b"NOOP\r\n" * 20)
    assert len(session.transcript) == 11 and session.transcript[-1].text == "transcript truncated"


# -------------------------------------------------------------------------------------------------- replies


def test_encode_reply_keeps_lines_short_and_printable() -> None:
    data = encode_reply(make_reply("550", "5.7.1", "é\x00" + "x" * 600))
    assert data.endswith(b"\r\n") and len(data) == 512 and data.startswith(b"550 5.7.1 ??x")


# ----------------------------------------------------------------------------------------------------- fuzz

_FRAGMENTS = [
    b"EHLO c.test\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@r.test>\r\nDATA\r\n",
    b"MAIL FROM:<a@s.test>\r\nRCPT TO:<b@r.test>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n",
    b"MAIL FROM:<a@s.test> BODY=BINARYMIME\r\nRCPT TO:<b@r.test>\r\nBDAT 4 LAST\r\nab\r\n",
    b"EHLO c.test\r\n",
    b"HELO c.test\r\n",
    b"MAIL FROM:<a@s.test>\r\n",
    b"MAIL FROM:<a@s.test> BODY=BINARYMIME SMTPUTF8\r\n",
    b"RCPT TO:<b@r.test>\r\n",
    b"DATA\r\n",
    b"line\r\n",
    b"\r\n.\r\n",
    b".\r\n",
    b"..\r\n",
    b"BDAT 5\r\n",
    b"BDAT 3 LAST\r\n",
    f"AUTH PLAIN {PLAIN}\r\n".encode(),
    b"AUTH LOGIN\r\n",
    b"STARTTLS\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"QUIT\r\n",
    b"x" * 600,
    b"\n",
    b"\r",
    b"\0",
    b"\xff",
]
_DECISIONS = [
    Decision.accept(),
    Decision.accept(text="custom"),
    Decision.reject(),
    Decision.defer(),
    Decision.reject(disconnect=True),
    Decision.defer(disconnect=True),
    Decision.defer(code="421"),
    Decision.reject(code="521", enhanced="5.7.1", text="x" * 700),
]
_REPLY_LINE = re.compile(rb"[2-5][0-9][0-9][ -][\x09\x20-\x7e]*")
_ENHANCED = re.compile(r"[2-5][0-9][0-9][ -]([245])\.[0-9]{1,3}\.[0-9]{1,3} ")


def _check_replies(data: bytes) -> None:
    assert data.endswith(b"\r\n")
    for line in data.split(b"\r\n")[:-1]:
        assert len(line) + 2 <= 512 and _REPLY_LINE.fullmatch(line), line
        text = line.decode("ascii") + " "
        enhanced = _ENHANCED.match(text)
        if enhanced is None:  # RFC 2034: greeting, HELO/EHLO answer; RFC 3463 has no class 3
            assert text[:3] in ("220", "250", "334", "354"), line
        else:
            assert enhanced[1] == text[0], line


class _Driver:
    """Plays the adapter: answers every question, checks every reply."""

    def __init__(self, session: Session, decisions: list[Decision], outcomes: list[bool]) -> None:
        self.session = session
        self.decisions = decisions or [Decision.accept()]
        self.outcomes = outcomes or [True]
        self.asked = 0
        self.stores = 0
        self.closed = False

    def handle(self, actions: list[Action], *, after_store: str | None = None) -> None:
        data = b"".join(action.data for action in actions if isinstance(action, Send))
        if data:
            assert not self.closed
            _check_replies(data)
        queued = re.findall(rb"^250 2\.0\.0 Ok: queued as (\S+)\r$", data, re.M)
        if after_store is None:  # a 250 after the data only answers stored(True, …)
            assert queued == []
        else:
            assert queued == [after_store.encode()] or (queued == [] and self.closed)
        for action in actions:
            if isinstance(action, Close):
                self.closed = True
            elif isinstance(action, NeedDecision):
                decision = self.decisions[self.asked % len(self.decisions)]
                self.asked += 1
                self.handle(self.session.decided(decision))
            elif isinstance(action, Deliver):
                ok = self.outcomes[self.stores % len(self.outcomes)]
                self.stores += 1
                queue_id = f"Q{self.stores}"
                self.handle(self.session.stored(ok, queue_id), after_store=queue_id if ok else None)
            elif isinstance(action, StartTls):
                self.handle(self.session.tls_started())


@settings(max_examples=500, deadline=None)
@given(
    chunks=st.lists(
        st.one_of(st.sampled_from(_FRAGMENTS), st.sampled_from(_FRAGMENTS), st.binary(max_size=40)), max_size=40
    ),
    decisions=st.lists(st.sampled_from(_DECISIONS), max_size=6),
    outcomes=st.lists(st.booleans(), max_size=4),
    staged=st.sets(st.sampled_from([Stage.CONNECT, Stage.HELO, Stage.MAIL, Stage.RCPT, Stage.DATA, Stage.END_OF_DATA])),
    interrupt=st.sampled_from([None, "shutdown", "timed_out"]),
    where=st.integers(min_value=0, max_value=40),
)
def test_fuzz_never_raises_and_replies_are_well_formed(
    *,
    chunks: list[bytes],
    decisions: list[Decision],
    outcomes: list[bool],
    staged: set[Stage],
    interrupt: str | None,
    where: int,
) -> None:
    session = Session(
        SessionConfig(
            hostname=HOST,
            tls_available=True,
            credentials=check_password,
            auth_without_tls=True,
            chunking=True,
            decision_stages=frozenset(staged),
            limits=Limits(errors=30, message_size=2000),
        ),
        "198.51.100.7",
    )
    driver = _Driver(session, decisions, outcomes)
    driver.handle(session.start())
    for index, chunk in enumerate(chunks):
        if index == where and interrupt is not None:
            driver.handle(getattr(session, interrupt)())
        driver.handle(session.receive(chunk))
    assert driver.closed == session.closed
    assert PASSWORD not in "".join(line.text for line in session.transcript)


def test_outcome_is_the_most_severe_reply_of_the_session() -> None:
    session = greeted(decision_stages=frozenset({Stage.RCPT}))
    session.receive(b"MAIL FROM:<a@sender.test>\r\n")
    assert session.outcome == "250"
    session.receive(b"RCPT TO:<c@rcpt.test>\r\n")
    session.decided(Decision.reject(code="554", enhanced="5.7.1", text="Relay access denied"))
    assert codes(session.receive(b"NOOP\r\n")) == ["250 2.0.0"]
    session.receive(b"QUIT\r\n")
    assert session.outcome == "554"
