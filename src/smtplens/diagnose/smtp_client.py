"""A small async SMTP client for probes: connect, read replies, send commands, STARTTLS, send a message.

The wire rules are pure and testable without a socket: :class:`ReplyReader` turns reply lines into a
:class:`ServerReply` (enforcing the line, line-count and size limits), :func:`parse_ehlo` turns the lines of an
EHLO reply into :class:`Capabilities`, :func:`check_command` refuses command lines the server may not accept and
:func:`dot_stuff` prepares a message for DATA. :class:`SmtpClient` is the thin asyncio shell around them. Every
network problem is raised as :class:`SmtpClientError` with a :class:`Failure` kind; no other exception leaves
this module for network trouble.
"""

from __future__ import annotations

import asyncio
import errno
import re
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from enum import StrEnum

from smtplens.errors import SmtplensError

__all__ = [
    "MAX_COMMAND_LINE",
    "MAX_REPLY_LINE",
    "MAX_REPLY_LINES",
    "MAX_REPLY_OCTETS",
    "Capabilities",
    "Failure",
    "ReplyReader",
    "ServerReply",
    "SmtpClient",
    "SmtpClientError",
    "Timeouts",
    "check_command",
    "dot_stuff",
    "parse_ehlo",
]

MAX_COMMAND_LINE = 512
"""Octets of a command line including CRLF (RFC 5321 section 4.5.3.1.4)."""

MAX_REPLY_LINE = 2048
"""Octets accepted per reply line. RFC 5321 section 4.5.3.1.5 allows 512 including CRLF; real servers
sometimes send longer lines, so four times that is read before the reply is refused as broken."""

MAX_REPLY_LINES = 100
"""Lines accepted in one multi-line reply (an EHLO reply rarely has more than 20)."""

MAX_REPLY_OCTETS = 65536
"""Octets accepted in one reply, all lines together."""

_REPLY_LINE_RE = re.compile(r"(?P<code>[2-5][0-9][0-9])(?:(?P<sep>[ -])(?P<text>.*))?", re.S)


class Failure(StrEnum):
    """Why a network step failed; the values are what a probe step reports as its ``error``."""

    REFUSED = "refused"  # nothing listens on the port (TCP reset)
    TIMEOUT = "timeout"  # no connection or no complete reply within the step's time
    UNREACHABLE = "unreachable"  # no route, network down, host unreachable
    BIND = "bind"  # the source address cannot be used on this machine
    CLOSED = "closed"  # the server closed the connection before a complete reply
    PROTOCOL = "protocol"  # the server sent something that is not an SMTP reply
    TLS = "tls"  # the TLS handshake failed


class SmtpClientError(SmtplensError):
    """A network step failed; ``failure`` says how, the message says what happened in one sentence.

    ``verify_error`` is set when a TLS handshake failed only because the certificate could not be verified
    (OpenSSL's reason, such as "self-signed certificate").
    """

    def __init__(self, failure: Failure, message: str, *, verify_error: str | None = None) -> None:
        self.failure = failure
        self.verify_error = verify_error
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait at each step. The defaults are the minimums of RFC 5321 section 4.5.3.2 (greeting, MAIL,
    RCPT 5 minutes; DATA initiation 2; each data block 3; end of data 10). The RFC sets none for connecting,
    EHLO, STARTTLS and QUIT: connect uses Postfix's ``smtp_connect_timeout`` (30 s), the others 5 minutes like
    Postfix's ``smtp_helo_timeout``, ``smtp_starttls_timeout`` and ``smtp_quit_timeout``."""

    connect: float = 30.0
    greeting: float = 300.0
    ehlo: float = 300.0
    starttls: float = 300.0
    mail: float = 300.0
    rcpt: float = 300.0
    data: float = 120.0
    data_block: float = 180.0
    end_of_data: float = 600.0
    quit: float = 300.0

    @classmethod
    def uniform(cls, seconds: float) -> Timeouts:
        """The same limit for every step (``--timeout``)."""
        if not seconds > 0:
            raise ValueError(f"a timeout must be a positive number of seconds, not {seconds!r}")
        return cls(**{item.name: float(seconds) for item in fields(cls)})


# --- pure wire rules ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerReply:
    """One complete reply as received: the code, each line's text without the code, the lines as sent."""

    code: int
    lines: tuple[str, ...]
    raw: str

    @property
    def digit(self) -> int:
        return self.code // 100

    @property
    def positive(self) -> bool:
        return self.digit == 2

    @property
    def intermediate(self) -> bool:
        return self.digit == 3

    @property
    def failed(self) -> bool:
        """A 4yz or 5yz reply."""
        return self.digit in (4, 5)


