"""The runtime registry of scenarios: add, replace, remove, switch on and off while the server runs.

``ScenarioBook.add(spec)`` checks a spec (:mod:`smtplens.server.scenarios.spec`), instantiates a preset when the
spec names one (``{"preset": "gmail-rate-limit", "client": "127.0.0.2"}``: the preset's fields with the spec's
over them) and assigns an id when the spec has none (the preset's name or a slug of the name, made unique). A
spec whose id is already in the book replaces that scenario in place and restarts its attempt counters. The
scenarios are tried in the book's order. The book also keeps the attempt counters (at most ``max_keys`` keys per
scenario, the oldest forgotten first) and the random generator of probabilistic triggers (inject a seeded
``random.Random`` for repeatable runs). ``stages`` is the set of stages its enabled scenarios are tried at, kept
up to date on every change: the server does not ask the scenario policy about the other stages.

Changes are made under a lock and publish a new tuple, so the server's event loop always reads a consistent list
while another thread (a test, the HTTP API) edits the book. :func:`load_scenarios` reads the ``[[scenario]]``
tables of a TOML configuration with the same rules.
"""

from __future__ import annotations

import builtins
import dataclasses
import difflib
import random
import re
import threading
from collections.abc import Iterable, Mapping

from smtplens.model import Stage
from smtplens.server.scenarios.model import Scenario, ScenarioError
from smtplens.server.scenarios.presets import preset_specs
from smtplens.server.scenarios.spec import ID_PATTERN, merge_preset, parse_scenario

__all__ = ["ScenarioBook", "load_scenarios"]


