"""The asyncio adapter: sockets, TLS, timeouts, connection limits and graceful shutdown (docs/server.md).

Per connection it feeds what it reads to a :class:`~smtplens.server.session.Session` and performs the actions
the session returns: ``Send`` (write), ``Close``, ``StartTls`` (upgrade with the configured certificate),
``NeedDecision`` (await ``decide(stage, context)``; a decision that raises or times out becomes ``451 4.3.0``
and a log line, never a 5xx) and ``Deliver`` (``MessageStore.store()``, then ``session.stored``). The clock
is here: the session's ``timeout`` bounds every read. The transcript of each session is recorded in the store
when the connection ends. A decision's connection-level effects are performed here too: ``delay`` waits before
the reply, ``slow`` throttles the connection's reads and writes from then on (a slow link); ``drop`` and
``cut_after`` come back from the session as a ``Close`` without a reply.
An optional ``observer`` (:mod:`smtplens.server.observer`) is told about connections, stored messages and
replies (the HTTP side's metrics count them); ``open_sessions()`` is a snapshot of the open connections.

Before any policy, the adapter answers the connect stage itself in two cases: more than ``max_connections``
open connections in total or ``max_per_ip`` from one address (``421 4.7.0 … too many connections``, as
Postfix's anvil) and maintenance mode (``421 4.3.2``). ``shutdown(grace)`` stops listening, sends 421 to every
idle session at once and lets a session in the middle of a message finish it (the store's 250 is sent before
the 421), then closes what is left after ``grace`` seconds; nothing that got a 250 is lost.

uvloop is used when it is installed (:func:`new_event_loop`); it is not required.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.net_timers import ReadDeadline, bounded
from smtplens.server.observer import ServerObserver, report_replies
from smtplens.server.policies.relay import RelayPolicy
from smtplens.server.protocol import SessionConfig
from smtplens.server.session import (
    Action,
    Close,
    Context,
    Deliver,
    NeedDecision,
    Send,
    Session,
    StartTls,
)
from smtplens.server.store_model import SessionRecord
from smtplens.server.store_null import MessageSink

__all__ = [
    "Decide",
    "ServerConfig",
    "SmtpServer",
    "accept_domains",
    "new_event_loop",
]

log = logging.getLogger("smtplens.server")

Decide = Callable[[Stage, Context], Awaitable[Decision]]
"""A policy hook: ``await decide(stage, context)`` gives the decision for that stage."""

_READ_SIZE = 65536
_POLICY_ERROR_TEXT = "Error: policy failure, try again later"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the server needs besides the store. ``accepted_domains`` and ``accepted_recipients`` (lowercase)
    are the only destinations the default policy accepts: smtplens is never an open relay."""

    session: SessionConfig = field(default_factory=SessionConfig)
    accepted_domains: frozenset[str] = frozenset()
    accepted_recipients: frozenset[str] = frozenset()
    max_connections: int = 1000
    max_per_ip: int = 100
    maintenance: bool = False
    decision_timeout: float = 30.0
    certificate: Path | None = None  # PEM certificate chain; STARTTLS is offered when set
    private_key: Path | None = None  # PEM key; None when it is in the certificate file

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_per_ip < 1:
            raise ValueError("max_connections and max_per_ip must be positive")
        if self.decision_timeout <= 0:
            raise ValueError("decision_timeout must be positive")
        if (self.certificate is not None) != self.session.tls_available:
            raise ValueError("SessionConfig.tls_available must be set exactly when a certificate is configured")

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.certificate is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate, self.private_key)
        return context