@dataclass(slots=True)
class ReplyReader:
    """Collects the lines of one reply (``250-…`` continues, ``250 …`` ends it) and enforces the limits."""

    max_lines: int = MAX_REPLY_LINES
    max_octets: int = MAX_REPLY_OCTETS
    _code: int | None = field(default=None, init=False)
    _texts: list[str] = field(default_factory=list, init=False)
    _raw: list[str] = field(default_factory=list, init=False)
    _octets: int = field(default=0, init=False)

    def feed(self, line: bytes) -> ServerReply | None:
        """Add one received line (with or without its CRLF); return the reply when this line ends it."""
        self._octets += len(line)
        if self._octets > self.max_octets:
            raise SmtpClientError(Failure.PROTOCOL, f"the reply is longer than {self.max_octets} octets")
        text = line.rstrip(b"\r\n").decode("utf-8", "replace")
        match = _REPLY_LINE_RE.fullmatch(text)
        if match is None:
            raise SmtpClientError(Failure.PROTOCOL, f"not an SMTP reply line: {_shorten(text)!r}")
        code = int(match["code"])
        if self._code is not None and code != self._code:
            raise SmtpClientError(
                Failure.PROTOCOL, f"a multi-line reply changed its code from {self._code} to {code}: {_shorten(text)!r}"
            )
        self._code = code
        self._texts.append(match["text"] or "")
        self._raw.append(text)
        if match["sep"] == "-":
            if len(self._texts) >= self.max_lines:
                raise SmtpClientError(Failure.PROTOCOL, f"the reply has more than {self.max_lines} lines")
            return None
        reply = ServerReply(code, tuple(self._texts), "\n".join(self._raw))
        self._code, self._texts, self._raw, self._octets = None, [], [], 0
        return reply


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an EHLO reply advertises (RFC 5321 section 4.1.1.1): the greeting line, then one keyword per line."""

    name: str
    keywords: tuple[tuple[str, str], ...] = ()  # (KEYWORD upper case, parameters) in the order received
    size: int | None = None  # SIZE limit in octets; 0 means "no fixed limit" (RFC 1870)
    auth: tuple[str, ...] = ()  # AUTH mechanisms (RFC 4954)

    def has(self, keyword: str) -> bool:
        key = keyword.upper()
        return any(k == key for k, _ in self.keywords)

    @property
    def starttls(self) -> bool:
        return self.has("STARTTLS")

    @property
    def pipelining(self) -> bool:
        return self.has("PIPELINING")

    @property
    def eightbitmime(self) -> bool:
        return self.has("8BITMIME")

    @property
    def smtputf8(self) -> bool:
        return self.has("SMTPUTF8")

    @property
    def enhanced_status_codes(self) -> bool:
        return self.has("ENHANCEDSTATUSCODES")

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "keywords": [k if not v else f"{k} {v}" for k, v in self.keywords],
            "size": self.size,
            "auth": list(self.auth),
            "starttls": self.starttls,
            "pipelining": self.pipelining,
            "8bitmime": self.eightbitmime,
            "smtputf8": self.smtputf8,
            "enhancedstatuscodes": self.enhanced_status_codes,
        }


def parse_ehlo(lines: Sequence[str]) -> Capabilities:
    """The capabilities in the text lines of a 250 EHLO reply. Lenient: odd lines are kept as keywords."""
    if not lines:
        return Capabilities(name="")
    name = lines[0].split(" ", 1)[0]
    keywords: list[tuple[str, str]] = []
    size: int | None = None
    auth: list[str] = []
    for line in lines[1:]:
        parts = line.strip().split(None, 1)
        if not parts:
            continue
        key, params = parts[0].upper(), parts[1].strip() if len(parts) > 1 else ""
        if key.startswith("AUTH="):  # the pre-RFC 4954 form some servers still add
            key, params = "AUTH", params or key[5:]
        keywords.append((key, params))
        if key == "SIZE" and params.isdigit():
            size = int(params)
        elif key == "AUTH":
            auth.extend(m.upper() for m in params.split() if m.upper() not in auth)
    return Capabilities(name=name, keywords=tuple(keywords), size=size, auth=tuple(auth))


def check_command(line: str) -> bytes:
    """The command line as sent (UTF-8 plus CRLF); refuse line breaks and lines over RFC 5321's 512 octets."""
    if "\r" in line or "\n" in line:
        raise ValueError(f"a command line cannot contain a line break: {line!r}")
    data = line.encode("utf-8") + b"\r\n"
    if len(data) > MAX_COMMAND_LINE:
        raise ValueError(
            f"the command {_shorten(line)!r} is {len(data)} octets long; "
            f"RFC 5321 section 4.5.3.1.4 allows {MAX_COMMAND_LINE} including CRLF"
        )
    return data


def dot_stuff(message: bytes) -> bytes:
    """A message ready for DATA: CRLF line ends, leading dots doubled (RFC 5321 section 4.5.2), then ``.``."""
    lines = message.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    body = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)
    return body + b".\r\n"


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the asyncio shell -------------------------------------------------------------------------------------------


