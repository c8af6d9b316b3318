"""Prometheus metrics of the SMTP server: a :class:`~smtplens.server.observer.ServerObserver` that counts.

Every metric lives in the instance's own ``CollectorRegistry`` (never prometheus-client's global one), so two
servers in one process, or two tests, never share counts. ``render()`` gives the text exposition format that
``GET /metrics`` serves.

Metric                                   Type       Labels
``smtplens_connections_open``            gauge      -
``smtplens_connections_total``           counter    -
``smtplens_session_duration_seconds``    histogram  -
``smtplens_replies_total``               counter    ``class`` (2xx, 4xx, 5xx, ...), ``code``
``smtplens_policy_replies_total``        counter    ``policy`` (replies a policy decided: relay, greylist, ...)
``smtplens_messages_stored_total``       counter    -
``smtplens_message_bytes_total``         counter    -
``smtplens_store_messages``              gauge      - (read from the store at scrape time)
``smtplens_maintenance``                 gauge      - (1 while new connections get 421)
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "ServerMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The media type of ``render()``'s output (the Prometheus text format prometheus-client writes)."""

_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, float("inf"))


class ServerMetrics:
    """Counters and gauges of one SMTP server, fed as its observer; see the module docstring."""

    def __init__(self, *, namespace: str = "smtplens") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.connections_open = Gauge(
            "connections_open", "SMTP connections open now", namespace=namespace, registry=registry
        )
        self.connections = Counter("connections", "SMTP connections accepted", namespace=namespace, registry=registry)
        self.session_duration = Histogram(
            "session_duration_seconds",
            "How long SMTP connections stayed open",
            namespace=namespace,
            registry=registry,
            buckets=_DURATION_BUCKETS,
        )
        self.replies = Counter(
            "replies", "Complete SMTP replies sent", ["class", "code"], namespace=namespace, registry=registry
        )
        self.policy_replies = Counter(
            "policy_replies",
            "SMTP replies a policy decided, by policy",
            ["policy"],
            namespace=namespace,
            registry=registry,
        )
        self.messages = Counter(
            "messages_stored", "Messages made durable in the store", namespace=namespace, registry=registry
        )
        self.message_bytes = Counter(
            "message_bytes", "Octets of the messages stored", namespace=namespace, registry=registry
        )
        self.store_messages = Gauge(
            "store_messages", "Messages in the store now", namespace=namespace, registry=registry
        )
        self.maintenance = Gauge(
            "maintenance", "1 while the server answers new connections with 421", namespace=namespace, registry=registry
        )

    def watch(self, *, store_messages: Callable[[], float], maintenance: Callable[[], float]) -> None:
        """Read the two live gauges at scrape time from these callables (the store's count, the server's flag)."""
        self.store_messages.set_function(store_messages)
        self.maintenance.set_function(maintenance)

    def render(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)

    # -- ServerObserver --------------------------------------------------------------------------------------

    def connection_opened(self, session_id: str, client_address: str) -> None:
        self.connections_open.inc()
        self.connections.inc()

    def message_stored(self, session_id: str, size: int) -> None:
        self.messages.inc()
        self.message_bytes.inc(size)

    def reply_sent(self, code: str, policy: str | None) -> None:
        self.replies.labels(f"{code[:1]}xx", code).inc()
        if policy:
            self.policy_replies.labels(policy).inc()

    def connection_closed(self, session_id: str, client_address: str, duration: float) -> None:
        self.connections_open.dec()
        self.session_duration.observe(max(duration, 0.0))
