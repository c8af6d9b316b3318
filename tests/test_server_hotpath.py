"""The server's hot path: stages nobody wants are not asked about, synchronous decisions need no task, one
timer per connection, and the store's one fsync per message (spare files, lazy index rows)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Awaitable
from pathlib import Path

import pytest

from smtplens.model import Stage
from smtplens.server import store_files
from smtplens.server.decisions import Decision, Outcome
from smtplens.server.pipeline import Pipeline
from smtplens.server.policies import RelayPolicy
from smtplens.server.protocol import MailFrom, RcptTo, SessionConfig
from smtplens.server.scenarios import ScenarioBook, ScenarioPolicy
from smtplens.server.session import Context, Envelope, NeedDecision, Send, Session
from smtplens.server.store import MessageStore
from smtplens.server.store_files import QueueIds
from smtplens.server.store_model import StoreError
from smtplens.server.store_spares import Spares

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


# --- the store: spares, one fsync per message ----------------------------------------------------------------------


def counting_syncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every fsync the store's files module makes (files and directories), still syncing."""
    calls: list[int] = []
    real = store_files._sync

    def sync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(store_files, "_sync", sync)
    return calls


def envelope() -> dict[str, object]:
    return {"mail_from": "a@sender.test", "recipients": ["bob@lab.test"], "client_address": "192.0.2.1"}


def test_a_message_costs_one_fsync_and_its_row_needs_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with MessageStore(tmp_path / "data") as store:

        async def put(count: int) -> list[str]:
            return [await store.store(envelope(), MESSAGE) for _ in range(count)]

        asyncio.run(put(1))  # the first batch of spares: created, then their directory synced once
        syncs = counting_syncs(monkeypatch)
        ids = asyncio.run(put(20))
        assert len(syncs) <= 20 + 1  # one per message, and at most one directory sync for a new batch of spares
        assert [store.message(queue_id) is not None for queue_id in ids] == [True] * 20


def test_spares_left_empty_or_half_filled_by_a_crash_are_removed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with MessageStore(data) as store:
        kept = asyncio.run(store.store(envelope(), MESSAGE))
    messages = data / "messages"
    ids = QueueIds()
    empty, half = ids.next(), ids.next()
    (messages / empty).write_bytes(b"")
    (messages / half).write_bytes(store_files.MAGIC + b'{"queue_id": "' + half.encode())  # header cut short
    with MessageStore(data) as store:
        report = store.recovery
        assert half in report.temp_files_removed and not report.quarantined
        assert [info.queue_id for info in store.messages()] == [kept]
    assert sorted(path.name for path in messages.iterdir()) == [kept]


def test_a_message_whose_row_was_lost_is_indexed_again_from_its_file(tmp_path: Path) -> None:
    """The index row is committed without a sync: a crash may take it back, never the message."""
    data = tmp_path / "data"
    with MessageStore(data) as store:
        queue_id = asyncio.run(store.store(envelope(), MESSAGE))
    conn = sqlite3.connect(data / "index.sqlite")
    with conn:
        conn.execute("DELETE FROM messages WHERE queue_id = ?", (queue_id,))
    conn.close()
    with MessageStore(data) as store:
        assert store.recovery.indexed_from_files == (queue_id,)
        stored = store.message(queue_id)
        assert stored is not None and stored.raw == MESSAGE


def test_spares_are_made_ahead_in_batches_and_removed_on_close(tmp_path: Path) -> None:
    directory = tmp_path / "messages"
    directory.mkdir()
    dir_fd = store_files.open_directory(directory)
    try:
        spares = Spares(directory, dir_fd, QueueIds(), batch=4, low=2)
        taken = [spares.take() for _ in range(10)]
        names = [queue_id for queue_id, _ in taken]
        assert len(set(names)) == 10 and names == sorted(names)  # queue ids in order of use
        for queue_id, fd in taken:
            assert (directory / queue_id).stat().st_size == 0
            os.write(fd, b"x")
            os.close(fd)
        spares.close()
        assert sorted(path.name for path in directory.iterdir()) == names  # the unused ones are gone
        with pytest.raises(OSError, match="closed"):
            spares.take()
    finally:
        os.close(dir_fd)


def test_a_full_disk_while_making_spares_fails_that_message_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(directory: Path, queue_ids: list[str]) -> list[int]:
        raise OSError(28, "No space left on device")

    with MessageStore(tmp_path / "data") as store:
        monkeypatch.setattr("smtplens.server.store_spares.create_spares", full)
        with pytest.raises(StoreError, match="disk full"):
            asyncio.run(store.store(envelope(), MESSAGE))
        monkeypatch.undo()
        assert asyncio.run(store.store(envelope(), MESSAGE))


def test_sends_are_joined_once_per_call() -> None:
    session = Session(SessionConfig(hostname="mx.test", decision_stages=frozenset()))
    session.start()
    actions = session.receive(b"EHLO c.test\r\nNOOP\r\nNOOP\r\n")
    assert len(actions) == 1 and isinstance(actions[0], Send)
