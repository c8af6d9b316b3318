"""The scenarios as a pipeline policy: ``Pipeline([ScenarioPolicy(book), RelayPolicy(...), ...])``.

At every stage the session asks about, :class:`ScenarioPolicy` tries the book's enabled scenarios in order: a
scenario whose stage and patterns match counts an attempt (:mod:`smtplens.server.scenarios.match`); the first one
whose attempt is selected and whose dice agree answers, with its effect as the decision, named
``scenario:<id>`` in the transcript; when none fires the policy has no opinion. The book is read afresh on every
check, so scenarios added, removed or switched while the server runs apply to the next command; its
``active_stages`` (the book's ``stages``) tell the pipeline which stages it need not be asked about at all. Wherever it
stands in the pipeline it cannot make smtplens relay: an acceptance never overrides another policy's refusal.
"""

from __future__ import annotations

from typing import ClassVar

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.scenarios.book import ScenarioBook
from smtplens.server.scenarios.match import attempt_key, fires, matches, placeholder_values
from smtplens.server.scenarios.spec import STAGES
from smtplens.server.session import Context

__all__ = ["ScenarioPolicy"]


class ScenarioPolicy:
    """A :class:`~smtplens.server.pipeline.Policy` that plays the scenarios of ``book``."""

    stages: ClassVar[frozenset[Stage]] = frozenset(STAGES.values())

    @property
    def active_stages(self) -> frozenset[Stage]:
        """The stages some enabled scenario is tried at now (the pipeline asks only about these)."""
        return self.book.stages

    def __init__(self, book: ScenarioBook, *, hostname: str = "localhost", name: str = "scenario") -> None:
        self.book = book
        self.hostname = hostname  # the {hostname} of reply texts
        self.name = name

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        return self.decide(stage, context)

    def check_now(self, stage: Stage, context: Context) -> Decision | None:
        """:meth:`check` without a coroutine (the pipeline's synchronous path): the scenarios never wait."""
        return self.decide(stage, context)

    def decide(self, stage: Stage, context: Context) -> Decision | None:
        """The synchronous core of :meth:`check`."""
        for scenario in self.book.scenarios:
            if not scenario.enabled or not matches(scenario.trigger, stage, context):
                continue
            attempt = self.book.attempt(scenario.id, attempt_key(scenario.trigger.per, stage, context))
            if fires(scenario.trigger, attempt, self.book.rng):
                values = placeholder_values(stage, context, self.hostname)
                return scenario.effect.decision(values, f"{self.name}:{scenario.id}")
        return None