def accept_domains(domains: Iterable[str], recipients: Iterable[str] = ()) -> Decide:
    """The default policy: accept everything, except recipients outside ``domains`` and ``recipients``, which
    get ``554 5.7.1 <address>: Relay access denied`` at RCPT (Postfix's text). ``postmaster`` is always
    accepted (RFC 5321 section 4.5.1). The rule is :class:`smtplens.server.policies.relay.RelayPolicy`."""
    relay = RelayPolicy(domains, recipients)

    async def decide(stage: Stage, context: Context) -> Decision:
        return await relay.check(stage, context) or Decision.accept()

    return decide


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop: uvloop's when uvloop is installed, asyncio's otherwise."""
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


@dataclass(eq=False)
class _Connection:
    id: str
    ip: str
    session: Session
    writer: asyncio.StreamWriter
    started_at: float
    counted: bool
    rate: float = 0.0  # a decision's slow link: octets per second both ways from then on (0: full speed)


async def _send_slowly(writer: asyncio.StreamWriter, data: bytes, rate: float) -> None:
    """Write ``data`` at about ``rate`` octets per second, in pieces of a tenth of a second each."""
    piece = max(1, int(rate / 10))
    for start in range(0, len(data), piece):
        if writer.is_closing():
            return
        chunk = data[start : start + piece]
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(len(chunk) / rate)


class SmtpServer:
    """The SMTP listener; see the module docstring."""

    def __init__(
        self,
        config: ServerConfig,
        store: MessageSink,
        decide: Decide | None = None,
        *,
        observer: ServerObserver | None = None,
    ) -> None:
        self.config = config
        self.observer = observer  # told about connections, replies and stored messages (metrics)
        self.store = store
        self.decide: Decide = decide or accept_domains(config.accepted_domains, config.accepted_recipients)
        self.maintenance = config.maintenance  # switchable at runtime
        self._ssl = config.ssl_context()
        self._server: asyncio.Server | None = None
        self._connections: dict[_Connection, asyncio.Task[None]] = {}
        self._per_ip: dict[str, int] = {}
        self._counted = 0
        self._ids = itertools.count(1)
        self._prefix = f"{int(time.time()):x}{os.getpid():x}"
        self._stopping = False
        self._stopped = asyncio.Event()

    @property
    def address(self) -> tuple[str, int]:
        """The host and port listened on (after ``start``; port 0 is resolved)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def connections(self) -> int:
        return len(self._connections)

    def open_sessions(self) -> list[SessionRecord]:
        """A snapshot of the connections open now, oldest first, with their transcript so far (for a live view;
        ``ended_at`` and ``outcome`` are None)."""
        return [
            SessionRecord(
                session_id=connection.id,
                client_address=connection.ip,
                started_at=connection.started_at,
                ended_at=None,
                transcript=tuple(
                    (line.direction.value, line.text, line.policy) for line in connection.session.transcript
                ),
                outcome=None,
            )
            for connection in sorted(self._connections, key=lambda connection: connection.started_at)
        ]

    async def start(self, host: str = "127.0.0.1", port: int = 2525) -> None:
        if self._server is not None:
            raise RuntimeError("the server is already started")
        self._server = await asyncio.start_server(self._accept, host, port, limit=_READ_SIZE, backlog=1024)
        log.info("listening on %s:%d", *self.address)

    async def serve_forever(self) -> None:
        """Serve until ``shutdown`` has finished."""
        if self._server is None:
            raise RuntimeError("start() first")
        await self._stopped.wait()

    def install_signal_handlers(self, grace: float) -> None:
        """SIGTERM and SIGINT start a graceful ``shutdown(grace)`` (Unix event loops only)."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._on_signal, signum, grace)

    def _on_signal(self, signum: int, grace: float) -> None:
        log.info("%s: shutting down (grace %.0f s)", signal.Signals(signum).name, grace)
        task = asyncio.get_running_loop().create_task(self.shutdown(grace))
        self._background = task  # keep a reference until it is done

    async def shutdown(self, grace: float = 30.0) -> None:
        """Stop listening, 421 to every open session, wait up to ``grace`` seconds for sessions that are
        receiving a message to finish it, then close the rest. Idempotent."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        try:
            if self._server is not None:
                self._server.close()
            for connection in list(self._connections):
                self._perform_now(connection, connection.session.shutdown())
            tasks = list(self._connections.values())
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=grace)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=5)
            if self._server is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._server.wait_closed(), 5)
        finally:
            self._stopped.set()

    # ------------------------------------------------------------------------------------- one connection

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        session = Session(self.config.session, ip)
        counted = (
            not self._stopping
            and self._counted < self.config.max_connections
            and self._per_ip.get(ip, 0) < self.config.max_per_ip
        )
        connection = _Connection(f"{self._prefix}.{next(self._ids)}", ip, session, writer, time.time(), counted)
        if counted:
            self._counted += 1
            self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        task = asyncio.current_task()
        assert task is not None
        self._connections[connection] = task
        self._notify(lambda observer: observer.connection_opened(connection.id, ip))
        try:
            await self._serve(connection, reader)
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            log.debug("session %s from %s: connection lost: %s", connection.id, ip, exc)
        finally:
            del self._connections[connection]
            if counted:
                self._counted -= 1
                left = self._per_ip[ip] - 1
                if left:
                    self._per_ip[ip] = left
                else:
                    del self._per_ip[ip]
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 5)
            duration = time.time() - connection.started_at
            self._notify(lambda observer: observer.connection_closed(connection.id, ip, duration))
            await asyncio.shield(self._record(connection))

    async def _serve(self, connection: _Connection, reader: asyncio.StreamReader) -> None:
        session = connection.session
        deadline = ReadDeadline()  # the idle and data timeouts, one timer per connection
        try:
            await self._perform(connection, session.start())
            while not session.closed:
                size = max(1, int(connection.rate / 10)) if connection.rate else _READ_SIZE
                try:
                    data = await deadline.read(reader, size, session.timeout)
                except TimeoutError:
                    await self._perform(connection, session.timed_out())
                    break
                if not data:
                    log.debug("session %s from %s: the client closed the connection", connection.id, connection.ip)
                    break
                if connection.rate:
                    await asyncio.sleep(len(data) / connection.rate)  # a slow link delivers slowly
                await self._perform(connection, session.receive(data))
        finally:
            deadline.close()

    async def _perform(self, connection: _Connection, actions: list[Action]) -> None:
        session = connection.session
        writer = connection.writer
        todo: deque[Action] = deque(actions)
        while todo:
            action = todo.popleft()
            more: list[Action] = []
            if isinstance(action, Send):
                if connection.rate:
                    await _send_slowly(writer, action.data, connection.rate)
                elif not writer.is_closing():
                    writer.write(action.data)
                    await writer.drain()
            elif isinstance(action, Close):
                if not writer.is_closing():
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                    writer.close()
            elif isinstance(action, NeedDecision):
                decision = await self._decision(connection, action.stage, action.context)
                if decision.delay:
                    await asyncio.sleep(decision.delay)  # a scenario's delayed reply (or dropped connection)
                if decision.slow:
                    connection.rate = decision.slow
                more = session.decided(decision)
            elif isinstance(action, Deliver):
                more = session.stored(*await self._deliver(connection, action))
            elif isinstance(action, StartTls):
                more = await self._start_tls(connection)
            todo.extend(more)

    def _perform_now(self, connection: _Connection, actions: list[Action]) -> None:
        """Actions outside the connection's own task (a shutdown 421): only ``Send`` and ``Close`` occur."""
        writer = connection.writer
        for action in actions:
            if writer.is_closing():
                return
            if isinstance(action, Send):
                writer.write(action.data)
            elif isinstance(action, Close):
                writer.close()

    async def _decision(self, connection: _Connection, stage: Stage, context: Context) -> Decision:
        hostname = self.config.session.hostname
        if stage is Stage.CONNECT:
            if not connection.counted:
                return Decision.defer(
                    code="421",
                    enhanced="4.7.0",
                    text=f"{hostname} Error: too many connections from {connection.ip}",
                    disconnect=True,
                    policy="overload",
                )
            if self.maintenance or self._stopping:
                return Decision.defer(
                    code="421",
                    enhanced="4.3.2",
                    text=f"{hostname} Service temporarily unavailable, closing transmission channel",
                    disconnect=True,
                    policy="maintenance",
                )
        try:
            return await bounded(self.decide(stage, context), self.config.decision_timeout)  # no task if it need not
        except Exception as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else f"failed: {type(exc).__name__}: {exc}"
            log.error("session %s from %s: the %s decision %s", connection.id, connection.ip, stage.value, what)
            if stage is Stage.CONNECT:  # a greeting may only be 220, 554 or 421 (and 421 closes)
                return Decision.defer(
                    code="421",
                    enhanced="4.3.0",
                    text=f"{hostname} {_POLICY_ERROR_TEXT}",
                    disconnect=True,
                    policy="error",
                )
            return Decision.defer(code="451", enhanced="4.3.0", text=_POLICY_ERROR_TEXT, policy="error")

    async def _deliver(self, connection: _Connection, action: Deliver) -> tuple[bool, str | None]:
        # Shielded: once the message is handed to the store it is stored even if the connection is cancelled.
        try:
            queue_id = await asyncio.shield(self.store.store(action.envelope, action.message, connection.id))
        except Exception as exc:
            log.error("session %s from %s: storing the message failed: %s", connection.id, connection.ip, exc)
            return False, None
        self._notify(lambda observer: observer.message_stored(connection.id, len(action.message)))
        return True, queue_id

    async def _start_tls(self, connection: _Connection) -> list[Action]:
        assert self._ssl is not None, "StartTls without a certificate"
        await connection.writer.drain()
        await connection.writer.start_tls(self._ssl)
        ssl_object = connection.writer.get_extra_info("ssl_object")
        description = ""
        if isinstance(ssl_object, ssl.SSLObject):
            cipher = ssl_object.cipher()
            description = f"{ssl_object.version()} {cipher[0] if cipher else ''}".strip()
        return connection.session.tls_started(description)

    def _notify(self, event: Callable[[ServerObserver], object]) -> None:
        """Tell the observer, if any; an observer that raises is logged, never allowed to break the session."""
        if self.observer is None:
            return
        try:
            event(self.observer)
        except Exception as exc:
            log.error("the server observer failed: %s: %s", type(exc).__name__, exc)

    async def _record(self, connection: _Connection) -> None:
        session = connection.session
        transcript = [(line.direction.value, line.text, line.policy) for line in session.transcript]
        replies = [line.text for line in session.transcript if line.direction.value == "S"]
        outcome = replies[-1][:3] if replies else None
        self._notify(lambda observer: report_replies(observer, transcript))
        try:
            await self.store.record_session(
                connection.id,
                client_address=connection.ip,
                started_at=connection.started_at,
                ended_at=time.time(),
                transcript=transcript,
                outcome=outcome,
            )
        except Exception as exc:
            log.error("session %s: recording the transcript failed: %s", connection.id, exc)
