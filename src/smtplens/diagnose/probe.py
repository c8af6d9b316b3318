"""``probe()``: walk a mail server through an SMTP session the way a sending MTA would, and say what went wrong.

The target is a host (``HOST``, ``HOST:PORT``, ``[IPv6]:PORT``, an IP address) or a mail domain, whose MX hosts
are tried in preference order (RFC 5321 section 5.1; a domain without MX is its own implicit MX, a null MX
``0 .`` means it takes no mail at all, RFC 7505) until one answers with a greeting. Each try is an
:class:`Attempt` whose :class:`Step` list is the session transcript: connect, greeting, EHLO (HELO if EHLO is
refused), STARTTLS and EHLO again, MAIL, RCPT, DATA and the end of data when asked, QUIT. The probe keeps SMTP's
manners: after a 554 greeting it sends only QUIT (section 3.1), after any 421 it sends nothing more and lets the
server close (section 3.8), and it never sends DATA without an accepted recipient (section 3.3).

Every 4yz or 5yz reply is explained by :func:`smtplens.classify` for its stage; :func:`assess` turns the
attempts into the report's verdict and findings without touching the network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.utils import formatdate, make_msgid
from enum import StrEnum

from smtplens.classifier import Verdict, classify
from smtplens.diagnose import findings as f
from smtplens.diagnose.dns import DnsError, Resolver
from smtplens.diagnose.findings import Finding
from smtplens.diagnose.report import Report
from smtplens.diagnose.smtp_client import (
    Capabilities,
    Failure,
    ServerReply,
    SmtpClient,
    SmtpClientError,
    Timeouts,
    check_command,
    parse_ehlo,
)
from smtplens.diagnose.tlsinfo import TlsInfo, describe, describing_context, verifying_context
from smtplens.errors import SmtplensError
from smtplens.model import Reply, Stage
from smtplens.reply import parse_reply

__all__ = [
    "MAX_ATTEMPTS",
    "Attempt",
    "ProbeError",
    "ProbeInputError",
    "ProbeReport",
    "Step",
    "StepName",
    "Target",
    "Timeouts",
    "assess",
    "parse_target",
    "probe",
    "probe_message",
]

MAX_ATTEMPTS = 10
"""Addresses tried at most before giving up (Postfix tries 5 by default: ``smtp_mx_address_limit``)."""

CLOSE_WAIT = 5.0
"""Seconds to wait for the server to close after it sent 421."""

_LABEL_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


class ProbeError(SmtplensError):
    """The probe could not run at all (no DNS answer for the target)."""


class ProbeInputError(SmtplensError, ValueError):
    """A target, address or option given to :func:`probe` is not usable; the message says which and why."""


class StepName(StrEnum):
    CONNECT = "connect"
    GREETING = "greeting"
    EHLO = "ehlo"
    HELO = "helo"
    STARTTLS = "starttls"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    END_OF_DATA = "end_of_data"
    QUIT = "quit"


_STAGE = {
    StepName.CONNECT: Stage.CONNECT,
    StepName.GREETING: Stage.CONNECT,
    StepName.EHLO: Stage.HELO,
    StepName.HELO: Stage.HELO,
    StepName.STARTTLS: Stage.STARTTLS,
    StepName.MAIL: Stage.MAIL,
    StepName.RCPT: Stage.RCPT,
    StepName.DATA: Stage.DATA,
    StepName.END_OF_DATA: Stage.END_OF_DATA,
    StepName.QUIT: Stage.QUIT,
}


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a session: the command as sent (None for connect and greeting), the reply, the time it took.

    ``error`` says how a step without a complete reply failed and ``detail`` describes it; ``explanation`` is the
    classifier's verdict on a 4yz/5yz reply; ``tls`` describes the session a STARTTLS step established.
    """

    name: StepName
    command: str | None
    reply: Reply | None
    elapsed: float
    error: Failure | None = None
    detail: str | None = None
    explanation: Verdict | None = None
    tls: TlsInfo | None = None

    @property
    def code(self) -> int | None:
        return int(self.reply.basic) if self.reply is not None and self.reply.basic else None

    @property
    def failed(self) -> bool:
        """The step failed on the network, or got a 4yz/5yz reply."""
        code = self.code
        return self.error is not None or (code is not None and code >= 400)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One connection to one address of one host: the transcript and what EHLO advertised."""

    host: str
    address: str
    port: int
    steps: tuple[Step, ...]
    capabilities: Capabilities | None = None

    def step(self, name: StepName | str) -> Step | None:
        """The last step of this name, if any."""
        for item in reversed(self.steps):
            if item.name == name:
                return item
        return None

    @property
    def greeted(self) -> bool:
        """The server answered the connection with a greeting (of any code)."""
        greeting = self.step(StepName.GREETING)
        return greeting is not None and greeting.reply is not None

    @property
    def tls(self) -> TlsInfo | None:
        starttls = self.step(StepName.STARTTLS)
        return starttls.tls if starttls is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeReport(Report):
    """What a probe found. ``mx`` lists the domain's MX records (preference, host); ``implicit_mx`` is true when
    the domain had none and its own address was used; ``attempts`` are in the order they were made."""

    target: str
    port: int
    mx: tuple[tuple[int, str], ...] = ()
    implicit_mx: bool = False
    null_mx: bool = False
    attempts: tuple[Attempt, ...] = ()

    @property
    def reached(self) -> Attempt | None:
        """The attempt that got a greeting, if any."""
        for attempt in self.attempts:
            if attempt.greeted:
                return attempt
        return None


# --- input -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed target: ``kind`` is ``ip`` (an address), ``host`` (a name with a port: no MX lookup) or
    ``domain`` (a mail domain: MX lookup)."""

    text: str
    host: str
    port: int | None
    kind: str


