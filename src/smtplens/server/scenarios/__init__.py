"""Scenarios and chaos for testing senders (docs/scenarios.md).

A scenario says *when* (stage, client network, HELO, sender and recipient globs, attempt numbers, probability)
and *what* (any reply code and text, a delay, a slow link, dropping the connection, cutting it in the middle of
DATA). Scenarios are written as flat specs, the same in a TOML ``[[scenario]]`` table and in a JSON body of the
HTTP API; :class:`ScenarioBook` keeps them at run time and :class:`ScenarioPolicy` plays them in the policy
pipeline. :func:`presets` are realistic ready-made ones quoting Postfix, Gmail, Outlook and Yahoo, each with its
source. Modules: ``model`` (values), ``spec`` (parsing and checks), ``match`` (pure matching), ``book`` (the
registry), ``presets`` (``presets.toml``), ``policy`` (the pipeline policy).
"""

from __future__ import annotations

from smtplens.server.scenarios.book import ScenarioBook, load_scenarios
from smtplens.server.scenarios.model import Attempts, Effect, Per, Scenario, ScenarioError, Trigger
from smtplens.server.scenarios.policy import ScenarioPolicy
from smtplens.server.scenarios.presets import presets

__all__ = [
    "Attempts",
    "Effect",
    "Per",
    "Scenario",
    "ScenarioBook",
    "ScenarioError",
    "ScenarioPolicy",
    "Trigger",
    "load_scenarios",
    "presets",
]