class ScenarioBook:
    """Scenarios in order, with their attempt counters; see the module docstring."""

    def __init__(
        self, scenarios: Iterable[Scenario] = (), *, rng: random.Random | None = None, max_keys: int = 100_000
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be positive")
        self.rng = rng or random.Random()
        self.max_keys = max_keys
        self._lock = threading.RLock()
        self._scenarios: tuple[Scenario, ...] = ()
        self.stages: frozenset[Stage] = frozenset()  # the stages of the enabled scenarios, kept with every change
        self._counters: dict[str, dict[tuple[str, ...], int]] = {}
        self.version = 0  # goes up on every change
        for scenario in scenarios:
            self.put(scenario)

    # --- changes ----------------------------------------------------------------------------------------------

    def add(self, spec: Mapping[str, object]) -> Scenario:
        """Check ``spec``, then add it (or replace the scenario with its id); :class:`ScenarioError` if wrong."""
        with self._lock:  # the id is assigned and taken at once
            return self.put(self.parse(spec))

    def parse(self, spec: Mapping[str, object]) -> Scenario:
        """The scenario ``spec`` describes, with its id (assigned when missing), without adding it."""
        if not isinstance(spec, Mapping):
            raise ScenarioError(f"a scenario spec is a table (a JSON object), not {type(spec).__name__}")
        given = spec.get("id")
        if given is not None and (not isinstance(given, str) or not ID_PATTERN.fullmatch(given)):
            raise ScenarioError(f"scenario id {given!r}: use 1-64 letters, digits, '.', '_', ':' or '-'")
        preset = spec.get("preset")
        if preset is not None:
            spec = merge_preset(spec, _preset_spec(preset))
        scenario_id = given or self._new_id(spec)
        return parse_scenario(spec, scenario_id)

    def put(self, scenario: Scenario) -> Scenario:
        """Add a checked scenario, or replace the one with its id in place (its attempt counters restart)."""
        with self._lock:
            items = list(self._scenarios)
            for index, item in enumerate(items):
                if item.id == scenario.id:
                    items[index] = scenario
                    break
            else:
                items.append(scenario)
            self._counters.pop(scenario.id, None)
            self._publish(items)
        return scenario

    def remove(self, scenario_id: str) -> bool:
        with self._lock:
            items = [item for item in self._scenarios if item.id != scenario_id]
            if len(items) == len(self._scenarios):
                return False
            self._counters.pop(scenario_id, None)
            self._publish(items)
        return True

    def clear(self) -> None:
        with self._lock:
            self._counters.clear()
            self._publish([])

    def set_enabled(self, scenario_id: str, enabled: bool) -> Scenario | None:
        """Switch a scenario on or off (its attempt counters are kept); None when there is no such id."""
        with self._lock:
            items = list(self._scenarios)
            for index, item in enumerate(items):
                if item.id == scenario_id:
                    items[index] = changed = dataclasses.replace(item, enabled=enabled)
                    self._publish(items)
                    return changed
        return None

    def reset_attempts(self, scenario_id: str | None = None) -> None:
        """Forget the attempt counters of one scenario, or of all."""
        with self._lock:
            if scenario_id is None:
                self._counters.clear()
            else:
                self._counters.pop(scenario_id, None)

    # --- reading ----------------------------------------------------------------------------------------------

    def get(self, scenario_id: str) -> Scenario | None:
        return next((item for item in self._scenarios if item.id == scenario_id), None)

    def list(self) -> builtins.list[Scenario]:
        return builtins.list(self._scenarios)

    @property
    def scenarios(self) -> tuple[Scenario, ...]:
        """The current scenarios, in order (an immutable snapshot)."""
        return self._scenarios

    def __len__(self) -> int:
        return len(self._scenarios)

    def attempt(self, scenario_id: str, key: tuple[str, ...]) -> int:
        """Count one more attempt of ``key`` for the scenario; the attempt's number (1 for the first)."""
        with self._lock:
            counters = self._counters.setdefault(scenario_id, {})
            number = counters.pop(key, 0) + 1
            counters[key] = number  # most recent last: the oldest key is forgotten first
            if len(counters) > self.max_keys:
                del counters[next(iter(counters))]
        return number

    def attempts(self, scenario_id: str, key: tuple[str, ...]) -> int:
        """How many attempts of ``key`` were counted for the scenario so far."""
        return self._counters.get(scenario_id, {}).get(key, 0)

    # --- internals --------------------------------------------------------------------------------------------

    def _publish(self, items: builtins.list[Scenario]) -> None:
        self._scenarios = tuple(items)
        self.stages = frozenset(stage for item in items if item.enabled for stage in item.trigger.stages)
        self.version += 1

    def _new_id(self, spec: Mapping[str, object]) -> str:
        name = spec.get("preset") or spec.get("name")
        base = _slug(name) if isinstance(name, str) else ""
        base = base or "scenario"
        taken = {item.id for item in self._scenarios}
        if base not in taken and base != "scenario":
            return base
        number = 1
        while f"{base}-{number}" in taken:
            number += 1
        return f"{base}-{number}"


def _preset_spec(name: object) -> Mapping[str, object]:
    specs = preset_specs()
    if isinstance(name, str) and name in specs:
        return specs[name]
    close = difflib.get_close_matches(str(name), specs, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ScenarioError(f"preset: no preset {name!r}{hint}; presets: {', '.join(sorted(specs))}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48]


def load_scenarios(data: Mapping[str, object]) -> list[Scenario]:
    """The scenarios of the ``[[scenario]]`` tables in a parsed TOML document (none when there are none).

    Ids must be unique; missing ones are assigned as ``ScenarioBook.add`` does. Errors name the table's number.
    """
    tables = data.get("scenario", [])
    if not isinstance(tables, list):
        raise ScenarioError("scenario: write scenarios as [[scenario]] tables (an array of tables)")
    book = ScenarioBook()
    for number, table in enumerate(tables, 1):
        try:
            if isinstance(table, Mapping) and table.get("id") is not None and book.get(str(table["id"])):
                raise ScenarioError(f"scenario id {table['id']!r} is used twice")
            book.add(table)
        except ScenarioError as exc:
            raise ScenarioError(f"[[scenario]] #{number}: {exc}") from exc
    return book.list()
