"""Scenarios (``smtplens.server.scenarios``): specs and their checks, matching, attempts, probability with a seeded
generator, the presets, the book, the policy, and the session's part (drop, cut in the middle of DATA)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import random
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtplens.model import Stage
from smtplens.server.decisions import Decision, DecisionError, Outcome, combine_accepted, reply_for
from smtplens.server.pipeline import Pipeline
from smtplens.server.policies import RelayPolicy
from smtplens.server.protocol import MailFrom, RcptTo, SessionConfig
from smtplens.server.scenarios import (
    Per,
    Scenario,
    ScenarioBook,
    ScenarioError,
    ScenarioPolicy,
    load_scenarios,
    presets,
)
from smtplens.server.scenarios.match import attempt_key, matches
from smtplens.server.scenarios.presets import preset_specs
from smtplens.server.session import Action, Close, Context, Deliver, Direction, Envelope, NeedDecision, Send, Session

HOST = "mx.lab.test"


def ctx(
    ip: str = "192.0.2.1", sender: str | None = "a@sender.test", rcpt: str | None = None, helo: str = "client.test"
) -> Context:
    mail = MailFrom(sender) if sender is not None else None
    return Context(Envelope(ip, helo, mail), RcptTo(rcpt) if rcpt else None)


def data_ctx(*recipients: str, sender: str = "a@sender.test") -> Context:
    return Context(Envelope("192.0.2.1", "client.test", MailFrom(sender), tuple(RcptTo(r) for r in recipients)))


def one(spec: dict[str, object], scenario_id: str = "t") -> Scenario:
    return ScenarioBook().add({"id": scenario_id, **spec})


def reply_text(stage: Stage, decision: Decision | None) -> str | None:
    if decision is None:
        return None
    reply = reply_for(stage, decision)
    return f"{reply.basic} {reply.enhanced} {' '.join(reply.text)}" if reply else "accept"


# --- specs ---------------------------------------------------------------------------------------------------


def test_a_reply_string_is_split_into_code_enhanced_code_and_text() -> None:
    scenario = one({"recipient": "421@*", "reply": "421 4.7.0 Try again later, closing connection."})
    assert scenario.trigger.stages == {Stage.RCPT}  # inferred from the recipient pattern
    effect = scenario.effect
    assert (effect.outcome, effect.code, effect.enhanced, effect.text) == (
        Outcome.DEFER,
        "421",
        "4.7.0",
        "Try again later, closing connection.",
    )


@pytest.mark.parametrize(
    ("spec", "stage"),
    [
        ({"reply": "554 5.7.1 no"}, Stage.CONNECT),
        ({"helo": "*.bad", "reply": "550 5.7.1 no"}, Stage.HELO),
        ({"sender": "*@spam.test", "reply": "550 5.7.1 no"}, Stage.MAIL),
        ({"recipient": "x@*", "sender": "*", "reply": "550 5.7.1 no"}, Stage.RCPT),
        ({"cut_after": 10}, Stage.DATA),
    ],
)
def test_the_stage_is_inferred_when_missing(spec: dict[str, object], stage: Stage) -> None:
    assert one(spec).trigger.stages == {stage}


def test_code_enhanced_and_text_fields_and_a_toml_integer_code() -> None:
    scenario = one({"stage": ["mail", "rcpt"], "code": 452, "enhanced": "4.2.2", "text": "Mailbox full"})
    assert scenario.trigger.stages == {Stage.MAIL, Stage.RCPT}
    assert (scenario.effect.code, scenario.effect.outcome) == ("452", Outcome.DEFER)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"recipent": "x@*", "reply": "550 no"}, "recipent: unknown field (did you mean 'recipient'?)"),
        ({"reply": "hello"}, "does not start with a reply code"),
        ({"reply": "250 ok", "code": "250"}, "either reply or code/enhanced/text"),
        ({"code": "600"}, "is not an SMTP reply code"),
        ({"stage": "rcpt", "code": "550", "enhanced": "4.1.1"}, "needs a 5.x.y enhanced code"),
        ({"text": "no code"}, "a text needs a code"),
        ({"code": "550", "outcome": "defer"}, "defer does not agree with the code 550"),
        ({"stage": "connect", "code": "450"}, "a greeting may be 220, 554, 521 or 421"),
        ({"stage": "connect", "sender": "*", "code": "554"}, "the sender is not known yet at connect"),
        ({"stage": ["mail", "rcpt"], "recipient": "*", "code": "550"}, "the recipient is not known yet at mail"),
        ({"stage": "helo", "per": "recipient", "code": "550"}, "cannot be counted per recipient"),
        ({"stage": "rcpt", "code": "450", "disconnect": True}, "a deferral that disconnects is a 421"),
        ({"stage": "rcpt", "reply": "250 fine", "disconnect": True}, "only a refusal"),
        ({"drop": True, "reply": "421 bye"}, "a dropped connection sends no reply"),
        ({"stage": "rcpt", "cut_after": 10}, "at the data stage only"),
        ({"stage": "data", "cut_after": 0}, "a positive whole number"),
        ({"stage": "data", "cut_after": 10, "code": "451"}, "no refusal"),
        ({"stage": "rcpt"}, "a scenario needs an effect"),
        ({"stage": "dot", "code": "550"}, "'dot' is not one of connect, helo"),
        ({"client": "300.1.1.1", "code": "554"}, "'300.1.1.1' is not an IP address"),
        ({"recipient": "", "code": "550"}, "expected a non-empty string"),
        ({"attempts": "0", "recipient": "*", "code": "450"}, "attempts count from 1"),
        ({"attempts": "4-2", "recipient": "*", "code": "450"}, "may not run backwards"),
        ({"attempts": "two", "recipient": "*", "code": "450"}, "is not an attempt number"),
        ({"probability": 1.5, "code": "554"}, "is not between 0 and 1"),
        ({"probability": "often", "code": "554"}, "expected a number"),
        ({"delay": -1}, "is not between 0 and 3600"),
        ({"slow": 0}, "a slow link needs a positive number"),
        ({"enabled": "yes", "code": "554"}, "expected true or false"),
        ({"code": "554", "text": "hi {name}"}, "unknown placeholder {name}"),
        ({"code": "554", "text": "café"}, "printable ASCII"),
        ({"code": "554", "text": "a\r\nb"}, "must not be empty and not contain CR"),
        ({"per": "day", "code": "554"}, "'day' is not one of triplet"),
    ],
)
def test_wrong_specs_say_which_field_is_wrong_and_why(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError) as error:
        one(spec)
    assert message in str(error.value)
    assert str(error.value).startswith("scenario 't': ")


def test_a_wrong_id_preset_or_shape_is_refused() -> None:
    book = ScenarioBook()
    with pytest.raises(ScenarioError, match="scenario id 'a b'"):
        book.add({"id": "a b", "code": "554"})
    with pytest.raises(ScenarioError, match="no preset 'gmail-rate-limt' \\(did you mean 'gmail-rate-limit'\\?\\)"):
        book.add({"preset": "gmail-rate-limt"})
    with pytest.raises(ScenarioError, match="a scenario spec is a table"):
        book.add(["code", "554"])  # type: ignore[arg-type]
    assert book.list() == []


def test_ids_are_assigned_from_the_preset_or_the_name_and_kept_unique() -> None:
    book = ScenarioBook()
    assert book.add({"name": "Slow greeting!", "delay": 1.0}).id == "slow-greeting"
    assert book.add({"name": "Slow greeting!", "delay": 2.0}).id == "slow-greeting-1"
    assert book.add({"delay": 3.0}).id == "scenario-1"
    assert book.add({"delay": 4.0}).id == "scenario-2"
    assert book.add({"preset": "gmail-rate-limit"}).id == "gmail-rate-limit"
    assert book.add({"preset": "gmail-rate-limit", "client": "192.0.2.9"}).id == "gmail-rate-limit-1"
    assert [item.name for item in book.list()][:2] == ["Slow greeting!", "Slow greeting!"]


def test_to_json_round_trips_through_add() -> None:
    book = ScenarioBook()
    specs: list[dict[str, object]] = [
        {"id": "a", "stage": ["rcpt", "data"], "client": ["127.0.0.2", "2001:db8::/32"], "sender": "*@X.test",
         "recipient": ["421@*", "*+Greylist@*"], "attempts": [1, "3-"], "per": "recipient", "probability": 0.25,
         "reply": "421 4.7.0 {hostname} bye\nsecond line", "delay": 1.5, "slow": 100, "source": "test"},
        {"id": "b", "stage": "data", "cut_after": 100, "enabled": False},
        {"id": "c", "stage": "end_of_data", "drop": True, "delay": 0.5},
        {"id": "d", "helo": "*.bad", "outcome": "reject"},
    ]  # fmt: skip
    for spec in specs:
        scenario = book.add(spec)
        again = ScenarioBook().add(scenario.to_json())
        assert again == scenario
    for name, preset in presets().items():
        again = ScenarioBook().add(preset.to_json())
        assert again == dataclasses.replace(preset, preset=None), name


def test_a_preset_with_overrides_keeps_the_rest_and_a_new_reply_replaces_the_whole_reply() -> None:
    book = ScenarioBook()
    narrowed = book.add({"preset": "yahoo-deferred-tss04", "client": "127.0.0.3", "probability": 0.5})
    assert narrowed.effect == presets()["yahoo-deferred-tss04"].effect
    assert narrowed.trigger.clients[0].with_prefixlen == "127.0.0.3/32"
    assert narrowed.preset == "yahoo-deferred-tss04"
    reworded = book.add({"preset": "gmail-rate-limit", "reply": "451 4.7.1 slow down"})
    assert (reworded.effect.code, reworded.effect.enhanced, reworded.effect.text) == ("451", "4.7.1", "slow down")
    retexted = book.add({"preset": "gmail-no-such-user", "text": "No such user here"})
    assert (retexted.effect.code, retexted.effect.text) == ("550", "No such user here")


def test_load_scenarios_reads_the_scenario_tables_of_a_toml_document() -> None:
    data = tomllib.loads(
        """
        [[scenario]]
        recipient = "421@*"
        reply = "421 4.7.0 closing"

        [[scenario]]
        id = "grey"
        preset = "greylist-plus-address"

        [[scenario]]
        stage = "connect"
        client = "127.0.0.2"
        reply = "554 5.7.1 go away"
        enabled = false
        """
    )
    scenarios = load_scenarios(data)
    assert [item.id for item in scenarios] == ["scenario-1", "grey", "scenario-2"]
    assert [item.enabled for item in scenarios] == [True, True, False]
    assert load_scenarios({}) == []
    with pytest.raises(ScenarioError, match=r"\[\[scenario\]\] #2: scenario 'scenario-2': code"):
        load_scenarios({"scenario": [{"recipient": "*", "code": "550"}, {"code": "9"}]})
    with pytest.raises(ScenarioError, match=r"#2: scenario id 'x' is used twice"):
        load_scenarios({"scenario": [{"id": "x", "code": "554"}, {"id": "x", "code": "554"}]})
    with pytest.raises(ScenarioError, match=r"\[\[scenario\]\] tables"):
        load_scenarios({"scenario": {"code": "554"}})


# --- matching --------------------------------------------------------------------------------------------------


def test_address_globs_are_case_insensitive_and_the_null_sender_is_angle_brackets() -> None:
    trigger = one({"recipient": ["421@*", "*+greylist@*"], "code": "421"}).trigger
    assert matches(trigger, Stage.RCPT, ctx(rcpt="421@lab.test"))
    assert matches(trigger, Stage.RCPT, ctx(rcpt="Bob+GreyList@Lab.Test"))
    assert not matches(trigger, Stage.RCPT, ctx(rcpt="bob@lab.test"))
    assert not matches(trigger, Stage.MAIL, ctx(rcpt="421@lab.test"))  # not its stage
    bounces = one({"sender": "<>", "code": "550"}).trigger
    assert matches(bounces, Stage.MAIL, ctx(sender=""))
    assert not matches(bounces, Stage.MAIL, ctx(sender="a@b.test"))


def test_client_networks_helo_and_recipients_at_data() -> None:
    trigger = one(
        {"stage": "end_of_data", "client": "192.0.2.0/28", "helo": "*.test", "recipient": "x@*", "code": "554"}
    ).trigger
    assert matches(trigger, Stage.END_OF_DATA, data_ctx("a@lab.test", "X@lab.test"))
    assert not matches(trigger, Stage.END_OF_DATA, data_ctx("a@lab.test"))
    outside = Context(Envelope("192.0.2.99", "c.test", MailFrom("a@b"), (RcptTo("x@lab.test"),)))
    assert not matches(trigger, Stage.END_OF_DATA, outside)
    v6 = Context(Envelope("2001:db8::1", "c.test", MailFrom("a@b"), (RcptTo("x@lab.test"),)))
    assert not matches(trigger, Stage.END_OF_DATA, v6)


def test_attempt_keys_per_triplet_client_sender_recipient_and_all() -> None:
    context = ctx(ip="192.0.2.1", sender="A@S.test", rcpt="B@R.test")
    assert attempt_key(Per.TRIPLET, Stage.RCPT, context) == ("192.0.2.1", "a@s.test", "b@r.test")
    assert attempt_key(Per.TRIPLET, Stage.CONNECT, ctx(sender=None)) == ("192.0.2.1", "", "")
    assert attempt_key(Per.CLIENT, Stage.RCPT, context) == ("192.0.2.1",)
    assert attempt_key(Per.SENDER, Stage.RCPT, context) == ("a@s.test",)
    assert attempt_key(Per.RECIPIENT, Stage.RCPT, context) == ("b@r.test",)
    assert attempt_key(Per.ALL, Stage.RCPT, context) == ()
    assert attempt_key(Per.RECIPIENT, Stage.DATA, data_ctx("z@a", "Y@a")) == ("y@a,z@a",)


# --- the policy ------------------------------------------------------------------------------------------------


def decide(policy: ScenarioPolicy, stage: Stage, context: Context) -> Decision | None:
    return asyncio.run(policy.check(stage, context))


def test_greylist_by_address_defers_the_first_attempt_of_a_triplet_and_accepts_the_retry() -> None:
    book = ScenarioBook()
    book.add({"preset": "greylist-plus-address"})
    policy = ScenarioPolicy(book, hostname=HOST)
    first = decide(policy, Stage.RCPT, ctx(rcpt="bob+greylist@lab.test"))
    assert reply_text(Stage.RCPT, first) == (
        "450 4.2.0 <bob+greylist@lab.test>: Recipient address rejected: Greylisted, see "
        "http://postgrey.schweikert.ch/help/lab.test.html"
    )
    assert first is not None and first.policy == "scenario:greylist-plus-address"
    assert decide(policy, Stage.RCPT, ctx(rcpt="bob+greylist@lab.test")) is None
    assert decide(policy, Stage.RCPT, ctx(ip="192.0.2.7", rcpt="bob+greylist@lab.test")) is not None  # new triplet
    assert decide(policy, Stage.RCPT, ctx(rcpt="bob@lab.test")) is None


@pytest.mark.parametrize(
    ("attempts", "fired"),
    [
        (3, [False, False, True, False, False]),
        ("2-3", [False, True, True, False, False]),
        ("4-", [False, False, False, True, True]),
        ([1, "5"], [True, False, False, False, True]),
    ],
)
def test_attempt_numbers(attempts: object, fired: list[bool]) -> None:
    book = ScenarioBook()
    book.add({"recipient": "*", "attempts": attempts, "per": "recipient", "reply": "451 4.3.0 later"})
    policy = ScenarioPolicy(book)
    senders = ["a@x.test", "b@y.test", "c@z.test", "d@x.test", "e@x.test"]  # per recipient: the sender is not counted
    assert [decide(policy, Stage.RCPT, ctx(sender=s, rcpt="r@lab.test")) is not None for s in senders] == fired


def test_probability_uses_the_books_generator_so_a_seed_repeats_the_run() -> None:
    def run(seed: int) -> list[bool]:
        book = ScenarioBook(rng=random.Random(seed))
        book.add({"recipient": "*", "probability": 0.3, "reply": "451 4.3.0 chaos"})
        policy = ScenarioPolicy(book)
        return [decide(policy, Stage.RCPT, ctx(rcpt=f"u{n}@lab.test")) is not None for n in range(200)]

    first = run(7)
    assert first == run(7)
    expected = random.Random(7)
    assert first == [expected.random() < 0.3 for _ in range(200)]  # one draw per matching attempt
    assert 0 < sum(first) < 200
    never = ScenarioBook(rng=random.Random(1))
    never.add({"recipient": "*", "probability": 0, "reply": "451 4.3.0 chaos"})
    assert decide(ScenarioPolicy(never), Stage.RCPT, ctx(rcpt="u@lab.test")) is None


def test_the_first_scenario_that_fires_answers_and_disabled_ones_are_skipped() -> None:
    book = ScenarioBook()
    book.add({"id": "off", "recipient": "*", "reply": "550 5.1.1 off", "enabled": False})
    book.add({"id": "a", "recipient": "a*", "reply": "550 5.1.1 first"})
    book.add({"id": "b", "recipient": "*", "reply": "452 4.2.2 second"})
    policy = ScenarioPolicy(book)
    assert reply_text(Stage.RCPT, decide(policy, Stage.RCPT, ctx(rcpt="al@x"))) == "550 5.1.1 first"
    assert reply_text(Stage.RCPT, decide(policy, Stage.RCPT, ctx(rcpt="bo@x"))) == "452 4.2.2 second"
    assert book.set_enabled("off", True) is not None
    assert reply_text(Stage.RCPT, decide(policy, Stage.RCPT, ctx(rcpt="al@x"))) == "550 5.1.1 off"
    assert book.remove("off") and not book.remove("off")
    assert book.set_enabled("nope", True) is None
    book.clear()
    assert decide(policy, Stage.RCPT, ctx(rcpt="al@x")) is None


def test_replacing_a_scenario_keeps_its_place_and_restarts_its_attempts() -> None:
    book = ScenarioBook()
    book.add({"id": "g", "recipient": "*", "attempts": 1, "reply": "450 4.2.0 grey"})
    book.add({"id": "z", "recipient": "*", "reply": "550 5.1.1 z"})
    policy = ScenarioPolicy(book)
    assert reply_text(Stage.RCPT, decide(policy, Stage.RCPT, ctx(rcpt="r@x"))) == "450 4.2.0 grey"
    assert reply_text(Stage.RCPT, decide(policy, Stage.RCPT, ctx(rcpt="r@x"))) == "550 5.1.1 z"
    book.add({"id": "g", "recipient": "*", "attempts": 1, "reply": "451 4.7.1 grey again"})
    assert [item.id for item in book.list()] == ["g", "z"]
    assert reply_text(Stage.RCPT, decide(policy, Stage.RCPT, ctx(rcpt="r@x"))) == "451 4.7.1 grey again"


def test_attempt_counters_forget_the_oldest_key_beyond_the_limit() -> None:
    book = ScenarioBook(max_keys=2)
    for key in ("a", "b", "a", "c"):
        book.attempt("s", (key,))
    assert (book.attempts("s", ("a",)), book.attempts("s", ("b",)), book.attempts("s", ("c",))) == (2, 0, 1)
    book.reset_attempts()
    assert book.attempts("s", ("a",)) == 0


def test_placeholders_are_filled_when_the_scenario_fires() -> None:
    book = ScenarioBook()
    book.add({"preset": "yahoo-deferred-tss04"})
    book.add({"preset": "gmail-dmarc-reject"})
    book.add({"preset": "postfix-too-many-connections"})
    policy = ScenarioPolicy(book, hostname=HOST)
    mail = decide(policy, Stage.MAIL, ctx(ip="203.0.113.5"))
    assert reply_text(Stage.MAIL, mail) == (
        "421 4.7.0 [TSS04] Messages from 203.0.113.5 temporarily deferred due to unexpected volume or user "
        "complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
    )
    end = decide(policy, Stage.END_OF_DATA, data_ctx("r@lab.test", sender="x@brand.test"))
    assert reply_text(Stage.END_OF_DATA, end) is not None
    assert "Unauthenticated email from brand.test is not accepted due to domain's DMARC policy" in str(end)
    greeting = decide(policy, Stage.CONNECT, ctx(ip="192.0.2.3", sender=None))
    assert reply_text(Stage.CONNECT, greeting) == "421 4.7.0 mx.lab.test Error: too many connections from 192.0.2.3"


def test_in_a_pipeline_the_relay_rule_comes_first_and_accepting_effects_are_kept() -> None:
    book = ScenarioBook()
    book.add({"id": "slow", "stage": "mail", "delay": 2.5, "slow": 50})
    book.add({"id": "no", "recipient": "*", "reply": "550 5.1.1 nope"})
    pipeline = Pipeline([RelayPolicy(["lab.test"]), ScenarioPolicy(book)])
    mail = asyncio.run(pipeline.decide(Stage.MAIL, ctx()))
    assert (mail.outcome, mail.delay, mail.slow, mail.policy) == (Outcome.ACCEPT, 2.5, 50.0, "scenario:slow")
    relayed = asyncio.run(pipeline.decide(Stage.RCPT, ctx(rcpt="x@other.test")))
    assert relayed.policy == "relay"
    assert asyncio.run(pipeline.decide(Stage.RCPT, ctx(rcpt="x@lab.test"))).policy == "scenario:no"


# --- decisions -------------------------------------------------------------------------------------------------


def test_decision_effects_are_checked() -> None:
    with pytest.raises(DecisionError, match="delay"):
        Decision(delay=-1)
    with pytest.raises(DecisionError, match="slow"):
        Decision(slow=float("nan"))
    with pytest.raises(DecisionError, match="must disconnect"):
        Decision(Outcome.DEFER, drop=True)
    with pytest.raises(DecisionError, match="cut_after"):
        Decision(Outcome.REJECT, cut_after=5)
    assert Decision.dropped(delay=1).effects
    assert not Decision().effects


def test_combine_accepted_keeps_the_first_text_all_headers_and_the_strongest_effects() -> None:
    first = Decision.accept(text="hello", policy="a", headers=("X-A: 1",))
    then = Decision(delay=2.0, slow=10.0, cut_after=5, headers=("X-B: 2",), policy="b")
    combined = combine_accepted(first, then)
    assert (combined.text, combined.policy, combined.headers) == ("hello", "a", ("X-A: 1", "X-B: 2"))
    assert (combined.delay, combined.slow, combined.cut_after) == (2.0, 10.0, 5)
    assert combine_accepted(Decision(), then).policy == "b"
    assert combine_accepted(Decision(slow=5.0), Decision(slow=10.0)).slow == 5.0


# --- presets ---------------------------------------------------------------------------------------------------


def test_every_preset_loads_has_a_source_and_a_name() -> None:
    loaded = presets()
    assert set(loaded) == set(preset_specs())
    assert len(loaded) >= 20
    for name, scenario in loaded.items():
        assert scenario.id == name and scenario.preset == name
        assert scenario.source and len(scenario.source) > 10, name
        assert scenario.name != name, name
    providers = {name.split("-")[0] for name in loaded}
    assert {"postfix", "gmail", "outlook", "yahoo", "postgrey"} <= providers


def test_preset_texts_quote_the_real_servers() -> None:
    loaded = presets()
    gmail = loaded["gmail-no-such-user"].effect
    assert (gmail.code, gmail.enhanced) == ("550", "5.1.1")
    assert gmail.text is not None and gmail.text.startswith("The email account that you tried to reach does not exist.")
    assert loaded["gmail-try-again-later"].effect.text == "Try again later, closing connection."
    assert "(S3150)" in str(loaded["outlook-blocklist-s3150"].effect.text)
    assert loaded["postgrey-greylist"].trigger.attempts and loaded["gmail-over-quota"].effect.code == "452"
    assert loaded["cut-mid-data"].effect.cut_after == 1024
    assert loaded["drop-at-greeting"].effect.drop


# --- the session's part ----------------------------------------------------------------------------------------


class Driver:
    """A real Session answered synchronously by a real ScenarioPolicy (what net.py does, without sockets)."""

    def __init__(self, book: ScenarioBook, ip: str = "192.0.2.1") -> None:
        self.policy = ScenarioPolicy(book, hostname=HOST)
        self.session = Session(SessionConfig(hostname=HOST), ip)
        self.delivered: list[bytes] = []
        self.closed = False
        self.decisions: list[Decision] = []

    def run(self, actions: Iterable[Action]) -> list[str]:
        todo = list(actions)
        out: list[str] = []
        while todo:
            action = todo.pop(0)
            if isinstance(action, Send):
                out += action.data.decode("ascii").split("\r\n")[:-1]
            elif isinstance(action, Close):
                self.closed = True
            elif isinstance(action, NeedDecision):
                decision = self.policy.decide(action.stage, action.context) or Decision.accept()
                self.decisions.append(decision)
                todo += self.session.decided(decision)
            elif isinstance(action, Deliver):
                self.delivered.append(action.message)
                todo += self.session.stored(True, "Q1")
        return out

    def start(self) -> list[str]:
        return self.run(self.session.start())

    def send(self, data: bytes) -> list[str]:
        return self.run(self.session.receive(data))

    def notes(self) -> list[tuple[str, str | None]]:
        return [(line.text, line.policy) for line in self.session.transcript if line.direction is Direction.NOTE]


def test_a_drop_closes_with_no_reply_and_notes_who_dropped() -> None:
    book = ScenarioBook()
    book.add({"id": "gone", "stage": "end_of_data", "drop": True})
    driver = Driver(book)
    assert driver.start()[0].startswith("220 ")
    driver.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r@lab.test>\r\nDATA\r\n")
    assert driver.send(b"Subject: x\r\n\r\nhi\r\n.\r\n") == []
    assert driver.closed and driver.session.closed and driver.delivered == []
    assert ("connection dropped without a reply", "scenario:gone") in driver.notes()


def test_a_drop_at_connect_sends_no_greeting() -> None:
    book = ScenarioBook()
    book.add({"preset": "drop-at-greeting", "client": "192.0.2.0/24"})
    driver = Driver(book)
    assert driver.start() == []
    assert driver.closed
    other = Driver(book, ip="198.51.100.1")
    assert other.start()[0].startswith("220 ")


def test_a_cut_accepts_data_then_closes_after_the_octets_without_answering() -> None:
    book = ScenarioBook()
    book.add({"id": "cut", "cut_after": 40})
    driver = Driver(book)
    driver.start()
    replies = driver.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r@lab.test>\r\nDATA\r\n")
    assert replies[-1].startswith("354 ")
    assert driver.send(b"Subject: part one\r\n\r\n") == [] and not driver.closed  # 21 octets so far
    assert driver.send(b"twenty more octets..\r\nand the rest\r\n.\r\n") == []
    assert driver.closed and driver.delivered == []
    assert ("connection cut after 60 octets of message data", "scenario:cut") in driver.notes()


def test_a_cut_also_ends_a_message_shorter_than_the_cut() -> None:
    book = ScenarioBook()
    book.add({"id": "cut", "cut_after": 10_000})
    driver = Driver(book)
    driver.start()
    driver.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r@lab.test>\r\nDATA\r\n")
    assert driver.send(b"Subject: short\r\n\r\nhi\r\n.\r\n") == []
    assert driver.closed and driver.delivered == []


def test_delays_and_slow_links_are_noted_in_the_transcript() -> None:
    book = ScenarioBook()
    book.add({"id": "slow", "stage": "connect", "delay": 1.5, "slow": 300})
    driver = Driver(book)
    assert driver.start()[0] == f"220 {HOST} ESMTP smtplens"
    assert driver.decisions[0].delay == 1.5 and driver.decisions[0].slow == 300.0
    assert driver.notes() == [
        ("reply delayed 1.5 s", "scenario:slow"),
        ("slow link: 300 octets/s from now on", "scenario:slow"),
    ]


def test_a_421_scenario_closes_and_a_554_greeting_refuses_the_session() -> None:
    book = ScenarioBook()
    book.add({"preset": "address-421"})
    book.add({"id": "banner", "stage": "connect", "client": "192.0.2.2", "reply": "554 5.7.1 not you"})
    driver = Driver(book)
    driver.start()
    replies = driver.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<421@lab.test>\r\n")
    assert replies[-1] == f"421 4.7.0 {HOST} Service not available, closing transmission channel"
    assert driver.closed
    refused = Driver(book, ip="192.0.2.2")
    assert refused.start() == ["554 5.7.1 not you"]
    assert refused.send(b"EHLO c.test\r\n")[0].startswith("503 5.7.0")


def test_a_cut_under_bdat_closes_once_the_first_chunk_is_read() -> None:
    book = ScenarioBook()
    book.add({"id": "cut", "cut_after": 5})
    driver = Driver(book)
    driver.session = Session(SessionConfig(hostname=HOST, chunking=True), "192.0.2.1")
    driver.start()
    driver.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r@lab.test>\r\n")
    assert driver.send(b"BDAT 12 LAST\r\nSubject: x\r\n") == []
    assert driver.closed and driver.delivered == []
    assert ("connection cut after 12 octets of BDAT", "scenario:cut") in driver.notes()


_FAULTS = [
    {"stage": "connect", "drop": True},
    {"stage": "helo", "drop": True, "delay": 0.1},
    {"stage": "rcpt", "recipient": "*", "drop": True, "probability": 0.5},
    {"stage": "data", "cut_after": 7},
    {"stage": "end_of_data", "drop": True},
    {"stage": ["mail", "rcpt"], "reply": "421 4.7.0 bye", "probability": 0.3},
    {"stage": "rcpt", "recipient": "*", "reply": "550 5.1.1 no", "disconnect": True},
    {"stage": "mail", "slow": 10, "delay": 1},
]


@settings(max_examples=150, deadline=None)
@given(
    faults=st.lists(st.sampled_from(range(len(_FAULTS))), max_size=4),
    chunks=st.lists(
        st.sampled_from(
            [b"EHLO c\r\n", b"MAIL FROM:<a@b>\r\n", b"RCPT TO:<r@x>\r\n", b"DATA\r\n", b"hi\r\n", b".\r\n", b"RSET\r\n"]
        )
        | st.binary(max_size=20),
        max_size=14,
    ),
    seed=st.integers(0, 2**16),
)
def test_faults_never_break_the_session(faults: list[int], chunks: list[bytes], seed: int) -> None:
    book = ScenarioBook(rng=random.Random(seed))
    for index in faults:
        book.add(_FAULTS[index])
    driver = Driver(book)
    driver.start()
    for chunk in chunks:
        driver.send(chunk)
        if driver.session.closed:
            assert driver.closed
            break
    assert all(decision.outcome in Outcome for decision in driver.decisions)


def test_the_docs_list_every_preset() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text(encoding="utf-8")
    missing = [name for name in presets() if f"| `{name}` |" not in docs]
    assert missing == []


# --- the auth stage ------------------------------------------------------------------------------------------------

USER, PASSWORD = "alice", "s3cret"
PLAIN = b"AUTH PLAIN " + base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()) + b"\r\n"


class AuthDriver(Driver):
    """A Driver whose session offers AUTH (without TLS) and asks only about the stages the pipeline wants now,
    as ``net.py`` does; it records the stages asked about and the verifier's calls."""

    def __init__(self, book: ScenarioBook) -> None:
        super().__init__(book)
        self.asked: list[Stage] = []
        self.verified: list[str] = []
        config = SessionConfig(hostname=HOST, credentials=self.verify, auth_without_tls=True)
        self.session = Session(config, "192.0.2.1", wants=Pipeline([self.policy]).wants)

    def verify(self, user: str, password: str) -> bool:
        self.verified.append(user)
        return (user, password) == (USER, PASSWORD)

    def run(self, actions: Iterable[Action]) -> list[str]:
        todo = list(actions)
        self.asked += [action.stage for action in todo if isinstance(action, NeedDecision)]
        out: list[str] = []
        for action in todo:  # a decision's answer is run (and its own NeedDecision recorded) by the recursive call
            if isinstance(action, NeedDecision):
                decision = self.policy.decide(action.stage, action.context) or Decision.accept()
                self.decisions.append(decision)
                out += self.run(self.session.decided(decision))
            else:
                out += super().run([action])
        return out

    def server_lines(self) -> list[tuple[str, str | None]]:
        return [(line.text, line.policy) for line in self.session.transcript if line.direction is Direction.SERVER]


