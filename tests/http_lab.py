"""A real SMTP server and its HTTP API on 127.0.0.1, for the API tests and the browser tests.

``HttpLab`` runs one event loop in a thread of its own with an :class:`SmtpServer` (port 0), a
:class:`MessageStore` in a temporary directory, :class:`ServerMetrics` as the server's observer and the HTTP app
served by ``serve_http`` (port 0): the same parts ``smtplens serve`` wires together. The policies are the relay
rule and, when a scenario book is given, the scenarios before it. Tests talk to it as real
clients do: smtplib for SMTP, httpx or a browser for HTTP.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import smtplib
import threading
import time
from collections.abc import Callable, Coroutine
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx

from smtplens.server.http import Control, HttpServer, ServerMetrics, create_app, serve_http
from smtplens.server.net import ServerConfig, SmtpServer
from smtplens.server.pipeline import Pipeline, Policy
from smtplens.server.policies import RelayPolicy
from smtplens.server.scenarios import ScenarioBook, ScenarioPolicy
from smtplens.server.store import MessageStore

__all__ = ["DOMAIN", "HttpLab", "make_message", "wait_for"]

T = TypeVar("T")

DOMAIN = "lab.test"


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it is true; AssertionError naming ``what`` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def make_message(subject: str, body: str = "Hello from the HTTP lab.\n", sender: str = "alice@example.test") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = f"bob@{DOMAIN}"
    message["Subject"] = subject
    message["Date"] = "Mon, 1 Jan 2024 00:00:00 +0000"
    message.set_content(body)
    return message.as_bytes(policy=policy.SMTP)


class HttpLab:
    """The SMTP server, its store and metrics, and the HTTP API/UI, in one event loop thread."""

    def __init__(
        self,
        directory: Path,
        *,
        retention_count: int | None = None,
        scenarios: ScenarioBook | None = None,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="http-lab", daemon=True)
        self.thread.start()
        self.store = MessageStore(directory, retention_count=retention_count)
        self.metrics = ServerMetrics()
        config = ServerConfig(accepted_domains=frozenset({DOMAIN}))
        policies: list[Policy] = [RelayPolicy(config.accepted_domains)]
        if scenarios is not None:  # scenarios first, as smtplens serve orders them
            policies.insert(0, ScenarioPolicy(scenarios))
        self.server = SmtpServer(config, self.store, Pipeline(policies).decide, observer=self.metrics)
        self.call(self.server.start("127.0.0.1", 0))
        self.smtp_host, self.smtp_port = self.server.address
        self.control = Control(server=self.server, store=self.store, metrics=self.metrics, scenarios=scenarios)
        self.http: HttpServer = self.call(self._serve())
        self.url = self.http.url
        self.client = httpx.Client(base_url=self.url, timeout=10.0)

    async def _serve(self) -> HttpServer:
        return await serve_http(create_app(self.control), "127.0.0.1", 0)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def smtp(self, timeout: float = 5.0) -> smtplib.SMTP:
        return smtplib.SMTP(self.smtp_host, self.smtp_port, local_hostname="client.example.test", timeout=timeout)

    def send(self, subject: str, recipients: tuple[str, ...] = (f"bob@{DOMAIN}",), body: str = "Hello.\n") -> None:
        """One session: deliver a message with smtplib, then QUIT; waits until its transcript is recorded."""
        before = self.store.stats().sessions_recorded
        with self.smtp() as client:
            client.sendmail("alice@example.test", list(recipients), make_message(subject, body))
        wait_for(lambda: self.store.stats().sessions_recorded > before, "the session to be recorded")

    def stop(self) -> None:
        self.client.close()
        try:
            self.call(self.http.stop())
            self.call(self.server.shutdown(2))
        finally:
            self.store.close()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
