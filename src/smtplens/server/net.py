"""The asyncio adapter: sockets, TLS, timeouts, connection limits and graceful shutdown (docs/server.md).

Each connection is an ``asyncio.Protocol`` that feeds what it receives to a
:class:`~smtplens.server.session.Session` and performs the actions the session returns, synchronously as long
as nothing must be awaited: ``Send`` (``transport.write``), ``Close``, ``NeedDecision`` (the decision source's
``decide_now``: a :class:`~smtplens.server.pipeline.Pipeline` answers without a task when its policies can;
a decision that raises or times out becomes ``451 4.3.0`` and a log line, never a 5xx), ``Deliver``
(``store.store()``, then ``session.stored``) and ``StartTls`` (``loop.start_tls`` with the configured
certificate). Only what must be awaited (a policy that waits, the durable store, the handshake, a delay) runs in
a task, while reading is paused and input that was already on its way waits aside. The clock is here: one
timer per connection applies the session's ``timeout`` (idle or data) from the last activity. The transcript of
each session is recorded in the store when the connection ends. A decision's connection-level effects are
performed here too: ``delay`` waits before the reply, ``slow`` throttles the connection's reads and writes from
then on (a slow link); ``drop`` and ``cut_after`` come back from the session as a ``Close`` without a reply.
The session is asked only about the stages the decision source ``wants`` (and the connect stage when the
adapter must answer it).
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
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from smtplens.model import Stage
from smtplens.server.decisions import ACCEPTED, Decision
from smtplens.server.net_timers import IdleTimer, Ready, bounded, step
from smtplens.server.observer import ServerObserver, report_replies
from smtplens.server.pipeline import Pipeline, policy_error
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
)
from smtplens.server.store_model import SessionRecord
from smtplens.server.store_null import MessageSink

__all__ = [
    "Decide",
    "Decider",
    "ServerConfig",
    "SmtpServer",
    "accept_domains",
    "new_event_loop",
]

log = logging.getLogger("smtplens.server")

Decide = Callable[[Stage, Context], Awaitable[Decision]]
"""A policy hook: ``await decide(stage, context)`` gives the decision for that stage."""

_ACCEPT = ACCEPTED


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
    return Pipeline([RelayPolicy(domains, recipients)]).decide


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop: uvloop's when uvloop is installed, asyncio's otherwise."""
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class Decider(Protocol):
    """A decision source the adapter can drive without a task: a :class:`~smtplens.server.pipeline.Pipeline`.

    ``wants(stage)`` says whether anything is interested in the stage now (the session accepts the others at
    once); ``decide_now`` gives the decision when it is ready at once, or an awaitable for it."""

    def wants(self, stage: Stage) -> bool: ...

    def decide_now(self, stage: Stage, context: Context) -> Decision | Awaitable[Decision]: ...


class _CallDecider:
    """A plain ``Decide`` function as a :class:`Decider`: asked at every stage, always awaited in a task."""

    def __init__(self, decide: Decide) -> None:
        self._decide = decide

    def wants(self, stage: Stage) -> bool:
        return True

    def decide_now(self, stage: Stage, context: Context) -> Decision | Awaitable[Decision]:
        return self._decide(stage, context)


def _decider(decide: Decide | Decider) -> Decider:
    """``decide`` as a Decider: a Decider itself, the bound ``decide`` method of one (``pipeline.decide``), or a
    plain function."""
    for candidate in (decide, getattr(decide, "__self__", None)):
        if callable(getattr(candidate, "decide_now", None)) and callable(getattr(candidate, "wants", None)):
            return cast(Decider, candidate)
    return _CallDecider(cast(Decide, decide))


_PAUSED_BUSY = 1  # the connection waits for something asynchronous (a decision, the store, TLS, a delay)
_PAUSED_WRITING = 2  # the client does not read its replies: stop reading its commands (flow control)