def test_the_auth_stage_has_the_standard_codes_of_rfc_4954() -> None:
    assert reply_text(Stage.AUTH, Decision.reject()) == "535 5.7.8 Authentication credentials invalid"
    assert reply_text(Stage.AUTH, Decision.defer()) == "454 4.7.0 Temporary authentication failure"
    closing = reply_for(Stage.AUTH, Decision.defer(disconnect=True))
    assert closing is not None and closing.basic == "421"  # RFC 5321 3.8: only a 421 closes


def test_scenarios_accept_the_auth_stage_with_client_and_helo_patterns_but_no_sender() -> None:
    scenario = one({"stage": "auth", "helo": "*.bad", "reply": "535 5.7.8 no"})
    assert scenario.trigger.stages == {Stage.AUTH} and scenario.to_json()["stage"] == "auth"
    with pytest.raises(ScenarioError, match="the sender is not known yet at auth"):
        one({"stage": "auth", "sender": "*", "code": "535"})
    with pytest.raises(ScenarioError, match="cannot be counted per sender"):
        one({"stage": "auth", "per": "sender", "code": "535"})
    context = Context(Envelope("192.0.2.1", "x.bad"))
    assert matches(scenario.trigger, Stage.AUTH, context) and not matches(scenario.trigger, Stage.HELO, context)
    assert attempt_key(Per.TRIPLET, Stage.AUTH, context) == ("192.0.2.1", "", "")


