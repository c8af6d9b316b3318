"""What the HTTP API drives: the running SMTP server, its store, its metrics and (optionally) its scenarios.

One :class:`Control` is built by ``smtplens serve`` (or a test) and handed to ``create_app``; the routes only
read and switch what it bundles. The metrics must be the server's observer, so that they count what it does::

    metrics = ServerMetrics()
    server = SmtpServer(config, store, decide, observer=metrics)
    control = Control(server=server, store=store, metrics=metrics, scenarios=book)

Without a scenario book the scenario routes answer 404; the presets are listed either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from smtplens.server.http.metrics import ServerMetrics
from smtplens.server.net import SmtpServer
from smtplens.server.scenarios import Scenario, ScenarioBook, presets
from smtplens.server.store import MessageStore

__all__ = ["Control"]


@dataclass(eq=False)
class Control:
    """The server, store, metrics and scenarios the API and UI work on; ``presets`` gives the ready-made
    scenarios by name (``GET /api/scenarios/presets``, the UI's preset list); ``started_at`` is for the uptime."""

    server: SmtpServer
    store: MessageStore
    metrics: ServerMetrics
    scenarios: ScenarioBook | None = None
    presets: Callable[[], Mapping[str, Scenario]] = presets
    started_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.metrics.watch(
            store_messages=lambda: float(self.store.count()),
            maintenance=lambda: 1.0 if self.server.maintenance else 0.0,
        )

    @property
    def uptime(self) -> float:
        return max(time.time() - self.started_at, 0.0)
