"""Value types shared by every part of smtplens."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

__all__ = ["STAGES", "Reply", "ReplyClass", "Stage"]


class ReplyClass(StrEnum):
    """The class of a reply, from the first digit of its basic or enhanced code."""

    POSITIVE = "positive"
    INTERMEDIATE = "intermediate"
    TRANSIENT = "transient"
    PERMANENT = "permanent"

    @classmethod
    def from_digit(cls, digit: str) -> ReplyClass | None:
        return _CLASS_BY_DIGIT.get(digit)

    @property
    def digit(self) -> str:
        return _DIGIT_BY_CLASS[self]


_CLASS_BY_DIGIT = {
    "2": ReplyClass.POSITIVE,
    "3": ReplyClass.INTERMEDIATE,
    "4": ReplyClass.TRANSIENT,
    "5": ReplyClass.PERMANENT,
}
_DIGIT_BY_CLASS = {v: k for k, v in _CLASS_BY_DIGIT.items()}


class Stage(StrEnum):
    """The point of an SMTP session a reply answers. ``OTHER`` covers VRFY, EXPN, HELP, NOOP, RSET, ETRN, ATRN."""

    CONNECT = "connect"
    HELO = "helo"
    STARTTLS = "starttls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    END_OF_DATA = "end_of_data"
    QUIT = "quit"
    OTHER = "other"


STAGES: tuple[Stage, ...] = tuple(Stage)


class Reply(NamedTuple):
    """What :func:`smtplens.parse_reply` found in a text (an immutable value).

    ``basic`` is the three-digit reply code, ``enhanced`` the RFC 3463 status code (``"5.1.1"``), ``text`` the
    reply's text lines without codes, ``remote_host`` and ``stage`` are filled when the text says them (DSN fields,
    MTA log fragments). ``warnings`` lists inconsistencies found while parsing.
    """

    basic: str | None
    enhanced: str | None
    reply_class: ReplyClass | None
    text: tuple[str, ...] = ()
    remote_host: str | None = None
    remote_ip: str | None = None
    stage: Stage | None = None
    warnings: tuple[str, ...] = ()
    raw: str = ""

    @property
    def message(self) -> str:
        """The text lines joined with single spaces."""
        return " ".join(line for line in self.text if line)

    @property
    def is_transient(self) -> bool:
        return self.reply_class is ReplyClass.TRANSIENT

    @property
    def is_permanent(self) -> bool:
        return self.reply_class is ReplyClass.PERMANENT

    def to_dict(self) -> dict[str, object]:
        """The ``parse --json`` contract."""
        return {
            "basic": self.basic,
            "enhanced": self.enhanced,
            "class": self.reply_class.value if self.reply_class else None,
            "text": list(self.text),
            "remote_host": self.remote_host,
            "remote_ip": self.remote_ip,
            "stage": self.stage.value if self.stage else None,
            "warnings": list(self.warnings),
        }
