"""What a scenario is: a trigger (when), an effect (then), a name and a switch.

A :class:`Scenario` is a frozen value. Its :class:`Trigger` says at which stages it is tried and which sessions it
matches (client networks, HELO, sender and recipient globs), which attempts fire (:class:`Attempts`, counted per
:class:`Per` key) and with which probability; its :class:`Effect` says what the server then does: a reply (any
code, enhanced code and text, optionally disconnecting), a delay before the reply, a slow link, dropping the
connection with no reply, or cutting it in the middle of DATA. ``Effect.decision`` turns the effect into the
pipeline's :class:`~smtplens.server.decisions.Decision`. The spec format (a plain mapping from JSON or TOML) is
parsed in :mod:`smtplens.server.scenarios.spec`; :meth:`Scenario.to_json` writes it back.
"""

from __future__ import annotations

import ipaddress
import string
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from smtplens.errors import SmtplensError
from smtplens.model import Stage
from smtplens.server.decisions import Decision, Outcome

__all__ = [
    "PLACEHOLDERS",
    "Attempts",
    "Effect",
    "Network",
    "Per",
    "Scenario",
    "ScenarioError",
    "Trigger",
    "fill",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PLACEHOLDERS = frozenset({"client", "helo", "sender", "sender_domain", "recipient", "recipient_domain", "hostname"})
"""The ``{name}`` fields a reply text may use; an unknown value (no sender yet, …) becomes an empty string."""


class ScenarioError(SmtplensError, ValueError):
    """A scenario spec is wrong; the message names the scenario, the field and what is wrong with it."""


class Per(StrEnum):
    """What an attempt counter is kept for (see :func:`smtplens.server.scenarios.match.attempt_key`)."""

    TRIPLET = "triplet"  # client address, sender and recipient(s), whichever the stage knows (greylisting's key)
    CLIENT = "client"
    SENDER = "sender"
    RECIPIENT = "recipient"
    ALL = "all"  # one counter for everything the scenario matches


class Attempts(NamedTuple):
    """Attempt numbers ``first`` to ``last`` (1-based, inclusive); ``last`` None: and every later one."""

    first: int
    last: int | None

    def __contains__(self, attempt: object) -> bool:
        return isinstance(attempt, int) and self.first <= attempt and (self.last is None or attempt <= self.last)

    def __str__(self) -> str:
        if self.last == self.first:
            return str(self.first)
        return f"{self.first}-{self.last if self.last is not None else ''}"


@dataclass(frozen=True, slots=True)
class Trigger:
    """When a scenario fires. Every given condition must hold; empty tuples match everything. Globs are lowercase
    and matched case-insensitively; ``<>`` is the null sender. ``attempts`` empty: every attempt."""

    stages: frozenset[Stage]
    clients: tuple[Network, ...] = ()
    helo: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    attempts: tuple[Attempts, ...] = ()
    per: Per = Per.TRIPLET
    probability: float = 1.0


@dataclass(frozen=True, slots=True)
class Effect:
    """What the server does when a scenario fires; see :class:`~smtplens.server.decisions.Decision` for the
    fields. ``text`` may hold :data:`PLACEHOLDERS` (``{recipient}``, …), filled in when the scenario fires."""

    outcome: Outcome = Outcome.ACCEPT
    code: str | None = None
    enhanced: str | None = None
    text: str | None = None
    disconnect: bool = False
    drop: bool = False
    delay: float = 0.0
    slow: float = 0.0
    cut_after: int | None = None

    def decision(self, values: dict[str, str], policy: str) -> Decision:
        """The decision this effect gives, its text filled with ``values``."""
        text = fill(self.text, values) if self.text is not None else None
        return Decision(
            self.outcome,
            self.disconnect or self.drop,
            self.code,
            self.enhanced,
            text,
            policy,
            delay=self.delay,
            slow=self.slow,
            drop=self.drop,
            cut_after=self.cut_after,
        )


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with its ``{placeholders}`` replaced (``{{`` and ``}}`` are literal braces)."""
    parts: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        if name is not None:
            parts.append(values.get(name, ""))
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One scenario. ``id`` is unique in a book; ``source`` says where a quoted reply text comes from;
    ``preset`` names the preset it was made from, if any."""

    id: str
    name: str
    trigger: Trigger
    effect: Effect
    enabled: bool = True
    source: str | None = None
    preset: str | None = None

    def to_json(self) -> dict[str, object]:
        """The spec of this scenario (flat, JSON and TOML friendly); ``ScenarioBook.add`` reads it back."""
        trigger, effect = self.trigger, self.effect
        stages = sorted(stage.value for stage in trigger.stages)
        spec: dict[str, object] = {"id": self.id, "name": self.name, "enabled": self.enabled}
        spec["stage"] = stages[0] if len(stages) == 1 else stages
        optional: dict[str, object] = {
            "client": [str(network) for network in trigger.clients],
            "helo": list(trigger.helo),
            "sender": list(trigger.senders),
            "recipient": list(trigger.recipients),
            "attempts": [str(attempts) for attempts in trigger.attempts],
        }
        spec.update({key: value for key, value in optional.items() if value})
        if trigger.per is not Per.TRIPLET:
            spec["per"] = trigger.per.value
        if trigger.probability != 1.0:
            spec["probability"] = trigger.probability
        spec["outcome"] = effect.outcome.value
        for key, value in (("code", effect.code), ("enhanced", effect.enhanced), ("text", effect.text)):
            if value is not None:
                spec[key] = value
        if effect.disconnect:
            spec["disconnect"] = True
        if effect.drop:
            spec["drop"] = True
        if effect.delay:
            spec["delay"] = effect.delay
        if effect.slow:
            spec["slow"] = effect.slow
        if effect.cut_after is not None:
            spec["cut_after"] = effect.cut_after
        if self.source is not None:
            spec["source"] = self.source
        return spec
