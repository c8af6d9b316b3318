"""Message content in DATA (RFC 5321 sections 4.1.1.4 and 4.5.2): reading the data lines up to the final dot,
removing dot-stuffing, keeping the message up to the size limit and noting what it contains (:class:`BodyFacts`)
for the session's own checks and the content policies. Pure: bytes in, state out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from smtplens.server.protocol import Limits

__all__ = ["BodyFacts", "DataReader", "MessageBuffer"]


class BodyFacts(NamedTuple):
    """What the session saw in a message's bytes; content policies decide what to make of them."""

    size: int  # octets received (after dot-unstuffing), also beyond the size limit
    too_big: bool  # more than Limits.message_size: the excess was not kept
    long_line: bool  # a text line over Limits.text_line octets with CRLF (section 4.5.3.1.6)
    eight_bit: bool  # octets above 127
    nul: bool
    bare_lf: bool  # LF without CR: never a line end here, so "<LF>.<LF>" cannot end a message
    bare_cr: bool


class MessageBuffer:
    """Collects a message's bytes up to the size limit and notes what they contain."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._too_big = False
        self._pending_cr = False
        self.long_line = False
        self._eight_bit = self._nul = self._bare_lf = self._bare_cr = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def too_big(self) -> bool:
        return self._too_big

    def add(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._note(chunk)
        self._size += len(chunk)
        if self._limit and self._size > self._limit:
            self._too_big = True
            self._parts.clear()  # bounded memory: the message is refused at its end anyway
        elif not self._too_big:
            self._parts.append(chunk)

    def _note(self, chunk: bytes) -> None:
        crlf = chunk.count(b"\r\n")
        cr = chunk.count(b"\r")
        if self._pending_cr:  # a CR that ended the previous chunk
            if chunk.startswith(b"\n"):
                crlf += 1
                cr += 1
            else:
                self._bare_cr = True
        self._pending_cr = chunk.endswith(b"\r")
        if self._pending_cr:
            cr -= 1  # judged with the next chunk
        self._bare_cr = self._bare_cr or cr > crlf
        self._bare_lf = self._bare_lf or chunk.count(b"\n") > crlf
        self._eight_bit = self._eight_bit or not chunk.isascii()
        self._nul = self._nul or b"\0" in chunk

    def message(self) -> bytes:
        return b"".join(self._parts)

    def facts(self) -> BodyFacts:
        bare_cr = self._bare_cr or self._pending_cr
        facts = (self._size, self._too_big, self.long_line, self._eight_bit, self._nul, self._bare_lf, bare_cr)
        return tuple.__new__(BodyFacts, facts)  # BodyFacts(*facts) without its Python __new__


class DataReader:
    """Reads a DATA body from the input buffer: dot-unstuffing and the end marker (section 4.5.2), line lengths.

    Only CRLF ends a line, so neither ``<LF>.<LF>`` nor ``<LF>.<CR><LF>`` ends the message (no smuggling).
    """

    def __init__(self, limits: Limits) -> None:
        self.body = MessageBuffer(limits.message_size)
        self._max_line = limits.text_line - 2
        self._line_start = True
        self._line_length = 0

    def feed(self, buffer: bytearray) -> bool:
        """Consumes what it can of ``buffer``; True once the final ``.<CRLF>`` has been read."""
        while buffer:
            if self._line_start and buffer[0] == 0x2E:  # "."
                if len(buffer) < 3 and bytes(buffer) in (b".", b".\r"):
                    return False  # could still be the end marker
                if buffer[:3] == b".\r\n":
                    del buffer[:3]
                    return True
                del buffer[:1]  # a leading dot with more on the line is removed
                self._line_length = 1
            self._line_start = False
            end = buffer.find(b"\r\n.\r\n")
            if end >= 0:
                self._take(buffer, end + 2)
                del buffer[:3]
                return True
            last = buffer.rfind(b"\r\n")
            cut = last + 2 if last >= 0 else len(buffer) - buffer.endswith(b"\r")
            if cut == 0:
                return False
            self._take(buffer, cut)
        return False

    def _take(self, buffer: bytearray, cut: int) -> None:
        chunk = bytes(buffer[:cut])
        del buffer[:cut]
        lines = chunk.split(b"\r\n")
        if len(lines) == 1:
            self._line_length += len(chunk)
        else:
            longest = max(self._line_length + len(lines[0]), max(map(len, lines[1:-1]), default=0))
            self._line_length = len(lines[-1])
            if longest > self._max_line:
                self.body.long_line = True
        if self._line_length > self._max_line:
            self.body.long_line = True
        self._line_start = chunk.endswith(b"\r\n")
        self.body.add(chunk.replace(b"\r\n.", b"\r\n"))
