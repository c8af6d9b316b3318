"""What the sans-I/O session (:mod:`smtplens.server.session`) exchanges with its adapter and its policies:
the envelope and the context a policy sees, the actions the adapter performs, the transcript lines, and the
error raised when the adapter calls the session out of turn. Plain frozen values, no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, TypeAlias

from smtplens.errors import SmtplensError
from smtplens.model import Stage
from smtplens.server.protocol import BodyFacts, BodyType, MailFrom, RcptTo

__all__ = [
    "Action",
    "Close",
    "Context",
    "Deliver",
    "Direction",
    "Envelope",
    "NeedDecision",
    "Send",
    "SessionError",
    "StartTls",
    "TranscriptLine",
]


class SessionError(SmtplensError, RuntimeError):
    """The adapter called the session out of turn (``decided`` with no decision pending, ``start`` twice, …)."""


# ------------------------------------------------------------------------------------------- values, actions


@dataclass(frozen=True, slots=True)
class Envelope:
    """The transaction as the server knows it: who connected, what they said, how (TLS, AUTH identity)."""

    client_address: str
    helo: str | None = None
    mail: MailFrom | None = None
    recipients: tuple[RcptTo, ...] = ()
    tls: bool = False
    auth: str | None = None  # the identity AUTH verified

    @property
    def mail_from(self) -> str | None:
        return self.mail.address if self.mail else None

    @property
    def body(self) -> BodyType:
        return self.mail.body if self.mail else BodyType.SEVEN_BIT

    @property
    def smtputf8(self) -> bool:
        return bool(self.mail and self.mail.smtputf8)

    @property
    def size(self) -> int | None:
        """The SIZE the client declared (RFC 1870), if it did."""
        return self.mail.size if self.mail else None


@dataclass(frozen=True, slots=True)
class Context:
    """What a policy sees. ``envelope`` is as it would be if the command were accepted (the HELO name at helo,
    the sender at mail); at rcpt it holds the recipients accepted so far and ``recipient`` the one asked about;
    at end of data ``message`` and ``facts`` describe the received message."""

    envelope: Envelope
    recipient: RcptTo | None = None
    message: bytes | None = None
    facts: BodyFacts | None = None


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    pass


@dataclass(frozen=True, slots=True)
class StartTls:
    pass


@dataclass(frozen=True, slots=True)
class NeedDecision:
    stage: Stage
    context: Context


@dataclass(frozen=True, slots=True)
class Deliver:
    envelope: Envelope
    message: bytes


Action: TypeAlias = Send | Close | StartTls | NeedDecision | Deliver


class Direction(StrEnum):
    CLIENT = "C"
    SERVER = "S"
    NOTE = "*"


class TranscriptLine(NamedTuple):
    """One line of the session's transcript; ``policy`` names who decided a server reply. No AUTH secrets."""

    direction: Direction
    text: str
    policy: str | None = None
