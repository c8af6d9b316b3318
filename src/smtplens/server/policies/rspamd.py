"""A client of rspamd's normal worker: ``POST /checkv2`` over HTTP/1.1, with asyncio (no HTTP library needed).

The request carries the message as its body and the transaction in rspamd's request headers (``IP``, ``Helo``,
``From``, one ``Rcpt`` per recipient, ``User`` for an authenticated sender); the answer is a JSON object with
``action`` (``no action``, ``greylist``, ``add header``, ``rewrite subject``, ``soft reject``, ``reject``),
``score``, ``required_score`` and ``symbols`` (rspamd's protocol documentation, "Rspamd HTTP request" and
"Rspamd JSON reply"). The actions map to :class:`~smtplens.server.policies.spamfilter.SpamAction`: greylist and
soft reject defer, add header and rewrite subject mark.
"""

from __future__ import annotations

import asyncio
import json

from smtplens.server.policies.spamfilter import SpamAction, SpamFilterError, SpamVerdict
from smtplens.server.session import Envelope

__all__ = ["RSPAMD_ACTIONS", "RspamdClient", "parse_rspamd_reply", "rspamd_request"]

RSPAMD_ACTIONS = {
    "no action": SpamAction.ACCEPT,
    "greylist": SpamAction.DEFER,
    "add header": SpamAction.ADD_HEADER,
    "rewrite subject": SpamAction.ADD_HEADER,
    "soft reject": SpamAction.DEFER,
    "reject": SpamAction.REJECT,
}
_MAX_RESPONSE = 4 << 20


def _header_value(value: str) -> str:
    return "".join(ch for ch in value if ch >= " " and ch != "\x7f")


def rspamd_request(message: bytes, envelope: Envelope, *, host: str, password: str | None = None) -> bytes:
    """The bytes of one ``POST /checkv2`` request."""
    headers = [("Host", host), ("Content-Length", str(len(message))), ("Connection", "close")]
    headers.append(("IP", envelope.client_address))
    if envelope.helo:
        headers.append(("Helo", envelope.helo))
    if envelope.mail is not None:
        headers.append(("From", envelope.mail_from or "<>"))
    headers.extend(("Rcpt", rcpt.address) for rcpt in envelope.recipients)
    if envelope.auth:
        headers.append(("User", envelope.auth))
    if password:
        headers.append(("Password", password))
    head = "".join(f"{name}: {_header_value(value)}\r\n" for name, value in headers)
    return f"POST /checkv2 HTTP/1.1\r\n{head}\r\n".encode() + message


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


def parse_rspamd_reply(data: bytes) -> SpamVerdict:
    """rspamd's HTTP answer as a verdict; raises :class:`SpamFilterError` on an error status or bad JSON."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise SpamFilterError(f"rspamd answered {lines[0][:80]!r}, not an HTTP status line")
    if parts[1] != "200":
        raise SpamFilterError(f"rspamd answered HTTP {' '.join(parts[1:])}")
    fields = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    try:
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = _dechunk(body)
        reply = json.loads(body)
        action = RSPAMD_ACTIONS[str(reply["action"]).lower()]
        score, threshold = float(reply.get("score", 0.0)), float(reply.get("required_score", 0.0))
        symbols = tuple(sorted(reply.get("symbols") or {}))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SpamFilterError(f"rspamd's answer could not be read: {exc!r}") from exc
    return SpamVerdict(action, score, threshold, symbols)


class RspamdClient:
    """Asks rspamd's normal worker at ``host:port`` (11333 by default); ``timeout`` covers the whole request."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 11333, *, timeout: float = 8.0, password: str | None = None
    ) -> None:
        self.name = "rspamd"
        self.host = host
        self.port = port
        self.timeout = timeout
        self.password = password

    async def scan(self, message: bytes, envelope: Envelope) -> SpamVerdict:
        request = rspamd_request(message, envelope, host=f"{self.host}:{self.port}", password=self.password)
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(request)
                    await writer.drain()
                    data = await reader.read(_MAX_RESPONSE)
                    while data and len(data) < _MAX_RESPONSE and not reader.at_eof():
                        more = await reader.read(_MAX_RESPONSE - len(data))
                        if not more:
                            break
                        data += more
                finally:
                    writer.close()
        except TimeoutError as exc:
            raise SpamFilterError(f"rspamd at {self.host}:{self.port} did not answer in {self.timeout:g} s") from exc
        except OSError as exc:
            raise SpamFilterError(f"rspamd at {self.host}:{self.port}: {exc}") from exc
        return parse_rspamd_reply(data)