def test_auth_is_not_asked_about_unless_a_scenario_wants_it() -> None:
    book = ScenarioBook()
    book.add({"id": "late", "stage": "rcpt", "recipient": "x@*", "reply": "550 5.1.1 no"})
    driver = AuthDriver(book)
    driver.start()
    assert driver.send(b"EHLO c.test\r\n" + PLAIN)[-1] == "235 2.7.0 Authentication successful"
    assert driver.asked == [] and driver.verified == [USER]


def test_a_refusing_auth_scenario_answers_535_before_the_exchange_and_is_named_in_the_transcript() -> None:
    book = ScenarioBook()
    book.add({"id": "no-auth", "stage": "auth", "outcome": "reject"})
    driver = AuthDriver(book)
    driver.start()
    assert driver.send(b"EHLO c.test\r\n")[0] == f"250-{HOST}"
    assert driver.send(PLAIN) == ["535 5.7.8 Authentication credentials invalid"]
    assert driver.asked == [Stage.AUTH] and driver.verified == []  # the credentials were never looked at
    assert ("535 5.7.8 Authentication credentials invalid", "scenario:no-auth") in driver.server_lines()
    assert driver.session.envelope.auth is None and not driver.closed
    assert driver.send(b"AUTH LOGIN\r\n") == ["535 5.7.8 Authentication credentials invalid"]  # no 334 prompt


