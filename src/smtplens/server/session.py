"""The sans-I/O SMTP server session: bytes in, actions out (docs/server.md).

The adapter feeds what it reads to :meth:`Session.receive` and performs the actions it gets back: ``Send``,
``Close``, ``StartTls``, ``NeedDecision`` (answer with :meth:`Session.decided`) and ``Deliver`` (answer with
:meth:`Session.stored` once the message is durable). While the session waits for an answer it processes no
input (pipelined commands stay buffered, :attr:`Session.waiting` tells the adapter it may stop reading). The
session never touches sockets, clocks or files; :attr:`Session.timeout` says which timeout applies now. It asks
only about the stages in ``SessionConfig.decision_stages`` that ``wants(stage)`` (the adapter's policies) wants
now, and accepts the others at once. A
decision's ``drop`` closes the session with no reply, and its ``cut_after`` closes it in the middle of DATA after
that many octets, never answering the message; both, and the adapter's delay and slow link, are noted in the
transcript with the deciding policy's name. The auth stage is asked about a valid AUTH command before its SASL
exchange starts; a refusal there answers ``535`` or ``454`` instead of the exchange.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple, TypeAlias

from smtplens.model import Reply, Stage
from smtplens.server.decisions import ACCEPTED, Decision, Outcome, accepted_reply, reply_for
from smtplens.server.protocol import (
    DECISION_STAGES,
    BodyFacts,
    BodyType,
    DataReader,
    MailFrom,
    MessageBuffer,
    RcptTo,
    Replies,
    SessionConfig,
    Verb,
    auth_offered,
    ehlo_keywords,
    encode_reply,
    make_reply,
    parse_command,
    parse_mail,
    parse_rcpt,
)
from smtplens.server.session_model import (
    Action,
    Close,
    Context,
    Deliver,
    Direction,
    Envelope,
    NeedDecision,
    Send,
    SessionError,
    StartTls,
    TranscriptLine,
)

__all__ = [
    "Action",
    "Close",
    "Context",
    "Deliver",
    "Direction",
    "Envelope",
    "NeedDecision",
    "Send",
    "Session",
    "SessionError",
    "StartTls",
    "TranscriptLine",
]


# ------------------------------------------------------------------------------------------------ internals


class _Mode(Enum):
    NEW = "new"  # start() not called yet
    COMMAND = "command"
    AUTH = "auth"  # a SASL exchange waits for the client's response
    DATA = "data"
    BDAT = "bdat"
    TLS = "tls"  # StartTls was asked for; tls_started() comes next
    CLOSED = "closed"


# Enum members as plain globals: on Python 3.11 naming a member through its class goes through
# EnumType.__getattr__ and costs about as much as a function call, and the session names them on every command.
_NEW, _COMMAND, _AUTH, _DATA, _BDAT, _TLS, _CLOSED = (
    _Mode.NEW,
    _Mode.COMMAND,
    _Mode.AUTH,
    _Mode.DATA,
    _Mode.BDAT,
    _Mode.TLS,
    _Mode.CLOSED,
)
_AT_CONNECT, _AT_HELO, _AT_AUTH, _AT_MAIL, _AT_RCPT, _AT_DATA, _AT_END_OF_DATA = (
    Stage.CONNECT,
    Stage.HELO,
    Stage.AUTH,
    Stage.MAIL,
    Stage.RCPT,
    Stage.DATA,
    Stage.END_OF_DATA,
)
_CLIENT, _SERVER, _NOTE = Direction.CLIENT, Direction.SERVER, Direction.NOTE
_VERB_AUTH, _VERB_QUIT = Verb.AUTH, Verb.QUIT


class _Helo(NamedTuple):
    name: str
    extended: bool


class _AuthStart(NamedTuple):
    """A valid AUTH command waiting for the auth stage's decision: the mechanism and its initial response."""

    mechanism: str
    initial: str  # "" when the client sent none


class _Chunk(NamedTuple):
    size: int
    last: bool
    refusal: Reply | None  # the reply once the chunk is read, when it cannot be accepted


class _Message(NamedTuple):
    data: bytes
    facts: BodyFacts


_Payload: TypeAlias = _Helo | _AuthStart | MailFrom | RcptTo | _Chunk | _Message | None


class _Pending(NamedTuple):
    stage: Stage | None  # None: waiting for stored()
    payload: _Payload


@dataclass(slots=True)
class _Transaction:
    mail: MailFrom
    recipients: list[RcptTo] = field(default_factory=list)
    chunks: MessageBuffer | None = None  # the body so far, once BDAT started
    data_accepted: bool = False  # the data stage's decision accepted the first chunk
    failed: bool = False  # a chunk was refused: the rest is read and refused until RSET


@dataclass(slots=True)
class _Sasl:
    mechanism: str
    username: str | None = None