def parse_target(text: str) -> Target:
    """Parse ``HOST``, ``HOST:PORT``, ``[IPv6]:PORT``, an IP address, a domain or ``user@domain``."""
    raw = text.strip()
    if not raw:
        raise ProbeInputError("the target is empty; give a host, HOST:PORT, [IPv6]:PORT or a mail domain")
    if raw.startswith("["):
        inner, sep, rest = raw[1:].partition("]")
        if not sep:
            raise ProbeInputError(f"{text!r}: a '[' without its closing ']'")
        if inner.lower().startswith("ipv6:"):  # the address literal form of RFC 5321 section 4.1.3
            inner = inner[5:]
        address = _ip(inner)
        if address is None:
            raise ProbeInputError(f"{text!r}: {inner!r} in brackets is not an IP address")
        if rest and not rest.startswith(":"):
            raise ProbeInputError(f"{text!r}: expected ':PORT' after the ']'")
        return Target(raw, address, _port(rest[1:], text) if rest else None, "ip")
    address = _ip(raw)
    if address is not None:
        return Target(raw, address, None, "ip")
    if raw.count(":") > 1:
        raise ProbeInputError(f"{text!r}: write an IPv6 address with a port in brackets, like [2001:db8::1]:25")
    if ":" in raw:
        host, _, port_text = raw.partition(":")
        port = _port(port_text, text)
        address = _ip(host)
        if address is not None:
            return Target(raw, address, port, "ip")
        return Target(raw, _domain(host, text), port, "host")
    if "@" in raw:
        raw = raw.rsplit("@", 1)[1]
    return Target(text.strip(), _domain(raw, text), None, "domain")


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _port(text: str, target: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ProbeInputError(f"{target!r}: {text!r} is not a port number (1-65535)")
    return int(text)


def _domain(text: str, target: str) -> str:
    name = text.rstrip(".")
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError as exc:
        raise ProbeInputError(f"{target!r}: not a valid domain name ({exc})") from exc
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise ProbeInputError(f"{target!r}: not a valid host or domain name")
    return name.lower()


def _path(address: str | None, what: str) -> str:
    """``<address>`` for MAIL FROM / RCPT TO; ``<>`` for None or empty (the null reverse-path)."""
    text = (address or "").strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    if any(ch in text for ch in "<>\r\n\t ") or (text and "@" not in text and what == "--to"):
        raise ProbeInputError(f"{what} {address!r} is not a mail address")
    return f"<{text}>"


def probe_message(mail_from: str, rcpt_to: Sequence[str], helo: str, *, now: float | None = None) -> bytes:
    """The small message ``--send`` delivers: headers of RFC 5322 and a body that says what it is."""
    sender = mail_from.strip("<>") or f"postmaster@{helo.strip('[]')}"
    lines = [
        f"From: smtplens probe <{sender}>",
        "To: " + ", ".join(rcpt.strip("<>") for rcpt in rcpt_to),
        "Subject: smtplens probe test message",
        f"Date: {formatdate(now, localtime=False)}",
        f"Message-ID: {make_msgid('smtplens-probe', domain=helo.strip('[]') or None)}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This message was sent by smtplens probe to test mail delivery.",
        "It needs no answer and can be deleted.",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class _Options:
    port: int
    mail_from: str
    rcpt_to: tuple[str, ...]
    helo: str | None
    starttls: bool
    source_ip: str | None
    send: bool
    timeouts: Timeouts


# --- where to connect --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    mx: tuple[tuple[int, str], ...] = ()
    null_mx: bool = False
    implicit_mx: bool = False
    hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    findings: tuple[Finding, ...] = ()


async def _addresses(resolver: Resolver, host: str, families: tuple[int, ...]) -> tuple[str, ...]:
    """IPv4 addresses, then IPv6, of ``host``; DnsError passes through."""
    found: list[str] = []
    if 4 in families:
        found += (await resolver.a(host)).records
    if 6 in families:
        found += (await resolver.aaaa(host)).records
    return tuple(found)


def _parse_mx(records: Sequence[str]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for record in records:
        parts = record.split()
        if parts and parts[0].isdigit():
            out.append((int(parts[0]), parts[1].rstrip(".").lower() if len(parts) > 1 else ""))
    return sorted(out, key=lambda item: item[0])  # stable: equal preferences keep the answer's order


async def _plan(target: Target, resolver: Resolver, families: tuple[int, ...]) -> _Plan:
    if target.kind == "ip":
        return _Plan(hosts=((target.host, (target.host,)),))
    try:
        if target.kind == "host":
            return _Plan(hosts=((target.host, await _addresses(resolver, target.host, families)),))
        answer = await resolver.mx(target.host)
    except DnsError as exc:
        raise ProbeError(f"could not look up {target.host}: {exc}") from exc
    domain = target.host
    if answer.nxdomain:
        return _Plan(
            findings=(
                f.error(
                    "probe.nxdomain",
                    f"the domain {domain} does not exist (NXDOMAIN)",
                    "Check the spelling of the domain.",
                ),
            )
        )
    mx = _parse_mx(answer.records)
    findings: list[Finding] = []
    if mx and all(host == "" for _, host in mx):
        return _Plan(mx=tuple(mx), null_mx=True)
    if any(host == "" for _, host in mx):
        findings.append(
            f.warning(
                "probe.null_mx_mixed",
                f"{domain} publishes a null MX beside other MX records",
                "A null MX (RFC 7505) must be the only MX record; remove it or the others.",
            )
        )
        mx = [item for item in mx if item[1]]
    implicit = not mx
    names = [domain] if implicit else list(dict.fromkeys(host for _, host in mx))
    results = await asyncio.gather(*(_addresses(resolver, name, families) for name in names), return_exceptions=True)
    hosts: list[tuple[str, tuple[str, ...]]] = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, DnsError):
            findings.append(
                f.warning(
                    "probe.mx_lookup_failed",
                    f"the addresses of {name} could not be looked up: {result}",
                    "Retry later; if it persists, check the DNS servers of that name.",
                )
            )
        elif isinstance(result, BaseException):
            raise result
        elif not result:
            if not implicit:
                findings.append(
                    f.warning(
                        "probe.mx_no_address",
                        f"the MX host {name} has no usable address",
                        "Give the MX host an A or AAAA record, or remove the MX record.",
                    )
                )
        else:
            hosts.append((name, result))
    return _Plan(mx=tuple(mx), implicit_mx=implicit, hosts=tuple(hosts), findings=tuple(findings))


# --- one session -------------------------------------------------------------------------------------------------


def _default_helo(local_address: str | None) -> str:
    """This machine's name if it is fully qualified, else the address literal of the local end (RFC 5321
    section 4.1.4). No DNS is asked: a lookup of one's own name can hang."""
    name = socket.gethostname()
    if "." in name and not name.lower().startswith("localhost"):
        return name
    if local_address is None:
        return "[127.0.0.1]"
    return f"[IPv6:{local_address}]" if ":" in local_address else f"[{local_address}]"


class _Session:
    """Runs the steps on one connection and records them; never raises for network trouble.

    ``last`` is the last reply received, None once the connection is lost: :meth:`_finish` decides from it how to
    end the session. Each phase returns whether the session goes on.
    """

    def __init__(self, host: str, address: str, options: _Options) -> None:
        self.host = host
        self.address = address
        self.options = options
        self.timeouts = options.timeouts
        self.steps: list[Step] = []
        self.client: SmtpClient | None = None
        self.last: ServerReply | None = None
        self.capabilities: Capabilities | None = None
        self.helo = options.helo or ""

    async def run(self) -> Attempt:
        try:
            if await self._open() and await self._hello():
                wants_tls = self.options.starttls or (self.capabilities is not None and self.capabilities.starttls)
                if not wants_tls or await self._starttls():
                    await self._transaction()
            await self._finish()
        finally:
            if self.client is not None:
                await self.client.close()
        return Attempt(self.host, self.address, self.options.port, tuple(self.steps), self.capabilities)

    # the steps

    async def _open(self) -> bool:
        """Connect and read the greeting; only a 2yz greeting goes on."""
        start = time.monotonic()
        client = await self._connect()
        if isinstance(client, SmtpClientError):
            self.steps.append(Step(StepName.CONNECT, None, None, time.monotonic() - start, client.failure, str(client)))
            return False
        self.client = client
        self.steps.append(Step(StepName.CONNECT, None, None, time.monotonic() - start))
        self.helo = self.helo or _default_helo(client.local_address)
        greeting = await self._exchange(StepName.GREETING, None, self.timeouts.greeting)
        return greeting is not None and greeting.positive  # 220 by RFC 5321 section 4.2

    async def _hello(self) -> bool:
        """EHLO, or HELO when EHLO is refused with 5yz (RFC 5321 section 4.1.4)."""
        reply = await self._exchange(StepName.EHLO, f"EHLO {self.helo}", self.timeouts.ehlo)
        if reply is not None and reply.positive:
            self.capabilities = parse_ehlo(reply.lines)
            return True
        if reply is None or reply.digit != 5:
            return False
        reply = await self._exchange(StepName.HELO, f"HELO {self.helo}", self.timeouts.ehlo)
        if reply is None or not reply.positive:
            return False
        self.capabilities = Capabilities(name=reply.lines[0].split(" ", 1)[0] if reply.lines else "")
        return True

    async def _starttls(self) -> bool:
        """STARTTLS (RFC 3207), then EHLO again. Opportunistic unless ``starttls`` requires it: a refused
        STARTTLS then goes on in the clear, a required one that is not offered ends the session before MAIL."""
        if self.capabilities is not None and not self.capabilities.starttls:
            return False
        reply = await self._exchange(StepName.STARTTLS, "STARTTLS", self.timeouts.starttls)
        if reply is None or reply.code != 220:
            return reply is not None and reply.code != 421 and not self.options.starttls
        start = time.monotonic() - self.steps[-1].elapsed
        info = await self._handshake()
        step = replace(self.steps[-1], elapsed=time.monotonic() - start)
        if isinstance(info, SmtpClientError):
            self.steps[-1] = replace(step, error=info.failure, detail=str(info))
            self.last = None  # a failed handshake leaves nothing to talk over
            return False
        self.steps[-1] = replace(step, tls=info)
        self.capabilities = None
        return await self._hello()

    async def _handshake(self) -> TlsInfo | SmtpClientError:
        """Handshake verifying the chain; if only verification fails, describe the certificate over a second
        connection that does not verify, and carry on with the session there."""
        assert self.client is not None
        try:
            session = await self.client.starttls(verifying_context(), self._sni, self.timeouts.starttls)
            return describe(session, self.host)
        except SmtpClientError as exc:
            if exc.verify_error is None:
                return exc
            verify_error = exc.verify_error
        await self.client.close()
        self.client = None
        client = await self._connect()
        if isinstance(client, SmtpClientError):
            return _second_failed(verify_error, str(client))
        self.client = client
        try:
            for command, want, timeout in (
                (None, 220, self.timeouts.greeting),
                (f"EHLO {self.helo}", 250, self.timeouts.ehlo),
                ("STARTTLS", 220, self.timeouts.starttls),
            ):
                reply = await (client.read_reply(timeout) if command is None else client.command(command, timeout))
                if reply.code != want:
                    return _second_failed(verify_error, f"{command or 'the greeting'} got {reply.raw!r}")
            session = await client.starttls(describing_context(), self._sni, self.timeouts.starttls)
        except SmtpClientError as exc:
            return _second_failed(verify_error, str(exc))
        return describe(session, self.host, verify_error=verify_error)

    async def _transaction(self) -> None:
        """MAIL, each RCPT, and with ``send`` DATA and the message."""
        options = self.options
        mail = f"MAIL FROM:{options.mail_from}"
        if not options.mail_from.isascii() and self.capabilities is not None and self.capabilities.smtputf8:
            mail += " SMTPUTF8"  # RFC 6531 section 3.4
        reply = await self._exchange(StepName.MAIL, mail, self.timeouts.mail)
        if reply is None or not reply.positive:
            return
        accepted: list[str] = []
        for rcpt in options.rcpt_to:
            reply = await self._exchange(StepName.RCPT, f"RCPT TO:{rcpt}", self.timeouts.rcpt)
            if reply is None or reply.code == 421:
                return
            if reply.positive:
                accepted.append(rcpt)
        if not options.send or not accepted:  # no DATA without an accepted recipient (RFC 5321 section 3.3)
            return
        reply = await self._exchange(StepName.DATA, "DATA", self.timeouts.data)
        if reply is None or reply.code != 354:  # after 5yz to DATA the data must not be sent (section 3.3)
            return
        await self._exchange(
            StepName.END_OF_DATA,
            ".",
            self.timeouts.end_of_data,
            message=probe_message(options.mail_from, accepted, self.helo),
        )

    async def _finish(self) -> None:
        """End politely: nothing after a lost connection, wait for the server to close after a 421 (RFC 5321
        section 3.8), else QUIT and read its reply (after a 554 greeting too: section 3.1)."""
        if self.client is None or self.last is None:
            return
        if self.last.code == 421:
            await self.client.wait_for_close(min(CLOSE_WAIT, self.timeouts.quit))
            return
        await self._exchange(StepName.QUIT, "QUIT", self.timeouts.quit)

    # plumbing

    @property
    def _sni(self) -> str | None:
        return None if _ip(self.host) is not None else self.host

    async def _connect(self) -> SmtpClient | SmtpClientError:
        try:
            return await SmtpClient.connect(
                self.address, self.options.port, timeout=self.timeouts.connect, source_ip=self.options.source_ip
            )
        except SmtpClientError as exc:
            return exc

    async def _exchange(
        self, name: StepName, command: str | None, timeout: float, *, message: bytes | None = None
    ) -> ServerReply | None:
        """Send ``command`` (nothing for the greeting; the message for the end of data), read the reply and
        record the step. None when no complete reply came."""
        assert self.client is not None
        start = time.monotonic()
        try:
            if message is not None:
                reply = await self.client.send_message(
                    message, block_timeout=self.timeouts.data_block, reply_timeout=timeout
                )
            elif command is None:
                reply = await self.client.read_reply(timeout, name.value)
            else:
                reply = await self.client.command(command, timeout)
        except SmtpClientError as exc:
            self.steps.append(Step(name, command, None, time.monotonic() - start, exc.failure, str(exc)))
            self.last = None
            return None
        stage = _STAGE[name]
        parsed = parse_reply(reply.raw)._replace(stage=stage, remote_host=self.host, remote_ip=self.address)
        explanation = classify(parsed, stage=stage, remote_host=self.host) if reply.failed else None
        self.steps.append(Step(name, command, parsed, time.monotonic() - start, explanation=explanation))
        self.last = reply
        return reply


def _second_failed(verify_error: str, why: str) -> SmtpClientError:
    return SmtpClientError(
        Failure.TLS,
        f"certificate verification failed: {verify_error}; a second connection to describe the certificate "
        f"failed too: {why}",
        verify_error=verify_error,
    )


# --- the verdict -------------------------------------------------------------------------------------------------

_CONNECT_FIX = {
    Failure.REFUSED: "Check that an SMTP server listens on this address and port and that no firewall rejects "
    "the connection.",
    Failure.TIMEOUT: "Check the network path: a firewall may drop the packets, and many networks and cloud "
    "providers block outgoing connections to port 25.",
    Failure.UNREACHABLE: "Check this machine's network connection and routes to that address.",
    Failure.BIND: "Give --source-ip an address configured on this machine, of the same family as the server's.",
}
_STEP_FIX = "Retry later; if it persists, the server or the network path between you drops the session."
_GREETING_HINT = {
    4: "the server is overloaded or is limiting your connections; retry later",
    5: "the server refuses your connections; check your IP address's blocklist listings",
}
_LABEL = {
    StepName.GREETING: "the greeting",
    StepName.EHLO: "EHLO",
    StepName.HELO: "HELO",
    StepName.STARTTLS: "STARTTLS",
    StepName.MAIL: "MAIL FROM",
    StepName.RCPT: "RCPT TO",
    StepName.DATA: "DATA",
    StepName.END_OF_DATA: "the end of data",
    StepName.QUIT: "QUIT",
}


def _where(attempt: Attempt) -> str:
    host = attempt.host if attempt.host == attempt.address else f"{attempt.host} [{attempt.address}]"
    return f"{host} port {attempt.port}"


def _first_line(reply: Reply, limit: int = 200) -> str:
    """A reply on one line: code, enhanced code and the text lines joined (shortened past ``limit``)."""
    text = " ".join(part for part in (reply.basic, reply.enhanced, reply.message) if part)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _asked(step: Step) -> str:
    """What was asked: the command as sent (``RCPT TO:<bob@example.test>``), else the step's label."""
    if step.command and step.name not in (StepName.EHLO, StepName.HELO, StepName.END_OF_DATA):
        return step.command
    return _LABEL[step.name]


def _reply_finding(attempt: Attempt, step: Step) -> Finding:
    assert step.reply is not None
    code = step.code or 0
    what = f"{_where(attempt)} answered {_asked(step)} with {_first_line(step.reply)}"
    explanation = step.explanation
    if explanation is not None:
        what += f" ({explanation.reason_title}: {explanation.meaning})"
    make = f.error if code >= 500 else f.warning
    return make(f"probe.{step.name.value}_{code // 100}xx", what, explanation.action if explanation else "")


def _tls_findings(attempt: Attempt, required: bool) -> list[Finding]:
    out: list[Finding] = []
    where = _where(attempt)
    caps = attempt.capabilities
    starttls = attempt.step(StepName.STARTTLS)
    if starttls is None:
        if caps is not None and not caps.starttls and (attempt.step(StepName.EHLO) or attempt.step(StepName.HELO)):
            make = f.error if required else f.info
            out.append(
                make(
                    "probe.no_starttls",
                    f"{where} does not offer STARTTLS; mail to it travels unencrypted",
                    "Enable STARTTLS on the server (Postfix: smtpd_tls_security_level = may).",
                )
            )
        return out
    info = starttls.tls
    if starttls.error is not None or info is None:
        return out
    not_verified = f.warning if required else f.info
    if not info.verified:
        out.append(
            not_verified(
                "probe.tls_unverified",
                f"the certificate of {where} could not be verified: {info.verify_error}",
                "Use a certificate from a public CA with its full chain "
                "(opportunistic SMTP TLS still encrypts without it; MTA-STS and DANE senders refuse).",
            )
        )
    if not info.name_match and _ip(attempt.host) is None:  # MX hosts are names; an IP target has none to match
        out.append(
            not_verified(
                "probe.tls_name_mismatch",
                f"the certificate of {where} does not cover the name "
                f"{attempt.host} (it names {', '.join(info.names) or 'nothing'})",
                "Add the MX host name to the certificate's subjectAltName.",
            )
        )
    if info.expired:
        out.append(
            f.warning(
                "probe.tls_expired", f"the certificate of {where} expired on {info.not_after}", "Renew the certificate."
            )
        )
    return out


def _session_findings(attempt: Attempt, required: bool) -> tuple[list[Finding], str | None]:
    """Findings of a greeted attempt and the first problem in one phrase (None when the session went well)."""
    out: list[Finding] = []
    problem: str | None = None
    ehlo = attempt.step(StepName.EHLO)
    for step in attempt.steps:
        if step.name is StepName.QUIT:  # the session's outcome is known by then
            continue
        if step.error is not None:
            out.append(
                f.error(f"probe.{step.name.value}_{step.error.value}", f"{_where(attempt)}: {step.detail}", _STEP_FIX)
            )
            problem = problem or f"{_LABEL.get(step.name, step.name.value)} failed: {step.detail}"
        elif step.reply is not None and step.failed:
            if step.name is StepName.EHLO and attempt.step(StepName.HELO) is not None:
                helo = attempt.step(StepName.HELO)
                if helo is not None and not helo.failed:
                    out.append(
                        f.info(
                            "probe.ehlo_refused",
                            f"{_where(attempt)} refused EHLO ({_first_line(step.reply)}) and accepted HELO: "
                            "no SMTP extensions",
                        )
                    )
                    continue
            if step.name is StepName.STARTTLS and not required and step.code != 421:
                out.append(
                    f.warning(
                        "probe.starttls_refused",
                        f"{_where(attempt)} offered STARTTLS but answered "
                        f"{_first_line(step.reply)}; the session went on unencrypted",
                        step.explanation.action if step.explanation else "",
                    )
                )
                continue
            out.append(_reply_finding(attempt, step))
            if problem is None:
                hint = _GREETING_HINT.get((step.code or 0) // 100) if step.name is StepName.GREETING else None
                reason = hint or (step.explanation.reason_title.lower() if step.explanation else "refused")
                problem = f"{_asked(step)} got {_first_line(step.reply)}: {reason}"
    if required and ehlo is not None and attempt.step(StepName.STARTTLS) is None and problem is None:
        problem = "STARTTLS is required (--starttls) but not offered"
    out += _tls_findings(attempt, required)
    return out, problem


def _success(attempt: Attempt, mail_from: str) -> str:
    parts: list[str] = []
    mail = attempt.step(StepName.MAIL)
    if mail is not None and mail.reply is not None:
        parts.append(f"MAIL FROM:{mail_from} {mail.reply.basic}")
    rcpts = [s for s in attempt.steps if s.name is StepName.RCPT and s.reply is not None]
    if rcpts:
        parts.append(f"{sum(1 for s in rcpts if not s.failed)} of {len(rcpts)} RCPT TO accepted")
    end = attempt.step(StepName.END_OF_DATA)
    if end is not None and end.reply is not None:
        parts.append(f"message accepted ({_first_line(end.reply)})")
    tls = attempt.tls
    if tls is not None:
        parts.append(f"{tls.version}, certificate {'verified' if tls.verified else 'not verified'}")
    return f"{_where(attempt)} accepts mail: " + ", ".join(parts or ["greeting and EHLO fine"])


def assess(
    target: Target,
    plan_findings: Sequence[Finding],
    attempts: Sequence[Attempt],
    *,
    null_mx: bool = False,
    starttls_required: bool = False,
    mail_from: str = "<>",
) -> tuple[str, tuple[Finding, ...]]:
    """The verdict line and the findings of a probe (pure)."""
    findings = list(plan_findings)
    name = target.host
    if null_mx:
        findings.append(
            f.error(
                "probe.null_mx",
                f"{name} does not accept mail (RFC 7505 null MX)",
                "Do not send to this domain; ask the recipient for another address.",
            )
        )
        return f"{name}: the domain does not accept mail (RFC 7505)", tuple(findings)
    reached = next((a for a in attempts if a.greeted), None)
    for attempt in attempts:
        if attempt is reached:
            break
        step = attempt.steps[-1] if attempt.steps else None
        failure = step.error if step is not None else None
        make = f.warning if reached is not None else f.error
        fix = _CONNECT_FIX.get(failure, _STEP_FIX) if failure is not None else _STEP_FIX
        detail = step.detail if step is not None and step.detail else "no greeting"
        findings.append(
            make(f"probe.connect_{failure.value if failure else 'failed'}", f"{_where(attempt)}: {detail}", fix)
        )
    if reached is None:
        if not attempts:
            if not any(item.is_error for item in findings):
                findings.append(
                    f.error(
                        "probe.no_mail_host",
                        f"no address to connect to was found for {name}",
                        "Publish MX records, or A/AAAA records for the domain itself.",
                    )
                )
            return f"{name}: no mail host to connect to", tuple(findings)
        last = attempts[-1].steps[-1] if attempts[-1].steps else None
        why = last.detail if last is not None and last.detail else "no greeting"
        return f"{name}: could not reach any mail host ({_where(attempts[-1])}: {why})", tuple(findings)
    session, problem = _session_findings(reached, starttls_required)
    findings += session
    if problem is not None:
        return f"{_where(reached)}: {problem}", tuple(findings)
    return _success(reached, mail_from), tuple(findings)


# --- the entry point ---------------------------------------------------------------------------------------------


def _options(
    target: Target,
    *,
    port: int,
    mail_from: str | None,
    rcpt_to: str | Sequence[str] | None,
    helo: str | None,
    starttls: bool,
    source_ip: str | None,
    send: bool,
    timeouts: Timeouts | None,
) -> _Options:
    rcpts = (rcpt_to,) if isinstance(rcpt_to, str) else tuple(rcpt_to or ())
    if send and not rcpts:
        raise ProbeInputError("sending a test message needs at least one recipient (--to)")
    if source_ip is not None and _ip(source_ip) is None:
        raise ProbeInputError(f"--source-ip {source_ip!r} is not an IP address")
    if helo is not None and (not helo.strip() or any(ch.isspace() for ch in helo.strip())):
        raise ProbeInputError(f"--helo {helo!r} must be one name or address literal without spaces")
    options = _Options(
        port=target.port or port,
        mail_from=_path(mail_from, "--from"),
        rcpt_to=tuple(_path(rcpt, "--to") for rcpt in rcpts),
        helo=helo.strip() if helo else None,
        starttls=starttls,
        source_ip=_ip(source_ip) if source_ip else None,
        send=send,
        timeouts=timeouts or Timeouts(),
    )
    if options.source_ip and target.kind == "ip" and _families(options.source_ip) != _families(target.host):
        raise ProbeInputError(f"--source-ip {options.source_ip} and the target {target.host} are not of one family")
    if not 0 < options.port < 65536:
        raise ProbeInputError(f"{options.port} is not a port number (1-65535)")
    try:
        for line in (f"MAIL FROM:{options.mail_from} SMTPUTF8", *(f"RCPT TO:{r}" for r in options.rcpt_to)):
            check_command(line)
        if options.helo:
            check_command(f"EHLO {options.helo}")
    except ValueError as exc:
        raise ProbeInputError(str(exc)) from exc
    return options


def _families(source_ip: str | None) -> tuple[int, ...]:
    if source_ip is None:
        return (4, 6)
    return (ipaddress.ip_address(source_ip).version,)


async def probe(
    target: str,
    *,
    resolver: Resolver,
    port: int = 25,
    mail_from: str | None = None,
    rcpt_to: str | Sequence[str] | None = None,
    helo: str | None = None,
    starttls: bool = False,
    source_ip: str | None = None,
    send: bool = False,
    timeouts: Timeouts | None = None,
) -> ProbeReport:
    """Probe the mail server(s) of ``target`` and report each attempt step by step.

    ``port`` is used unless the target names one. ``mail_from`` defaults to the null reverse-path ``<>``;
    ``rcpt_to`` (one address or several) adds RCPT TO; ``send`` delivers a small test message to the accepted
    recipients. STARTTLS is used whenever the server offers it; ``starttls=True`` requires it (a server without it
    is a problem, and the session stops before MAIL). ``timeouts`` defaults to RFC 5321's. Raises
    :class:`ProbeInputError` for unusable input and :class:`ProbeError` when DNS gives no answer at all.
    """
    parsed = parse_target(target)
    options = _options(
        parsed,
        port=port,
        mail_from=mail_from,
        rcpt_to=rcpt_to,
        helo=helo,
        starttls=starttls,
        source_ip=source_ip,
        send=send,
        timeouts=timeouts,
    )
    families = _families(options.source_ip)
    plan = await _plan(parsed, resolver, families)
    attempts: list[Attempt] = []
    if not plan.null_mx:
        attempts = await _try_hosts(plan, options, families)
    verdict, findings = assess(
        parsed, plan.findings, attempts, null_mx=plan.null_mx, starttls_required=starttls, mail_from=options.mail_from
    )
    return ProbeReport(
        verdict=verdict,
        findings=findings,
        target=parsed.text,
        port=options.port,
        mx=plan.mx,
        implicit_mx=plan.implicit_mx,
        null_mx=plan.null_mx,
        attempts=tuple(attempts),
    )


async def _try_hosts(plan: _Plan, options: _Options, families: tuple[int, ...]) -> list[Attempt]:
    """Connect to each address in order until one greets (any code); stop on a local bind failure."""
    attempts: list[Attempt] = []
    for host, addresses in plan.hosts:
        for address in addresses:
            if len(attempts) >= MAX_ATTEMPTS or ipaddress.ip_address(address).version not in families:
                continue
            attempt = await _Session(host, address, options).run()
            attempts.append(attempt)
            connect = attempt.step(StepName.CONNECT)
            if attempt.greeted or (connect is not None and connect.error is Failure.BIND):
                return attempts
    return attempts