@contextmanager
def _network_errors(what: str) -> Iterator[None]:
    """Turn the socket and TLS exceptions of one step into :class:`SmtpClientError` (message: ``what: why``)."""
    what = f"{what}: " if what else ""
    try:
        yield
    except SmtpClientError:
        raise
    except TimeoutError as exc:
        raise SmtpClientError(Failure.TIMEOUT, f"{what}no answer in time") from exc
    except ConnectionRefusedError as exc:
        raise SmtpClientError(Failure.REFUSED, f"{what}connection refused") from exc
    except asyncio.IncompleteReadError as exc:
        raise SmtpClientError(Failure.CLOSED, f"{what}the server closed the connection") from exc
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
        raise SmtpClientError(Failure.CLOSED, f"{what}the connection was reset ({exc.strerror or exc})") from exc
    except asyncio.LimitOverrunError as exc:
        raise SmtpClientError(Failure.PROTOCOL, f"{what}a reply line is longer than {MAX_REPLY_LINE} octets") from exc
    except ssl.SSLCertVerificationError as exc:
        reason = str(exc.verify_message or exc.reason or exc)
        raise SmtpClientError(
            Failure.TLS, f"{what}certificate verification failed: {reason}", verify_error=reason
        ) from exc
    except ssl.SSLError as exc:
        raise SmtpClientError(Failure.TLS, f"{what}{exc.reason or exc}") from exc
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            raise SmtpClientError(Failure.BIND, f"{what}the source address is not one of this machine's") from exc
        raise SmtpClientError(Failure.UNREACHABLE, f"{what}{exc.strerror or exc}") from exc


class SmtpClient:
    """One SMTP connection. Create it with :meth:`connect`; every method takes the step's timeout in seconds."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._replies = ReplyReader()

    @classmethod
    async def connect(cls, address: str, port: int, *, timeout: float, source_ip: str | None = None) -> SmtpClient:
        """Open a TCP connection to ``address`` (an IP address) from ``source_ip`` when given."""
        local = (source_ip, 0) if source_ip else None
        with _network_errors(""):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(address, port, local_addr=local, limit=MAX_REPLY_LINE)
        return cls(reader, writer)

    @property
    def local_address(self) -> str | None:
        sockname = self._writer.get_extra_info("sockname")
        return str(sockname[0]) if sockname else None

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        obj = self._writer.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    async def read_reply(self, timeout: float, what: str = "reply") -> ServerReply:
        """Read one complete (possibly multi-line) reply."""
        with _network_errors(what):
            async with asyncio.timeout(timeout):
                while True:
                    line = await self._reader.readuntil(b"\n")
                    reply = self._replies.feed(line)
                    if reply is not None:
                        return reply

    async def send(self, line: str, timeout: float) -> None:
        """Send one command line (CRLF is added)."""
        data = check_command(line)
        with _network_errors(f"send {line.split(' ', 1)[0]}"):
            async with asyncio.timeout(timeout):
                self._writer.write(data)
                await self._writer.drain()

    async def command(self, line: str, timeout: float) -> ServerReply:
        """Send a command and read its reply, both within ``timeout``."""
        verb = line.split(" ", 1)[0].split(":", 1)[0]
        with _network_errors(verb):
            async with asyncio.timeout(timeout):
                await self.send(line, timeout)
                return await self.read_reply(timeout, verb)

    async def send_message(self, message: bytes, *, block_timeout: float, reply_timeout: float) -> ServerReply:
        """After a 354 to DATA: send the message, dot-stuffed and ended, and read the end-of-data reply."""
        with _network_errors("send the message"):
            async with asyncio.timeout(block_timeout):
                self._writer.write(dot_stuff(message))
                await self._writer.drain()
        return await self.read_reply(reply_timeout, "end of data")

    async def starttls(self, context: ssl.SSLContext, server_hostname: str | None, timeout: float) -> ssl.SSLObject:
        """Upgrade the connection after a 220 to STARTTLS (RFC 3207); return the TLS session's SSL object."""
        with _network_errors("TLS handshake"):
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(context, server_hostname=server_hostname)
        obj = self.ssl_object
        if obj is None:  # pragma: no cover - start_tls always installs one
            raise SmtpClientError(Failure.TLS, "TLS handshake: no TLS session after the upgrade")
        return obj

    async def wait_for_close(self, timeout: float) -> bool:
        """Read and discard until the server closes (after a 421); true when it closed within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while await self._reader.read(4096):
                    pass
        except (TimeoutError, OSError, ssl.SSLError):
            return False
        return True

    async def close(self) -> None:
        """Close the connection without waiting long for the peer (a broken TLS shutdown must not hang)."""
        self._writer.close()
        try:
            async with asyncio.timeout(2.0):
                await self._writer.wait_closed()
        except (TimeoutError, OSError, ssl.SSLError):
            pass