_ACCEPT = ACCEPTED
_CLOSE = Close()  # a value without fields: one is enough
_SEVERITY = {"5": 2, "4": 1}  # reply classes by how much they say about a session's outcome
_PROMPTS = {"LOGIN": ("VXNlcm5hbWU6", "UGFzc3dvcmQ6")}  # "Username:", "Password:" (draft-murchison-sasl-login)


@dataclass(slots=True)
class _Cut:
    after: int
    left: int
    policy: str | None


class _TooLong:
    """A command line over the limit was discarded."""


_TOO_LONG = _TooLong()


_tuple = _line = tuple.__new__  # a NamedTuple made without its __new__ (a Python function): same value, faster
_STORING = _Pending(None, None)


def _joined(sends: list[Send]) -> Send:
    """Consecutive sends as one (the action itself when there is one)."""
    return sends[0] if len(sends) == 1 else Send(b"".join(send.data for send in sends))


_HELO_REPLIES: dict[tuple[int, bool, bool], tuple[SessionConfig, Reply]] = {}


def _helo_reply(config: SessionConfig, extended: bool, tls: bool) -> Reply:
    """The answer to HELO or EHLO (with the keywords), made once per configuration and TLS state (the cache is
    keyed by the configuration's identity, checked, since hashing a configuration costs more than the reply)."""
    key = (id(config), extended, tls)
    found = _HELO_REPLIES.get(key)
    if found is not None and found[0] is config:
        return found[1]
    lines = [config.hostname]
    if extended:
        lines += ehlo_keywords(config, tls_active=tls)
    reply = make_reply("250", None, "\n".join(lines))
    if len(_HELO_REPLIES) >= 64:
        _HELO_REPLIES.clear()
    _HELO_REPLIES[key] = (config, reply)
    return reply


_GREETINGS: dict[int, tuple[SessionConfig, Reply]] = {}


def _greeting(config: SessionConfig, text: str | None) -> Reply:
    """The 220 greeting; the configuration's own (``text`` None) is made once per configuration (as the HELO
    answer: keyed by identity, checked)."""
    if text is not None:
        return Replies.greeting(config.hostname, text)
    found = _GREETINGS.get(id(config))
    if found is not None and found[0] is config:
        return found[1]
    reply = Replies.greeting(config.hostname, config.banner)
    if len(_GREETINGS) >= 64:
        _GREETINGS.clear()
    _GREETINGS[id(config)] = (config, reply)
    return reply


class _Wire(NamedTuple):
    """A reply ready to go: the ``Send`` action with its octets, its transcript lines (as text, and as transcript
    lines of no policy), its code and how much that code says about the session's outcome (``_SEVERITY``)."""

    send: Send
    lines: tuple[str, ...]
    rows: tuple[TranscriptLine, ...]
    code: str
    severity: int


def _wire(data: bytes) -> _Wire:
    lines = tuple(data.decode("ascii").split("\r\n")[:-1])
    code = lines[-1][:3]
    rows = tuple(TranscriptLine(Direction.SERVER, line) for line in lines)
    return _Wire(Send(data), lines, rows, code, _SEVERITY.get(code[:1], 0))


def _queued(queue_id: str) -> _Wire:
    """``250 2.0.0 Ok: queued as <id>`` as ``_encoded`` would give it, without making and encoding a reply value
    for every message (a queue id is unique: caching it is useless)."""
    if queue_id.isascii() and queue_id.isalnum() and len(queue_id) <= 64:  # nothing for encode_reply to change
        line = f"250 2.0.0 Ok: queued as {queue_id}"
        return _Wire(
            Send(f"{line}\r\n".encode("ascii")), (line,), (_line(TranscriptLine, (_SERVER, line, None)),), "250", 0
        )
    return _encoded(Replies.queued(queue_id))


_ENCODED: dict[Reply, _Wire] = {}
_ENCODED_MAX = 4096  # replies with varying texts (queue ids) are encoded anew once the cache is full


def _encoded(reply: Reply) -> _Wire:
    """A reply ready to go; the common (constant) replies are encoded once, their ``Send`` action made once."""
    found = _ENCODED.get(reply)
    if found is not None:
        return found
    found = _wire(encode_reply(reply))
    if len(_ENCODED) < _ENCODED_MAX:
        _ENCODED[reply] = found
    return found


# -------------------------------------------------------------------------------------------------- session


