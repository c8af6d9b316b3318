"""A client of SpamAssassin's spamd (the SPAMC/SPAMD protocol, version 1.5, over TCP with asyncio).

One request per connection, as spamc sends it::

    SYMBOLS SPAMC/1.5
    Content-length: <octets>
    User: <user>                      (optional)

    <message>

and spamd's answer ``SPAMD/1.1 0 EX_OK``, a ``Spam: True ; 1000.0 / 5.0`` header (verdict ; score /
threshold), an empty line and, for SYMBOLS, the names of the rules that hit, separated by commas. A status other
than 0 (``EX_OK``) is an error (spamd uses the sysexits codes: 64 usage, 74 I/O error, 76 protocol error).
The protocol is described in the PROTOCOL file of SpamAssassin's spamd directory; ``CHECK`` answers the same
without the rule names.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

from smtplens.server.policies.spamfilter import SpamAction, SpamFilterError, SpamVerdict
from smtplens.server.session import Envelope

__all__ = ["SpamdClient", "parse_spamd_response", "spamd_request"]

_STATUS = re.compile(rb"SPAMD/(\d+\.\d+) +(\d+) *(.*)")
_SPAM = re.compile(r"\s*(true|false|yes|no)\s*;\s*(-?[0-9.]+)\s*/\s*(-?[0-9.]+)\s*", re.IGNORECASE)
_MAX_RESPONSE = 1 << 20


def spamd_request(message: bytes, *, command: str = "SYMBOLS", user: str | None = None) -> bytes:
    """The bytes of one SPAMC/1.5 request."""
    head = f"{command} SPAMC/1.5\r\nContent-length: {len(message)}\r\n"
    if user:
        head += f"User: {user}\r\n"
    return head.encode("ascii") + b"\r\n" + message


def parse_spamd_response(data: bytes) -> SpamVerdict:
    """spamd's answer as a verdict; raises :class:`SpamFilterError` on an error status or a garbled answer."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = _STATUS.fullmatch(lines[0].strip())
    if status is None:
        raise SpamFilterError(f"spamd answered {lines[0][:80]!r}, not a SPAMD status line")
    if status[2] != b"0":
        raise SpamFilterError(f"spamd error {int(status[2])}: {status[3].decode('ascii', 'replace')}")
    spam = None
    for line in lines[1:]:
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "spam":
            spam = _SPAM.fullmatch(value)
    if spam is None:
        raise SpamFilterError("spamd's answer has no valid Spam: header")
    symbols = tuple(s.strip() for s in body.decode("ascii", "replace").split(",") if s.strip())
    is_spam = spam[1].lower() in ("true", "yes")
    return SpamVerdict(SpamAction.REJECT if is_spam else SpamAction.ACCEPT, float(spam[2]), float(spam[3]), symbols)


class SpamdClient:
    """Asks spamd at ``host:port``; ``timeout`` covers connecting, sending and reading."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 783, *, timeout: float = 8.0, user: str | None = None
    ) -> None:
        self.name = "spamassassin"
        self.host = host
        self.port = port
        self.timeout = timeout
        self.user = user

    async def scan(self, message: bytes, envelope: Envelope) -> SpamVerdict:
        try:
            async with asyncio.timeout(self.timeout):
                data = await self._exchange(spamd_request(message, user=self.user))
        except TimeoutError as exc:
            raise SpamFilterError(f"spamd at {self.host}:{self.port} did not answer in {self.timeout:g} s") from exc
        except OSError as exc:
            raise SpamFilterError(f"spamd at {self.host}:{self.port}: {exc}") from exc
        return parse_spamd_response(data)

    async def _exchange(self, request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(request)
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            data = await reader.read(_MAX_RESPONSE)
            while data and not reader.at_eof() and len(data) < _MAX_RESPONSE:
                more = await reader.read(_MAX_RESPONSE - len(data))
                if not more:
                    break
                data += more
            return data
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