class _Connection(asyncio.Protocol):
    """One client connection: feeds the session synchronously from ``data_received`` and performs its actions;
    a task is started only for what must be awaited (see the module docstring)."""

    def __init__(self, server: SmtpServer, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._loop = loop  # the server's (asyncio.get_running_loop() costs a getpid() system call)
        self.transport: asyncio.Transport | None = None
        self.id = ""
        self.ip = "unknown"
        self.started_at = 0.0
        self.counted = False
        self.rate = 0.0  # a decision's slow link: octets per second both ways from then on (0: full speed)
        self.session: Session
        self._finished: asyncio.Future[None] | None = None  # made when someone waits (shutdown)
        self.done = False  # the connection is closed and its transcript recorded
        self._task: asyncio.Task[None] | None = None  # the asynchronous part in progress, if any
        self._stash: list[bytes] = []  # input that arrived while busy
        self._paused = 0  # _PAUSED_* reasons why reading is paused
        self._lost = False
        self._ended = False
        self._timer = IdleTimer(self._loop, self._timed_out)

    # --- the transport's callbacks ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.transport = transport
        server = self._server
        peer = transport.get_extra_info("peername")
        self.ip = ip = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        self.counted = server._admit(ip)
        # The session asks about the connect stage only in start(), just below: when the adapter need not answer
        # it (the usual case), the policies' own ``wants`` serves every stage (one call less per stage).
        answers_connect = not self.counted or server.maintenance or server._stopping
        self.session = Session(server.config.session, ip, wants=self._wants if answers_connect else server._wants)
        self.id = f"{server._prefix}.{next(server._ids)}"
        self.started_at = time.time()
        server._connections[self] = None
        if server.observer is not None:
            server._notify(lambda observer: observer.connection_opened(self.id, ip))
        try:
            self._perform(self.session.start())
        except Exception:
            self._crashed()

    def data_received(self, data: bytes) -> None:
        if self._task is not None:
            self._stash.append(data)  # reading is paused; what was already on its way waits here
            return
        try:
            if self.rate:
                self._go(self._receive_slowly(data), deque())
                return
            self._perform(self.session.receive(data))
        except Exception:
            self._crashed()

    def eof_received(self) -> bool | None:
        log.debug("session %s from %s: the client closed the connection", self.id, self.ip)
        return None  # close our side too

    def pause_writing(self) -> None:
        self._pause(_PAUSED_WRITING)

    def resume_writing(self) -> None:
        self._resume(_PAUSED_WRITING)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.debug("session %s from %s: connection lost: %s", self.id, self.ip, exc)
        self._lost = True
        self._timer.cancel()
        if self._task is None:  # else the task ends it (a message handed to the store is stored first)
            self._end()

    def _wants(self, stage: Stage) -> bool:
        """Whether the session asks about ``stage``: the adapter's own connect checks, else the policies'."""
        if stage is Stage.CONNECT:
            server = self._server
            if not self.counted or server.maintenance or server._stopping:
                return True
        return self._server._decider.wants(stage)

    # --- performing the session's actions -----------------------------------------------------------------------

    def _perform(self, actions: list[Action]) -> None:
        if len(actions) == 1 and not self.rate:
            send = actions[0]
            if type(send) is Send:  # the usual case, one reply: no queue of actions needed
                transport = self.transport
                assert transport is not None
                if not transport.is_closing():
                    transport.write(send.data)
                if not self._lost:
                    self._timer.arm(self.session.timeout)
                return
        todo = deque(actions)
        pending = self._run(todo)
        if pending is not None:
            self._go(pending, todo)
        elif not self._lost:
            self._timer.arm(self.session.timeout)

    def _run(self, todo: deque[Action]) -> Coroutine[Any, Any, list[Action]] | None:
        """Perform actions until one must be awaited: that one comes back as a coroutine (its follow-up actions
        are its result); the rest stay in ``todo``."""
        session = self.session
        transport = self.transport
        assert transport is not None
        while todo:
            action = todo.popleft()
            if isinstance(action, Send):
                if self.rate:
                    return self._send_slowly(action.data)
                if not transport.is_closing():
                    transport.write(action.data)
            elif isinstance(action, Close):
                transport.close()  # what is written is still sent
            elif isinstance(action, NeedDecision):
                decision = self._server._decision_now(self, action.stage, action.context)
                if decision is not _ACCEPT and (not isinstance(decision, Decision) or decision.delay or decision.slow):
                    return self._decide_later(action.stage, decision)
                todo.extend(session.decided(decision))
            elif isinstance(action, Deliver):
                try:
                    alone = len(self._server._connections) == 1  # nothing to overlap: the store may block the loop
                    stored = step(self._server.store.store(action.envelope, action.message, self.id, alone=alone))
                except Exception as exc:
                    log.error("session %s from %s: storing the message failed: %s", self.id, self.ip, exc)
                    todo.extend(session.stored(False))
                    continue
                if not isinstance(stored, Ready):
                    return self._stored_later(action, stored)
                if self._server.observer is not None:
                    self._server._stored(self, action)
                todo.extend(session.stored(True, stored.value))
            else:
                return self._start_tls()
        return None

    def _go(self, first: Coroutine[Any, Any, list[Action]], todo: deque[Action]) -> None:
        self._pause(_PAUSED_BUSY)
        self._timer.arm(None)
        self._task = self._loop.create_task(self._drive(first, todo))

    async def _drive(self, first: Coroutine[Any, Any, list[Action]], todo: deque[Action]) -> None:
        """The asynchronous part: await ``first``, perform what follows, and so on; then back to callbacks."""
        try:
            pending: Coroutine[Any, Any, list[Action]] | None = first
            while pending is not None:
                todo.extend(await pending)
                pending = self._run(todo)
                if pending is None and self._stash and not self._lost:
                    data = b"".join(self._stash)
                    self._stash.clear()
                    pending = self._receive_slowly(data) if self.rate else _ready(self.session.receive(data))
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            log.debug("session %s from %s: connection lost: %s", self.id, self.ip, exc)
            self._abort()
        except asyncio.CancelledError:
            self._abort()  # the shutdown's grace is over
        except Exception:
            self._crashed()
        finally:
            self._task = None
        if self._lost:
            self._end()
            return
        self._resume(_PAUSED_BUSY)
        self._timer.arm(self.session.timeout)

    async def _decide_later(self, stage: Stage, decision: Decision | Awaitable[Decision]) -> list[Action]:
        if not isinstance(decision, Decision):
            decision = await self._server._decision_later(self, stage, decision)
        if decision.delay:
            await asyncio.sleep(decision.delay)  # a scenario's delayed reply (or dropped connection)
        if decision.slow:
            self.rate = decision.slow
        return self.session.decided(decision)

    async def _stored_later(self, action: Deliver, pending: Awaitable[str]) -> list[Action]:
        # Shielded: once the message is handed to the store it is stored even if the connection is cancelled.
        try:
            queue_id = await asyncio.shield(asyncio.ensure_future(pending))
        except Exception as exc:
            log.error("session %s from %s: storing the message failed: %s", self.id, self.ip, exc)
            return self.session.stored(False)
        self._server._stored(self, action)
        return self.session.stored(True, queue_id)

    async def _send_slowly(self, data: bytes) -> list[Action]:
        """Write ``data`` at about ``rate`` octets per second, in pieces of a tenth of a second each."""
        transport = self.transport
        assert transport is not None
        piece = max(1, int(self.rate / 10))
        for start in range(0, len(data), piece):
            if transport.is_closing():
                break
            chunk = data[start : start + piece]
            transport.write(chunk)
            await asyncio.sleep(len(chunk) / self.rate)
        return []

    async def _receive_slowly(self, data: bytes) -> list[Action]:
        await asyncio.sleep(len(data) / self.rate)  # a slow link delivers slowly
        return self.session.receive(data)

    async def _start_tls(self) -> list[Action]:
        server = self._server
        assert server._ssl is not None and self.transport is not None, "StartTls without a certificate"
        self._stash.clear()  # RFC 3207 section 6: nothing sent before the handshake counts
        try:
            transport = await self._loop.start_tls(self.transport, self, server._ssl, server_side=True)
        except BaseException:
            self._lost = True  # the transport is closed, and connection_lost may never come
            raise
        if transport is None:
            raise ConnectionError("the TLS handshake did not give a transport")
        self.transport = transport
        self._paused &= ~_PAUSED_BUSY  # the new transport reads; the stash keeps what comes until we are done
        ssl_object = transport.get_extra_info("ssl_object")
        description = ""
        if isinstance(ssl_object, ssl.SSLObject):
            cipher = ssl_object.cipher()
            description = f"{ssl_object.version()} {cipher[0] if cipher else ''}".strip()
        return self.session.tls_started(description)

    def perform_now(self, actions: list[Action]) -> None:
        """Actions from outside the session's flow (a shutdown 421): only ``Send`` and ``Close`` occur."""
        transport = self.transport
        for action in actions:
            if transport is None or transport.is_closing():
                return
            if isinstance(action, Send):
                transport.write(action.data)
            elif isinstance(action, Close):
                transport.close()

    # --- flow control, timeouts, the end --------------------------------------------------------------------

    def _pause(self, reason: int) -> None:
        if not self._paused and self.transport is not None and not self._lost:
            self.transport.pause_reading()
        self._paused |= reason

    def _resume(self, reason: int) -> None:
        was = self._paused
        self._paused &= ~reason
        if was and not self._paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _timed_out(self) -> None:
        if self._task is None and not self._lost:
            try:
                self._perform(self.session.timed_out())
            except Exception:
                self._crashed()

    def _crashed(self) -> None:
        log.exception("session %s from %s: internal error, closing the connection", self.id, self.ip)
        self._abort()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    @property
    def finished(self) -> asyncio.Future[None]:
        """Done once the connection is closed and its transcript recorded."""
        if self._finished is None:
            self._finished = self._loop.create_future()
            if self.done:
                self._finished.set_result(None)
        return self._finished

    def set_done(self) -> None:
        self.done = True
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(None)

    def stop(self) -> None:
        """The shutdown's grace is over: close now, whatever is in progress."""
        if self._task is not None:
            self._task.cancel()
        self._abort()

    def _end(self) -> None:
        if self._ended or not self.id:
            return
        self._ended = True
        self._server._ended(self)
        self.session.release()  # no reference cycle left: the connection is freed as soon as uvloop drops it


async def _ready(actions: list[Action]) -> list[Action]:
    return actions


class SmtpServer:
    """The SMTP listener; see the module docstring."""

    def __init__(
        self,
        config: ServerConfig,
        store: MessageSink,
        decide: Decide | Decider | None = None,
        *,
        observer: ServerObserver | None = None,
    ) -> None:
        self.config = config
        self.observer = observer  # told about connections, replies and stored messages (metrics)
        self.store = store
        if decide is None:
            decide = accept_domains(config.accepted_domains, config.accepted_recipients)
        self._decider = _decider(decide)
        self._wants = self._decider.wants
        self.decide: Decide = self._decide_async
        self.maintenance = config.maintenance  # switchable at runtime
        self._ssl = config.ssl_context()
        self._server: asyncio.Server | None = None
        self._connections: dict[_Connection, None] = {}  # open connections, oldest first
        self._per_ip: dict[str, int] = {}
        self._counted = 0
        self._ids = itertools.count(1)
        self._prefix = f"{int(time.time()):x}{os.getpid():x}"
        self._stopping = False
        self._stopped = asyncio.Event()
        self._recording: set[asyncio.Task[None]] = set()

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
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self, loop), host, port, backlog=1024)
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
                connection.perform_now(connection.session.shutdown())
            waiting = [connection.finished for connection in self._connections]
            if waiting:
                _, pending = await asyncio.wait(waiting, timeout=grace)
                if pending:
                    for connection in list(self._connections):
                        connection.stop()
                    await asyncio.wait(pending, timeout=5)
            if self._recording:
                await asyncio.wait(set(self._recording), timeout=5)
            settle = getattr(self.store, "settle", None)
            if settle is not None:  # the transcripts queued with record_session_soon are in the store
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(settle(), 5)
            if self._server is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._server.wait_closed(), 5)
        finally:
            self._stopped.set()

    # ------------------------------------------------------------------------------------- one connection

    def _admit(self, ip: str) -> bool:
        """Count a new connection against the limits; False when it is over one (it gets the overload 421)."""
        if (
            self._stopping
            or self._counted >= self.config.max_connections
            or self._per_ip.get(ip, 0) >= self.config.max_per_ip
        ):
            return False
        self._counted += 1
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        return True

    def _ended(self, connection: _Connection) -> None:
        """The connection is closed: uncount it, tell the observer, record its transcript."""
        del self._connections[connection]
        ip = connection.ip
        if connection.counted:
            self._counted -= 1
            left = self._per_ip[ip] - 1
            if left:
                self._per_ip[ip] = left
            else:
                del self._per_ip[ip]
        if self.observer is not None:
            duration = time.time() - connection.started_at
            self._notify(lambda observer: observer.connection_closed(connection.id, ip, duration))
        soon = getattr(self.store, "record_session_soon", None)
        if soon is not None:  # no need to wait: such a store logs its own failures
            self._record_soon(connection, soon)
            connection.set_done()
            return
        try:
            recording = step(self._record(connection))
        except Exception:  # _record logs its own failures; this is a bug in it
            log.exception("session %s: recording the transcript failed", connection.id)
            recording = Ready(None)
        if isinstance(recording, Ready):
            connection.set_done()
            return
        task = asyncio.ensure_future(recording)
        self._recording.add(task)

        def done(task: asyncio.Future[None]) -> None:
            self._recording.discard(cast("asyncio.Task[None]", task))
            connection.set_done()

        task.add_done_callback(done)

    def _decision_now(self, connection: _Connection, stage: Stage, context: Context) -> Decision | Awaitable[Decision]:
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
            if not self._decider.wants(stage):
                return _ACCEPT
        try:
            return self._decider.decide_now(stage, context)
        except Exception as exc:
            return self._decision_failed(connection, stage, exc)

    async def _decision_later(self, connection: _Connection, stage: Stage, pending: Awaitable[Decision]) -> Decision:
        try:
            return await bounded(pending, self.config.decision_timeout)
        except Exception as exc:
            return self._decision_failed(connection, stage, exc)

    def _decision_failed(self, connection: _Connection, stage: Stage, exc: Exception) -> Decision:
        what = "timed out" if isinstance(exc, TimeoutError) else f"failed: {type(exc).__name__}: {exc}"
        log.error("session %s from %s: the %s decision %s", connection.id, connection.ip, stage.value, what)
        return policy_error(stage, self.config.session.hostname)  # 421 at connect: a greeting is 220, 554 or 421

    async def _decide_async(self, stage: Stage, context: Context) -> Decision:
        """The server's decision source as a plain ``Decide`` (policies and errors, not the adapter's checks)."""
        result = self._decider.decide_now(stage, context)
        return result if isinstance(result, Decision) else await result

    def _stored(self, connection: _Connection, action: Deliver) -> None:
        if self.observer is not None:
            self._notify(lambda observer: observer.message_stored(connection.id, len(action.message)))

    def _notify(self, event: Callable[[ServerObserver], object]) -> None:
        """Tell the observer, if any; an observer that raises is logged, never allowed to break the session."""
        if self.observer is None:
            return
        try:
            event(self.observer)
        except Exception as exc:
            log.error("the server observer failed: %s: %s", type(exc).__name__, exc)

    def _transcript(self, connection: _Connection) -> list[tuple[str, str, str | None]]:
        """The finished session's transcript rows, its replies reported to the observer."""
        transcript = connection.session.transcript_rows()
        if self.observer is not None:
            self._notify(lambda observer: report_replies(observer, transcript))
        return transcript

    def _session_record(self, connection: _Connection) -> dict[str, Any]:
        """The keyword arguments of a store's ``record_session`` / ``record_session_soon`` for a finished
        connection."""
        return {
            "client_address": connection.ip,
            "started_at": connection.started_at,
            "ended_at": time.time(),
            "transcript": self._transcript(connection),
            "outcome": connection.session.outcome,
        }

    def _record_soon(self, connection: _Connection, soon: Callable[..., object]) -> None:
        """Hand the transcript to a store's ``record_session_soon`` (no coroutine: the usual end of a connection)."""
        try:
            soon(connection.id, **self._session_record(connection))
        except Exception as exc:
            log.error("session %s: recording the transcript failed: %s", connection.id, exc)

    async def _record(self, connection: _Connection) -> None:
        """Record the transcript in a store that has only ``record_session`` (awaited)."""
        try:
            await self.store.record_session(connection.id, **self._session_record(connection))
        except Exception as exc:
            log.error("session %s: recording the transcript failed: %s", connection.id, exc)