class Session:
    """One SMTP server session as a state machine; see the module docstring for the adapter's part."""

    def __init__(
        self, config: SessionConfig, client_address: str = "unknown", *, wants: Callable[[Stage], bool] | None = None
    ) -> None:
        self.config = config
        self.client_address = client_address
        stages = config.decision_stages
        # Whether to ask about a stage now: a configured stage that the adapter's policies want (they change).
        self._wants: Callable[[Stage], bool]
        if wants is None:
            self._wants = stages.__contains__
        elif stages >= DECISION_STAGES:
            self._wants = wants  # every stage is configured: no need to look twice
        else:
            self._wants = lambda stage: stage in stages and wants(stage)
        self._limits = config.limits
        self._short_line = min(self._limits.command_line, self._limits.auth_line)  # a line this short is never too long
        self._buffer = bytearray()
        self._out: list[Action] = []
        self._mode = _NEW
        self._refused = False  # a 554 greeting was sent: only QUIT is answered normally (RFC 5321 3.1)
        self._discarding = False  # the rest of an over-long command line is being dropped
        self._helo_name: str | None = None
        self._extended = False
        self._tls = False
        self._auth: str | None = None
        self._sasl: _Sasl | None = None
        self._tx: _Transaction | None = None
        self._reader: DataReader | None = None
        self._chunk: _Chunk | None = None
        self._chunk_left = 0
        self._pending: _Pending | None = None
        self._errors = 0
        self._shutdown = False
        self._transcript: list[TranscriptLine] = []
        self._cut: _Cut | None = None  # a decision asked to close after so many octets of message data
        self._last_code: str | None = None
        self._severity = -1  # _SEVERITY of _last_code (-1: no reply yet)

    # ---------------------------------------------------------------------------------- the adapter's calls

    @property
    def closed(self) -> bool:
        return self._mode is _CLOSED

    @property
    def waiting(self) -> bool:
        """True while the session waits for the adapter (a decision, the store, the TLS handshake)."""
        return self._pending is not None or self._mode is _TLS

    @property
    def timeout(self) -> float | None:
        """Seconds of client silence allowed now (data or idle timeout), None while the adapter has the turn."""
        if self._pending is not None:
            return None  # the adapter has the turn
        mode = self._mode
        if mode is _COMMAND or mode is _AUTH:
            return self.config.idle_timeout
        if mode is _DATA or mode is _BDAT:
            return self.config.data_timeout
        return None  # not started, closed, or waiting for the TLS handshake

    @property
    def transcript(self) -> tuple[TranscriptLine, ...]:
        return tuple(self._transcript)

    def transcript_rows(self) -> list[tuple[str, str, str | None]]:
        """The transcript as ``(direction, text, policy)`` rows, as the store records it (a copy)."""
        return list(self._transcript)  # a Direction is the str it stands for ("C", "S", "*")

    @property
    def outcome(self) -> str | None:
        """The session's outcome: the code of its most severe reply (a 5yz over a 4yz over any other; the last
        of equal severity), so a refused recipient still shows after the ``221`` of QUIT. None before any."""
        return self._last_code

    @property
    def envelope(self) -> Envelope:
        tx = self._tx
        return Envelope(
            self.client_address,
            self._helo_name,
            tx.mail if tx else None,
            tuple(tx.recipients) if tx else (),
            self._tls,
            self._auth,
        )

    def start(self) -> list[Action]:
        """The connection is open: asks the connect decision (or greets at once)."""
        if self._mode is not _NEW:
            raise SessionError("start() was already called")
        self._mode = _COMMAND
        self._ask(_AT_CONNECT, None)
        self._run()
        return self._finish()

    def receive(self, data: bytes) -> list[Action]:
        """Bytes from the client; any amount, any split. Never raises for any input."""
        mode = self._mode
        if mode is _CLOSED or mode is _TLS:
            return []  # plaintext after STARTTLS is dropped (RFC 3207 section 6: no command injection)
        buffer = self._buffer
        buffer += data
        self._run()
        if len(buffer) > self._limits.buffer:
            self._send(Replies.overflow(self.config.hostname))
        out = self._out
        if len(out) == 1:  # the usual case: one reply (what _finish gives, without the call)
            self._out = []
            return out
        return self._finish()

    def decided(self, decision: Decision) -> list[Action]:
        """The answer to the last ``NeedDecision``."""
        if self._mode is _CLOSED:
            return []
        pending = self._pending
        if pending is None or pending.stage is None:
            raise SessionError("decided() without a pending NeedDecision")
        self._pending = None
        self._resolve(pending.stage, pending.payload, decision)
        self._run()
        return self._finish()

    def stored(self, ok: bool, queue_id: str | None = None) -> list[Action]:
        """The answer to ``Deliver``: the 250 is sent only now, once the store said the message is durable."""
        if self._mode is _CLOSED:
            return []
        if self._pending is None or self._pending.stage is not None:
            raise SessionError("stored() without a pending Deliver")
        self._pending = None
        if ok and queue_id:
            self._send_wire(_queued(queue_id))
        else:
            self._send(Replies.queued(queue_id) if ok else Replies.STORE_FAILED)
        self._end_transaction()
        self._run()
        return self._finish()

    def tls_started(self, description: str = "") -> list[Action]:
        """The TLS handshake succeeded. Everything learnt before is forgotten; the client sends EHLO again."""
        if self._mode is _CLOSED:
            return []
        if self._mode is not _TLS:
            raise SessionError("tls_started() without a pending StartTls")
        self._mode = _COMMAND
        self._tls = True
        self._helo_name = None  # RFC 3207 section 4.2: discard the knowledge obtained before TLS
        self._extended = False
        self._auth = None
        self._tx = None
        self._buffer.clear()
        self._record(_NOTE, f"TLS started {description}".rstrip())
        self._run()
        return self._finish()

    def timed_out(self) -> list[Action]:
        """The adapter's timer ran out (idle or data timeout): 421 4.4.2 and close (RFC 5321 4.5.3.2)."""
        if self._mode is not _CLOSED:
            self._send(Replies.timeout(self.config.hostname))
        return self._finish()

    def release(self) -> None:
        """The adapter is done with the session (its connection is over): the ``wants`` hook is let go. It is
        usually a method of the adapter's connection, which holds the session: a reference cycle that only the
        garbage collector would break, and a collection per few dozen connections costs more than this."""
        self._wants = self.config.decision_stages.__contains__

    def shutdown(self) -> list[Action]:
        """Graceful shutdown: 421 at once when idle, else after the current command (a message being received
        is finished, decided and stored first, so nothing that got 250 is lost)."""
        if self._mode is not _CLOSED:
            self._shutdown = True
            if self._pending is None and self._mode in (_NEW, _COMMAND, _AUTH):
                self._send(Replies.shutting_down(self.config.hostname))
        return self._finish()

    # ------------------------------------------------------------------------------------------- main loop

    def _run(self) -> None:
        while self._pending is None:
            mode = self._mode
            if mode is _COMMAND or mode is _AUTH:
                if self._shutdown:
                    self._send(Replies.shutting_down(self.config.hostname))
                    return
                if not self._buffer:
                    return  # all read: the usual end of a call
                line = self._take_line()
                if line is None:
                    return
                if line is _TOO_LONG:
                    self._record(_NOTE, "line too long, discarded")
                    self._sasl = None
                    self._mode = _COMMAND
                    self._error(Replies.LINE_TOO_LONG)
                elif mode is _AUTH:
                    assert isinstance(line, bytes)
                    self._sasl_response(line)
                else:
                    assert isinstance(line, bytes)
                    self._command(line)
            elif mode is _DATA:
                if not self._read_data():
                    return
            elif mode is _BDAT:
                if not self._read_chunk():
                    return
            else:
                return

    def _take_line(self) -> bytes | _TooLong | None:
        """The next line without its ending (CRLF, or a bare LF as Postfix accepts), or None for more input."""
        buffer = self._buffer
        if self._discarding:
            end = buffer.find(b"\n")
            if end < 0:
                buffer.clear()
                return None
            del buffer[: end + 1]
            self._discarding = False
            return _TOO_LONG
        end = buffer.find(b"\n", 0, self._short_line)  # within both limits: the usual case
        if end < 0:
            if len(buffer) < self._short_line:
                return None
            limit = self._line_limit()
            end = buffer.find(b"\n", 0, limit)
            if end < 0:
                if len(buffer) < limit:
                    return None
                end = buffer.find(b"\n", limit)
                if end < 0:
                    buffer.clear()
                    self._discarding = True
                    return None
                del buffer[: end + 1]
                return _TOO_LONG
        line = bytes(buffer[: end - 1 if end and buffer[end - 1] == 13 else end])  # without a CR before the LF
        del buffer[: end + 1]
        return line

    def _line_limit(self) -> int:
        if self._mode is _AUTH or self._buffer[:5].upper() == b"AUTH ":
            return self._limits.auth_line  # RFC 4954 section 4
        return self._limits.command_line  # RFC 5321 section 4.5.3.1.4

    def _finish(self) -> list[Action]:
        """The actions of one call, consecutive sends joined into one."""
        out = self._out
        if len(out) < 2:
            self._out = []
            return out
        actions: list[Action] = []
        sends: list[Send] = []
        for action in out:
            if isinstance(action, Send):
                sends.append(action)
                continue
            if sends:
                actions.append(_joined(sends))
                sends = []
            actions.append(action)
        if sends:
            actions.append(_joined(sends))
        self._out = []
        return actions

    # -------------------------------------------------------------------------------------- replies, close

    def _send(self, reply: Reply, policy: str | None = None) -> None:
        if self._mode is _CLOSED:
            return
        wire = _ENCODED.get(reply) or _encoded(reply)
        self._send_wire(wire, policy)
        if reply.basic == "421":
            self._close()  # RFC 5321 3.8: after a 421 the server closes

    def _send_wire(self, wire: _Wire, policy: str | None = None) -> None:
        """Send a reply ready to go and note its lines in the transcript."""
        if self._mode is _CLOSED:
            return
        self._out.append(wire.send)
        if wire.severity >= self._severity:
            self._severity = wire.severity
            self._last_code = wire.code
        transcript = self._transcript
        lines = wire.lines
        if len(transcript) + len(lines) < self._limits.transcript:  # room for every line: the usual case
            if policy is None:
                transcript += wire.rows
            else:
                transcript += [_line(TranscriptLine, (_SERVER, line, policy)) for line in lines]
        else:
            for line in lines:
                self._record(_SERVER, line, policy)

    def _error(self, reply: Reply) -> None:
        """A protocol error: the reply, then 421 4.7.0 once the error budget is spent."""
        self._send(reply)
        self._errors += 1
        if self._errors >= self._limits.errors:
            self._send(Replies.too_many_errors(self.config.hostname))

    def _close(self) -> None:
        self._mode = _CLOSED
        self._out.append(_CLOSE)
        self._buffer.clear()
        self._pending = None
        self._tx = None
        self._reader = None
        self._sasl = None
        self._cut = None

    def _record(self, direction: Direction, text: str, policy: str | None = None) -> None:
        transcript = self._transcript
        kept = len(transcript)
        if kept < self._limits.transcript:
            transcript.append(_line(TranscriptLine, (direction, text, policy)))  # TranscriptLine(...), faster
        elif kept == self._limits.transcript:
            transcript.append(TranscriptLine(_NOTE, "transcript truncated"))

    # -------------------------------------------------------------------------------------------- decisions

    def _ask(
        self, stage: Stage, payload: _Payload, recipient: RcptTo | None = None, message: _Message | None = None
    ) -> None:
        if not self._wants(stage):
            self._resolve(stage, payload, _ACCEPT)
            return
        self._pending = _Pending(stage, payload)
        context = Context(
            self._candidate(payload),
            recipient,
            message.data if message else None,
            message.facts if message else None,
        )
        self._out.append(NeedDecision(stage, context))

    def _candidate(self, payload: _Payload) -> Envelope:
        envelope = self.envelope
        if isinstance(payload, _Helo):
            return Envelope(envelope.client_address, payload.name, None, (), envelope.tls, envelope.auth)
        if isinstance(payload, MailFrom):
            return Envelope(envelope.client_address, envelope.helo, payload, (), envelope.tls, envelope.auth)
        return envelope

    def _resolve(self, stage: Stage, payload: _Payload, decision: Decision) -> None:
        if decision is _ACCEPT:  # nobody asked, or a plain acceptance: the usual case
            _ACCEPTED[stage](self, payload, decision)
            return
        if decision.effects:
            self._note_effects(decision)
            if decision.drop:
                self._close()  # no reply at all: the client sees a broken connection
                return
        refusal = reply_for(stage, decision)
        if refusal is None:
            _ACCEPTED[stage](self, payload, decision)
            return
        self._send(refusal, decision.policy)
        if stage is _AT_CONNECT:
            self._refused = decision.outcome is Outcome.REJECT
        elif stage is _AT_END_OF_DATA:
            self._end_transaction()
        elif isinstance(payload, _Chunk) and self._tx is not None:
            self._tx.failed = True
            if payload.last:
                self._end_transaction()
        if decision.disconnect:
            self._close()

    def _note_effects(self, decision: Decision) -> None:
        """Transcript notes for what the adapter did (delay, slow link) or the session does (drop, cut)."""
        if decision.delay:
            self._record(_NOTE, f"reply delayed {decision.delay:g} s", decision.policy)
        if decision.slow:
            self._record(_NOTE, f"slow link: {decision.slow:g} octets/s from now on", decision.policy)
        if decision.drop:
            self._record(_NOTE, "connection dropped without a reply", decision.policy)

    def _accept_connect(self, payload: _Payload, decision: Decision) -> None:
        self._send(_greeting(self.config, decision.text or None), decision.policy)

    def _accept_helo(self, payload: _Payload, decision: Decision) -> None:
        assert isinstance(payload, _Helo)
        self._helo_name = payload.name
        self._extended = payload.extended
        self._tx = None  # EHLO/HELO resets the transaction (RFC 5321 4.1.4)
        self._send(_helo_reply(self.config, payload.extended, self._tls), decision.policy)

    def _accept_mail(self, payload: _Payload, decision: Decision) -> None:
        assert isinstance(payload, MailFrom)
        self._tx = _Transaction(payload)
        self._send(accepted_reply(Replies.SENDER_OK, decision), decision.policy)

    def _accept_rcpt(self, payload: _Payload, decision: Decision) -> None:
        assert isinstance(payload, RcptTo) and self._tx is not None
        self._tx.recipients.append(payload)
        self._send(accepted_reply(Replies.RECIPIENT_OK, decision), decision.policy)

    def _accept_data(self, payload: _Payload, decision: Decision) -> None:
        if isinstance(payload, _Chunk):
            assert self._tx is not None
            if decision.cut_after is not None:  # the first chunk is already read: cut now
                self._record(_NOTE, f"connection cut after {payload.size} octets of BDAT", decision.policy)
                self._close()
                return
            self._tx.data_accepted = True
            self._chunk_done(payload)
            return
        self._mode = _DATA
        self._reader = DataReader(self._limits)
        self._send(Replies.START_DATA, decision.policy)
        if decision.cut_after is not None:
            self._cut = _Cut(decision.cut_after, decision.cut_after, decision.policy)

    def _accept_end_of_data(self, payload: _Payload, decision: Decision) -> None:
        assert isinstance(payload, _Message)
        data = payload.data
        if decision.headers:
            data = "".join(f"{header}\r\n" for header in decision.headers).encode("utf-8") + data
        self._out.append(Deliver(self.envelope, data))
        self._pending = _STORING

    def _end_transaction(self) -> None:
        self._tx = None
        self._reader = None
        if self._mode is not _CLOSED:
            self._mode = _COMMAND

    # --------------------------------------------------------------------------------------------- commands

    def _command(self, line: bytes) -> None:
        parsed = parse_command(line)
        if isinstance(parsed, Reply):
            self._record(_CLIENT, line.decode("utf-8", "replace"))
            self._error(parsed)
            return
        verb, argument = parsed
        if verb is _VERB_AUTH and " " in argument:
            self._record(_CLIENT, f"AUTH {argument.split(' ')[0]} ****")  # no secrets kept
        elif len(self._transcript) < self._limits.transcript:  # what _record does, without the call
            self._transcript.append(_line(TranscriptLine, (_CLIENT, line.decode("utf-8", "replace"), None)))
        else:
            self._record(_CLIENT, line.decode("utf-8", "replace"))
        if self._refused and verb is not _VERB_QUIT:
            self._error(Replies.REFUSED)
        else:
            _COMMANDS[verb](self, argument)

    def _helo(self, argument: str) -> None:
        self._greet(argument, extended=False)

    def _ehlo(self, argument: str) -> None:
        self._greet(argument, extended=True)

    def _greet(self, argument: str, *, extended: bool) -> None:
        if not argument:
            self._error(Replies.usage("EHLO hostname" if extended else "HELO hostname"))
        else:
            self._ask(_AT_HELO, _tuple(_Helo, (argument, extended)))  # _Helo(argument, extended), faster

    def _mail(self, argument: str) -> None:
        refusal = self._mail_refusal()
        mail = refusal or parse_mail(argument, extended=self._extended, config=self.config)
        if isinstance(mail, Reply):
            self._error(mail)
        else:
            self._ask(_AT_MAIL, mail)

    def _mail_refusal(self) -> Reply | None:
        if self._helo_name is None:
            return Replies.NEED_HELO
        if self._tx is not None:
            return Replies.NESTED_MAIL
        if self.config.require_tls and not self._tls:
            return Replies.TLS_REQUIRED
        if self.config.require_auth and self._auth is None:
            return Replies.AUTH_REQUIRED
        return None

    def _rcpt(self, argument: str) -> None:
        tx = self._tx
        if tx is None:
            self._error(Replies.NEED_MAIL)
            return
        if len(tx.recipients) >= self._limits.recipients:
            self._send(Replies.TOO_MANY_RECIPIENTS)  # RFC 5321 4.5.3.1.10
            return
        rcpt = parse_rcpt(argument, extended=self._extended, smtputf8=tx.mail.smtputf8)
        if isinstance(rcpt, Reply):
            self._error(rcpt)
        else:
            self._ask(_AT_RCPT, rcpt, recipient=rcpt)

    def _data(self, argument: str) -> None:
        tx = self._tx
        if argument:
            self._error(Replies.usage("DATA"))
        elif tx is None:
            self._error(Replies.NEED_MAIL)
        elif tx.chunks is not None:
            self._error(Replies.DATA_AFTER_BDAT)
        elif not tx.recipients:
            self._error(Replies.NO_RECIPIENTS)  # RFC 5321 3.3
        elif tx.mail.body is BodyType.BINARY_MIME:
            self._error(Replies.BINARY_NEEDS_BDAT)
        else:
            self._ask(_AT_DATA, None)

    def _read_data(self) -> bool:
        reader = self._reader
        assert reader is not None
        if self._cut is not None:
            return self._read_until_cut(reader, self._cut)
        if not reader.feed(self._buffer):
            return False
        self._reader = None
        self._mode = _COMMAND
        self._end_of_data(reader.body)
        return True

    def _read_until_cut(self, reader: DataReader, cut: _Cut) -> bool:
        """Message data under a cut: the connection closes once ``cut.after`` octets have come, or at the end
        of data if the message is shorter; the message is never answered."""
        before = len(self._buffer)
        done = reader.feed(self._buffer)
        cut.left -= before - len(self._buffer)
        if done or cut.left <= 0:
            received = cut.after - cut.left
            self._record(_NOTE, f"connection cut after {received} octets of message data", cut.policy)
            self._close()
        return False

    def _end_of_data(self, body: MessageBuffer) -> None:
        facts = body.facts()
        self._record(_NOTE, f"message of {facts.size} octets")
        refusal = None
        if facts.too_big:
            refusal = Replies.SIZE_EXCEEDED
        elif facts.long_line:
            refusal = Replies.TEXT_LINE_TOO_LONG
        elif facts.bare_lf and self.config.reject_bare_lf:
            refusal = Replies.BARE_LF
        if refusal is not None:
            self._send(refusal)
            self._end_transaction()
            return
        message = _tuple(_Message, (body.message(), facts))  # _Message(...), faster
        self._ask(_AT_END_OF_DATA, message, message=message)

    def _bdat(self, argument: str) -> None:
        if not self.config.chunking:
            self._error(Replies.NOT_IMPLEMENTED)
            return
        words = argument.split()
        if not (words and len(words) <= 2 and words[0].isdigit() and words[0].isascii() and len(words[0]) <= 18) or (
            len(words) == 2 and words[1].upper() != "LAST"
        ):
            self._error(Replies.usage("BDAT size [LAST]"))
            return
        tx = self._tx
        refusal = None
        if tx is None:
            refusal = Replies.NEED_MAIL
        elif not tx.recipients:
            refusal = Replies.NO_RECIPIENTS
        elif tx.failed:
            refusal = Replies.BDAT_FAILED
        elif tx.chunks is None:
            tx.chunks = MessageBuffer(self._limits.message_size)
        self._chunk = _Chunk(int(words[0]), len(words) == 2, refusal)
        self._chunk_left = self._chunk.size
        self._mode = _BDAT  # the chunk is read even when it is refused (RFC 3030 section 2)

    def _read_chunk(self) -> bool:
        chunk = self._chunk
        assert chunk is not None
        take = min(len(self._buffer), self._chunk_left)
        if take:
            if chunk.refusal is None and self._tx is not None and self._tx.chunks is not None:
                self._tx.chunks.add(bytes(self._buffer[:take]))
            del self._buffer[:take]
            self._chunk_left -= take
        if self._chunk_left:
            return False
        self._chunk = None
        self._mode = _COMMAND
        self._record(_NOTE, f"chunk of {chunk.size} octets")
        tx = self._tx
        if chunk.refusal is Replies.BDAT_FAILED:
            self._send(chunk.refusal)  # the client pipelined the rest of a refused message: not its error
            if chunk.last:
                self._end_transaction()
        elif chunk.refusal is not None or tx is None or tx.chunks is None:
            self._error(chunk.refusal or Replies.NEED_MAIL)
            if chunk.last and tx is not None:
                self._end_transaction()
        elif tx.chunks.too_big:
            tx.failed = True
            self._send(Replies.SIZE_EXCEEDED)
            if chunk.last:
                self._end_transaction()
        elif not tx.data_accepted:
            self._ask(_AT_DATA, chunk)
        else:
            self._chunk_done(chunk)
        return True

    def _chunk_done(self, chunk: _Chunk) -> None:
        tx = self._tx
        assert tx is not None and tx.chunks is not None
        if chunk.last:
            self._end_of_data(tx.chunks)
        else:
            self._send(Replies.chunk_received(chunk.size))

    def _rset(self, argument: str) -> None:
        if argument:
            self._error(Replies.usage("RSET"))
        else:
            self._tx = None
            self._send(Replies.OK)

    def _noop(self, argument: str) -> None:
        self._send(Replies.OK)

    def _quit(self, argument: str) -> None:
        self._send(Replies.BYE)
        self._close()

    def _vrfy(self, argument: str) -> None:
        if argument:
            self._send(Replies.VRFY)
        else:
            self._error(Replies.usage("VRFY address"))

    def _expn(self, argument: str) -> None:
        self._send(Replies.EXPN_DISABLED)

    def _help(self, argument: str) -> None:
        self._send(Replies.HELP)

    def _starttls(self, argument: str) -> None:
        if argument:
            self._error(Replies.usage("STARTTLS"))
        elif self._tls:
            self._error(Replies.TLS_ACTIVE)
        elif not self.config.tls_available:
            self._error(Replies.NOT_IMPLEMENTED)
        elif self._tx is not None:
            self._error(Replies.IN_TRANSACTION)
        else:
            self._send(Replies.START_TLS)
            self._buffer.clear()  # RFC 3207 section 6: nothing sent before the handshake counts
            self._discarding = False
            self._mode = _TLS
            self._out.append(StartTls())

    # ------------------------------------------------------------------------------------------------- AUTH

    def _auth_command(self, argument: str) -> None:
        mechanism, _, initial = argument.partition(" ")
        mechanism = mechanism.upper()
        refusal = self._auth_refusal()
        if refusal is None and not mechanism:
            refusal = Replies.usage("AUTH mechanism [initial-response]")
        elif refusal is None and mechanism not in ("PLAIN", "LOGIN"):
            refusal = Replies.AUTH_MECHANISM
        if refusal is not None:
            self._error(refusal)
            return
        self._ask(_AT_AUTH, _AuthStart(mechanism, initial.strip()))

    def _accept_auth(self, payload: _Payload, decision: Decision) -> None:
        """The auth stage accepted the command: the SASL exchange starts (its own replies, whatever the text)."""
        assert isinstance(payload, _AuthStart)
        self._sasl = _Sasl(payload.mechanism)
        if payload.initial:
            self._sasl_step(payload.initial)
        else:
            self._challenge()

    def _auth_refusal(self) -> Reply | None:
        if not self._extended:
            return Replies.NEED_EHLO
        if self._auth is not None:
            return Replies.AUTH_ALREADY
        if self._tx is not None:
            return Replies.IN_TRANSACTION
        if self.config.credentials is None:
            return Replies.AUTH_NOT_ENABLED
        if not auth_offered(self.config, tls_active=self._tls):
            return Replies.AUTH_NEEDS_TLS  # RFC 4954 section 6
        return None

    def _challenge(self) -> None:
        sasl = self._sasl
        assert sasl is not None
        prompts = _PROMPTS.get(sasl.mechanism, ("", ""))
        self._send(make_reply("334", None, prompts[0] if sasl.username is None else prompts[1]))
        self._mode = _AUTH

    def _sasl_response(self, line: bytes) -> None:
        self._record(_CLIENT, "****")
        self._sasl_step(line.decode("ascii", "replace").strip())

    def _sasl_step(self, response: str) -> None:
        sasl = self._sasl
        assert sasl is not None
        self._mode = _COMMAND
        if response == "*":
            self._sasl = None
            self._error(Replies.AUTH_ABORTED)  # RFC 4954 section 4
            return
        try:
            decoded = b"" if response == "=" else base64.b64decode(response, validate=True)
        except (binascii.Error, ValueError):
            self._sasl = None
            self._error(Replies.AUTH_BASE64)
            return
        if sasl.mechanism == "LOGIN" and sasl.username is None:
            sasl.username = decoded.decode("utf-8", "replace")
            self._challenge()
            return
        self._sasl = None
        if sasl.mechanism == "LOGIN":
            self._verify(sasl.username or "", decoded.decode("utf-8", "replace"), "")
            return
        parts = decoded.split(b"\0")  # RFC 4616: authzid NUL authcid NUL passwd
        if len(parts) != 3:
            self._error(Replies.AUTH_FAILED)
            return
        authzid, username, password = (part.decode("utf-8", "replace") for part in parts)
        self._verify(username, password, authzid)

    def _verify(self, username: str, password: str, authzid: str) -> None:
        credentials = self.config.credentials
        assert credentials is not None
        try:
            ok = credentials(username, password)
        except Exception:  # a broken verifier is a temporary failure, never a crash (RFC 4954 section 6: 454)
            self._send(Replies.AUTH_TEMPORARY)
            return
        if ok and authzid in ("", username):
            self._auth = username
            self._send(Replies.AUTH_OK)
        else:
            self._error(Replies.AUTH_FAILED)


_COMMANDS: dict[Verb, Callable[[Session, str], None]] = {
    Verb.HELO: Session._helo,
    Verb.EHLO: Session._ehlo,
    Verb.MAIL: Session._mail,
    Verb.RCPT: Session._rcpt,
    Verb.DATA: Session._data,
    Verb.BDAT: Session._bdat,
    Verb.RSET: Session._rset,
    Verb.NOOP: Session._noop,
    Verb.QUIT: Session._quit,
    Verb.VRFY: Session._vrfy,
    Verb.EXPN: Session._expn,
    Verb.HELP: Session._help,
    Verb.STARTTLS: Session._starttls,
    Verb.AUTH: Session._auth_command,
}

_ACCEPTED: dict[Stage, Callable[[Session, _Payload, Decision], None]] = {
    Stage.CONNECT: Session._accept_connect,
    Stage.HELO: Session._accept_helo,
    Stage.AUTH: Session._accept_auth,
    Stage.MAIL: Session._accept_mail,
    Stage.RCPT: Session._accept_rcpt,
    Stage.DATA: Session._accept_data,
    Stage.END_OF_DATA: Session._accept_end_of_data,
}
