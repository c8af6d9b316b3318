"""The policy pipeline: the policies registered for a stage, run in order, give the stage's decision.

A :class:`Policy` has a ``name``, the ``stages`` it answers and ``async check(stage, context)``, which returns a
:class:`~smtplens.server.decisions.Decision` or None (no opinion). :meth:`Pipeline.decide` runs the policies of the
stage in registration order; the first decision that is not an acceptance wins and carries the policy's name; when
all accept, the header fields of every accepting decision are kept, in order. A policy that raises or takes longer
than its time budget (``timeout``, or the policy's own ``timeout`` attribute) stops the stage with ``451 4.3.0``
(``421 4.3.0`` and close at connect, where only 220, 554 and 421 are allowed) and a log line: a policy failure is
never a 5xx. A pipeline is a ``Decide`` for :class:`~smtplens.server.net.SmtpServer`: ``SmtpServer(config, store,
decide=pipeline.decide)``.

Two things keep the common case cheap (the server asks about six stages per message):

* :meth:`Pipeline.wants` says whether any policy is interested in a stage *now*; the session accepts the other
  stages at once, without building a context or asking. A policy whose interest changes at run time (the
  scenario policy: the stages of the enabled scenarios) says so with an ``active_stages`` attribute, read on every
  call; the others are interested in their ``stages`` always.
* :meth:`Pipeline.decide_now` runs the checks in the caller's frame, outside any task: a policy with a
  synchronous ``check_now(stage, context)`` (the relay rule, the scenarios) costs no coroutine, task or timer.
  ``check_now`` returns a decision or None like ``check``, or ``NotImplemented`` when it cannot answer without
  waiting. At the first policy without ``check_now``, or whose ``check_now`` says ``NotImplemented``, ``decide_now``
  returns an awaitable for the rest of the stage, which the caller runs in a task under the time budget as
  ``decide`` would (a ``check`` may use ``asyncio.timeout`` and everything else that needs a task).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Collection, Iterable
from typing import Any, Protocol

from smtplens.model import Stage
from smtplens.server.decisions import ACCEPTED, Decision, Outcome, combine_accepted
from smtplens.server.net_timers import bounded
from smtplens.server.session import Context

__all__ = ["POLICY_ERROR_TEXT", "Pipeline", "Policy", "policy_error"]

log = logging.getLogger("smtplens.server.pipeline")

POLICY_ERROR_TEXT = "Error: policy failure, try again later"


class Policy(Protocol):
    """One policy. ``stages`` are the stages it is asked about; ``check`` returns None for "no opinion".

    Optional attributes the pipeline honours: ``timeout`` (seconds, its own time budget) and ``active_stages``
    (the subset of ``stages`` it is interested in at this moment, for a policy whose interest changes at run
    time; read on every command, so keep it an attribute or a cheap property) and ``check_now(stage, context)``
    (the same answer as ``check`` without awaiting, or ``NotImplemented`` when that needs waiting: lets the
    server answer without a task; see the module docstring).
    """

    @property
    def name(self) -> str: ...

    @property
    def stages(self) -> Collection[Stage]: ...

    async def check(self, stage: Stage, context: Context) -> Decision | None: ...


def policy_error(stage: Stage, hostname: str = "localhost") -> Decision:
    """The decision when a policy fails: ``451 4.3.0``, or ``421 4.3.0`` and close at connect."""
    if stage is Stage.CONNECT:
        return Decision.defer(
            code="421", enhanced="4.3.0", text=f"{hostname} {POLICY_ERROR_TEXT}", disconnect=True, policy="error"
        )
    return Decision.defer(code="451", enhanced="4.3.0", text=POLICY_ERROR_TEXT, policy="error")


_ACCEPT = ACCEPTED


class Pipeline:
    """Policies by stage, in the order given; see the module docstring."""

    def __init__(self, policies: Iterable[Policy], *, timeout: float = 10.0, hostname: str = "localhost") -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.policies: tuple[Policy, ...] = tuple(policies)
        self.timeout = timeout
        self.hostname = hostname
        self._by_stage: dict[Stage, tuple[Policy, ...]] = {}
        for policy in self.policies:
            for stage in policy.stages:
                self._by_stage[stage] = (*self._by_stage.get(stage, ()), policy)
        self._static = frozenset(
            stage
            for stage, policies_ in self._by_stage.items()
            if any(not hasattr(policy, "active_stages") for policy in policies_)
        )
        self._dynamic: tuple[Any, ...] = tuple(policy for policy in self.policies if hasattr(policy, "active_stages"))

    def for_stage(self, stage: Stage) -> tuple[Policy, ...]:
        return self._by_stage.get(stage, ())

    def wants(self, stage: Stage) -> bool:
        """True when some policy is interested in ``stage`` now (see the module docstring)."""
        if stage in self._static:
            return True
        for policy in self._dynamic:  # noqa: SIM110 - asked on every command: no generator
            if stage in policy.active_stages:
                return True
        return False

    async def decide(self, stage: Stage, context: Context) -> Decision:
        result = self.decide_now(stage, context)
        if isinstance(result, Decision):
            return result
        return await result

    __call__ = decide

    def decide_now(self, stage: Stage, context: Context) -> Decision | Awaitable[Decision]:
        """The stage's decision when no check awaits anything; otherwise an awaitable that finishes the stage."""
        return self._run(stage, context, 0, _ACCEPT)

    def _run(self, stage: Stage, context: Context, start: int, accepted: Decision) -> Decision | Awaitable[Decision]:
        policies = self._by_stage.get(stage, ())
        for index in range(start, len(policies)):
            policy = policies[index]
            check_now = getattr(policy, "check_now", None)
            if check_now is None:
                return self._rest(stage, context, index, accepted)
            try:
                answer = check_now(stage, context)
            except Exception as exc:
                return self._failed(policy, stage, context, exc)
            if answer is NotImplemented:
                return self._rest(stage, context, index, accepted)
            decision = self._fold(policy, answer)
            if decision is None:
                continue
            if decision.outcome is not Outcome.ACCEPT:
                return decision
            if decision.text or decision.headers or decision.effects:  # else combining would change nothing
                accepted = combine_accepted(accepted, decision)  # header fields and effects (delay, …) are kept
        return accepted

    async def _rest(self, stage: Stage, context: Context, index: int, accepted: Decision) -> Decision:
        """The stage from policy ``index`` on, whose ``check`` is awaited, under the time budget (in a task)."""
        policy = self._by_stage[stage][index]
        budget = getattr(policy, "timeout", None) or self.timeout
        try:
            answer = await bounded(policy.check(stage, context), budget)
        except Exception as exc:
            return self._failed(policy, stage, context, exc, budget)
        decision = self._fold(policy, answer)
        if decision is not None:
            if decision.outcome is not Outcome.ACCEPT:
                return decision
            accepted = combine_accepted(accepted, decision)
        result = self._run(stage, context, index + 1, accepted)
        return result if isinstance(result, Decision) else await result

    @staticmethod
    def _fold(policy: Policy, decision: Decision | None) -> Decision | None:
        if decision is not None and decision.policy is None:
            return dataclasses.replace(decision, policy=policy.name)
        return decision

    def _failed(
        self, policy: Policy, stage: Stage, context: Context, exc: Exception, budget: float | None = None
    ) -> Decision:
        if isinstance(exc, TimeoutError) and budget is not None:
            what = f"timed out after {budget:g} s"
        else:
            what = f"failed: {exc!r}"
        log.error("policy %s at %s for %s %s", policy.name, stage.value, context.envelope.client_address, what)
        return policy_error(stage, self.hostname)
