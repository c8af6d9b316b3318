"""The server's hot path: stages nobody wants are not asked about, synchronous decisions need no task, one
timer per connection (the store's one data sync per group of messages: tests/test_server_store_segments.py)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable

from smtplens.model import Stage
from smtplens.server.decisions import ACCEPTED, Decision, Outcome
from smtplens.server.net import ServerConfig, SmtpServer, new_event_loop
from smtplens.server.pipeline import Pipeline
from smtplens.server.policies import RelayPolicy
from smtplens.server.protocol import MailFrom, RcptTo, SessionConfig
from smtplens.server.scenarios import ScenarioBook, ScenarioPolicy
from smtplens.server.session import Context, Envelope, NeedDecision, Send, Session
from smtplens.server.store_null import NullStore

MESSAGE = b"From: a@sender.test\r\nSubject: hot path\r\n\r\nHello.\r\n"


def rcpt_context(recipient: str) -> Context:
    return Context(Envelope("192.0.2.1", "client.test", MailFrom("a@sender.test")), RcptTo(recipient))


class Waiting:
    """A policy without ``check_now`` whose check really awaits (as a DNS lookup would)."""

    name = "waiting"
    stages = frozenset({Stage.RCPT})

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        async with asyncio.timeout(5):  # needs a task: must never run outside one
            await asyncio.sleep(0)
        return Decision.defer(text="waited")


class Sometimes:
    """A policy whose ``check_now`` answers only for one address and otherwise asks to be awaited."""

    name = "sometimes"
    stages = frozenset({Stage.RCPT})

    def check_now(self, stage: Stage, context: Context) -> Decision | None:
        assert context.recipient is not None
        if context.recipient.address.startswith("now@"):
            return Decision.reject(text="at once")
        return NotImplemented  # type: ignore[no-any-return]

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        await asyncio.sleep(0)
        return Decision.reject(text="later")


class Broken:
    name = "broken"
    stages = frozenset({Stage.RCPT})

    def check_now(self, stage: Stage, context: Context) -> Decision | None:
        raise RuntimeError("boom")

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        raise RuntimeError("boom")


# --- which stages are asked about -------------------------------------------------------------------------------


def test_the_pipeline_wants_the_stages_of_its_policies_and_of_the_enabled_scenarios() -> None:
    book = ScenarioBook()
    pipeline = Pipeline([ScenarioPolicy(book), RelayPolicy(["lab.test"])])
    assert [stage for stage in Stage if pipeline.wants(stage)] == [Stage.RCPT]
    book.add({"id": "grey", "stage": "mail", "sender": "*@grey.test", "code": "451"})
    book.add({"id": "eod", "stage": "end_of_data", "code": "554"})
    assert {stage for stage in Stage if pipeline.wants(stage)} == {Stage.MAIL, Stage.RCPT, Stage.END_OF_DATA}
    book.set_enabled("eod", False)
    assert not pipeline.wants(Stage.END_OF_DATA)
    book.remove("grey")
    assert not pipeline.wants(Stage.MAIL)
    book.set_enabled("eod", True)
    assert pipeline.wants(Stage.END_OF_DATA)
    book.clear()
    assert book.stages == frozenset()


def test_a_session_accepts_at_once_the_stages_nobody_wants_and_asks_about_the_others() -> None:
    wanted: set[Stage] = {Stage.RCPT}
    session = Session(SessionConfig(hostname="mx.test"), "192.0.2.1", wants=wanted.__contains__)
    assert not any(isinstance(action, NeedDecision) for action in session.start())
    actions = session.receive(b"EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<b@lab.test>\r\n")
    asked = [action for action in actions if isinstance(action, NeedDecision)]
    assert [action.stage for action in asked] == [Stage.RCPT]
    session.decided(Decision.accept())
    wanted.add(Stage.DATA)  # interest changes while the session runs: the next command sees it
    actions = session.receive(b"DATA\r\n")
    assert [action.stage for action in actions if isinstance(action, NeedDecision)] == [Stage.DATA]


def test_a_configured_stage_list_still_limits_what_is_asked() -> None:
    session = Session(
        SessionConfig(hostname="mx.test", decision_stages=frozenset({Stage.MAIL})), wants=lambda stage: True
    )
    session.start()
    actions = session.receive(b"HELO c.test\r\nMAIL FROM:<a@sender.test>\r\n")
    assert [action.stage for action in actions if isinstance(action, NeedDecision)] == [Stage.MAIL]


# --- synchronous decisions -----------------------------------------------------------------------------------


def test_check_now_policies_decide_without_an_event_loop() -> None:
    """No loop is running here: a decision that needed a task or a coroutine could not be made at all."""
    pipeline = Pipeline([ScenarioPolicy(ScenarioBook()), RelayPolicy(["lab.test"])])
    accepted = pipeline.decide_now(Stage.RCPT, rcpt_context("bob@lab.test"))
    refused = pipeline.decide_now(Stage.RCPT, rcpt_context("bob@elsewhere.test"))
    assert isinstance(accepted, Decision) and accepted.outcome is Outcome.ACCEPT
    assert isinstance(refused, Decision) and refused.outcome is Outcome.REJECT and refused.policy == "relay"


def test_a_policy_that_waits_gets_a_task_and_the_same_answer_as_decide() -> None:
    pipeline = Pipeline([RelayPolicy(["lab.test"]), Waiting()])
    result = pipeline.decide_now(Stage.RCPT, rcpt_context("bob@lab.test"))
    assert not isinstance(result, Decision)

    async def finish(pending: Awaitable[Decision]) -> tuple[Decision, Decision]:
        return await pending, await pipeline.decide(Stage.RCPT, rcpt_context("bob@lab.test"))

    later, decided = asyncio.run(finish(result))
    assert later == decided
    assert later.outcome is Outcome.DEFER and later.text == "waited" and later.policy == "waiting"


def test_not_implemented_falls_back_to_check_and_a_crash_is_a_policy_error() -> None:
    pipeline = Pipeline([Sometimes()])
    now = pipeline.decide_now(Stage.RCPT, rcpt_context("now@lab.test"))
    assert isinstance(now, Decision) and now.text == "at once"
    pending = pipeline.decide_now(Stage.RCPT, rcpt_context("later@lab.test"))
    assert not isinstance(pending, Decision)

    async def wait(awaitable: Awaitable[Decision]) -> Decision:
        return await awaitable

    assert asyncio.run(wait(pending)).text == "later"
    broken = Pipeline([Broken()]).decide_now(Stage.RCPT, rcpt_context("bob@lab.test"))
    assert isinstance(broken, Decision) and (broken.code, broken.enhanced) == ("451", "4.3.0")


def test_sends_are_joined_once_per_call() -> None:
    session = Session(SessionConfig(hostname="mx.test", decision_stages=frozenset()))
    session.start()
    actions = session.receive(b"EHLO c.test\r\nNOOP\r\nNOOP\r\n")
    assert len(actions) == 1 and isinstance(actions[0], Send)


# --- no garbage for the collector, shared values --------------------------------------------------------------


def test_a_finished_connection_is_freed_without_the_garbage_collector() -> None:
    """The connection, its session and its timer hold each other (the ``wants`` hook, the timer's callback);
    at the end of the connection those references are let go, so reference counting frees it all and the
    garbage collector has nothing to do for it."""

    async def session() -> weakref.ref[object]:
        server = SmtpServer(ServerConfig(accepted_domains=frozenset({"lab.test"})), NullStore())
        await server.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.address)
        await reader.readline()
        connection: weakref.ref[object] = weakref.ref(next(iter(server._connections)))
        for command in (b"EHLO c.test", b"MAIL FROM:<a@c.test>", b"RCPT TO:<b@lab.test>", b"DATA"):
            writer.write(command + b"\r\n")
            while (await reader.readline())[3:4] == b"-":
                pass
        writer.write(MESSAGE + b".\r\nQUIT\r\n")
        assert (await reader.readline()).startswith(b"250 ")
        assert (await reader.readline()).startswith(b"221 ")
        writer.close()
        deadline = asyncio.get_running_loop().time() + 5
        while server.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for _ in range(3):  # the transport lets go of its protocol in a callback of its own
            await asyncio.sleep(0)
        await server.shutdown(1)
        return connection

    gc.collect()
    gc.disable()
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            connection = runner.run(session())
        assert connection() is None
    finally:
        gc.enable()


def test_an_acceptance_equal_to_the_shared_one_is_handled_alike() -> None:
    """The session knows the shared plain acceptance by identity (a shortcut); any other acceptance, equal or
    not, takes the general path and gives the same replies and transcript."""
    assert ACCEPTED == Decision() == Decision.accept()
    script = b"EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<b@lab.test>\r\n"
    results = []
    for decision in (ACCEPTED, Decision.accept(), Decision(Outcome.ACCEPT)):
        session = Session(SessionConfig(hostname="mx.test"))
        actions = session.start()
        while isinstance(actions[-1], NeedDecision):
            actions = session.decided(decision)
        wire = [action for action in actions if isinstance(action, Send)]
        actions = session.receive(script)
        while isinstance(actions[-1], NeedDecision):
            wire += [action for action in actions if isinstance(action, Send)]
            actions = session.decided(decision)
        wire += [action for action in actions if isinstance(action, Send)]
        results.append((wire, session.transcript, session.outcome))
    assert results[0] == results[1] == results[2]
    assert [send.data[:3] for send in results[0][0]] == [b"220", b"250", b"250", b"250"]
