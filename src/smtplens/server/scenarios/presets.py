"""The realistic presets in ``presets.toml``: real servers' reply texts with their sources, and connection faults.

:func:`preset_specs` gives the raw spec of each preset (to merge with overrides, see ``ScenarioBook.add``);
:func:`presets` the checked scenarios, id = preset name. The file is read once.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

from smtplens.server.scenarios.model import Scenario, ScenarioError
from smtplens.server.scenarios.spec import ID_PATTERN, parse_scenario

__all__ = ["PRESETS_FILE", "preset_specs", "presets"]

PRESETS_FILE = "presets.toml"


@functools.cache
def preset_specs() -> Mapping[str, Mapping[str, object]]:
    """Preset name -> its spec as written in ``presets.toml`` (read-only)."""
    text = resources.files(__package__).joinpath(PRESETS_FILE).read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{PRESETS_FILE}: {exc}") from exc
    table = data.get("preset")
    if not isinstance(table, dict) or not table:
        raise ScenarioError(f"{PRESETS_FILE}: no [preset.<name>] tables")
    specs: dict[str, Mapping[str, object]] = {}
    for name, spec in table.items():
        if not ID_PATTERN.fullmatch(name) or not isinstance(spec, dict):
            raise ScenarioError(f"{PRESETS_FILE}: preset {name!r}: not a valid name or not a table")
        specs[name] = MappingProxyType(dict(spec))
    return MappingProxyType(specs)


@functools.cache
def _presets() -> Mapping[str, Scenario]:
    scenarios = {name: parse_scenario(spec, name) for name, spec in preset_specs().items()}
    return MappingProxyType({name: dataclasses.replace(item, preset=name) for name, item in scenarios.items()})


def presets() -> dict[str, Scenario]:
    """Preset name -> the preset as a scenario (a fresh dict; the scenarios are immutable)."""
    return dict(_presets())
