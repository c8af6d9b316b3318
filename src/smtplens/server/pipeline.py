"""The policy pipeline: the policies registered for a stage, run in order, give the stage's decision.

A :class:`Policy` has a ``name``, the ``stages`` it answers and ``async check(stage, context)``, which returns a
:class:`~smtplens.server.decisions.Decision` or None (no opinion). :meth:`Pipeline.decide` runs the policies of the
stage in registration order; the first decision that is not an acceptance wins and carries the policy's name; when
all accept, the header fields of every accepting decision are kept, in order. A policy that raises or takes longer
than its time budget (``timeout``, or the policy's own ``timeout`` attribute) stops the stage with ``451 4.3.0``
(``421 4.3.0`` and close at connect, where only 220, 554 and 421 are allowed) and a log line: a policy failure is
never a 5xx. A pipeline is a ``Decide`` for :class:`~smtplens.server.net.SmtpServer`: ``SmtpServer(config, store,
decide=pipeline.decide)``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Iterable
from typing import Protocol

from smtplens.model import Stage
from smtplens.server.decisions import Decision, Outcome, combine_accepted
from smtplens.server.net_timers import bounded
from smtplens.server.session import Context

__all__ = ["POLICY_ERROR_TEXT", "Pipeline", "Policy", "policy_error"]

log = logging.getLogger("smtplens.server.pipeline")

POLICY_ERROR_TEXT = "Error: policy failure, try again later"


class Policy(Protocol):
    """One policy. ``stages`` are the stages it is asked about; ``check`` returns None for "no opinion"."""

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


class Pipeline:
    """Policies by stage, in the order given; see the module docstring."""

    def __init__(self, policies: Iterable[Policy], *, timeout: float = 10.0, hostname: str = "localhost") -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.policies: tuple[Policy, ...] = tuple(policies)
        self.timeout = timeout
        self.hostname = hostname
        self._by_stage: dict[Stage, list[Policy]] = {}
        for policy in self.policies:
            for stage in policy.stages:
                self._by_stage.setdefault(stage, []).append(policy)

    def for_stage(self, stage: Stage) -> tuple[Policy, ...]:
        return tuple(self._by_stage.get(stage, ()))

    async def decide(self, stage: Stage, context: Context) -> Decision:
        accepted = Decision.accept()
        for policy in self._by_stage.get(stage, ()):
            budget = getattr(policy, "timeout", None) or self.timeout
            try:
                decision = await bounded(policy.check(stage, context), budget)  # wait_for, minus the task
            except Exception as exc:
                what = f"timed out after {budget:g} s" if isinstance(exc, TimeoutError) else f"failed: {exc!r}"
                log.error("policy %s at %s for %s %s", policy.name, stage.value, context.envelope.client_address, what)
                return policy_error(stage, self.hostname)
            if decision is None:
                continue
            if decision.policy is None:
                decision = dataclasses.replace(decision, policy=policy.name)
            if decision.outcome is not Outcome.ACCEPT:
                return decision
            accepted = combine_accepted(accepted, decision)  # header fields and effects (delay, …) are kept
        return accepted

    __call__ = decide