def test_a_deferring_auth_scenario_answers_454_and_a_preset_quotes_gmail() -> None:
    book = ScenarioBook()
    book.add({"id": "later", "stage": "auth", "outcome": "defer", "attempts": 1, "per": "client"})
    book.add({"preset": "gmail-bad-credentials", "attempts": 1, "per": "client"})  # tried once "later" lets go
    driver = AuthDriver(book)
    driver.start()
    driver.send(b"EHLO c.test\r\n")
    assert driver.send(PLAIN) == ["454 4.7.0 Temporary authentication failure"]
    assert driver.send(b"AUTH LOGIN\r\n") == [
        "535-5.7.8 Username and Password not accepted. For more information, go to",
        "535 5.7.8 https://support.google.com/mail/?p=BadCredentials - gsmtp",
    ]
    assert driver.send(PLAIN) == ["235 2.7.0 Authentication successful"]  # the third attempt: nothing fires
    assert driver.asked == [Stage.AUTH] * 3 and driver.verified == [USER]


def test_an_accepting_auth_decision_lets_the_exchange_go_on_as_before() -> None:
    book = ScenarioBook()
    book.add({"id": "slow-auth", "stage": "auth", "delay": 0.5})
    driver = AuthDriver(book)
    driver.start()
    driver.send(b"EHLO c.test\r\n")
    assert driver.send(b"AUTH LOGIN\r\n") == ["334 VXNlcm5hbWU6"]
    assert driver.send(base64.b64encode(USER.encode()) + b"\r\n") == ["334 UGFzc3dvcmQ6"]
    assert driver.send(base64.b64encode(PASSWORD.encode()) + b"\r\n") == ["235 2.7.0 Authentication successful"]
    assert driver.session.envelope.auth == USER
    assert ("reply delayed 0.5 s", "scenario:slow-auth") in driver.notes()


def test_a_disconnecting_auth_scenario_closes_and_a_wrong_auth_command_is_never_asked_about() -> None:
    book = ScenarioBook()
    book.add({"id": "bye", "stage": "auth", "reply": "421 4.7.0 Too many AUTH attempts", "disconnect": True})
    driver = AuthDriver(book)
    driver.start()
    assert driver.send(b"AUTH PLAIN\r\n")[0].startswith("503 5.5.1")  # no EHLO yet: refused before any policy
    driver.send(b"EHLO c.test\r\n")
    assert driver.send(b"AUTH CRAM-MD5\r\n")[0].startswith("504 5.5.4")
    assert driver.asked == []
    assert driver.send(PLAIN) == ["421 4.7.0 Too many AUTH attempts"]
    assert driver.closed and driver.session.closed
