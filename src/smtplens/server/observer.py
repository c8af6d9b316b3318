"""What the SMTP adapter reports about its work to an optional observer (metrics, a live view).

``SmtpServer(..., observer=...)`` calls these methods from its event loop. They must be quick and must not
raise: the adapter ignores what they return and logs what they raise, so counting can never break a session.
``final_replies`` is the pure part: which transcript lines are complete replies, with the policy behind each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

__all__ = ["ServerObserver", "final_replies", "report_replies"]


class ServerObserver(Protocol):
    """Events of the SMTP listener, in the order they happen for one connection."""

    def connection_opened(self, session_id: str, client_address: str) -> None:
        """A client connected (before the greeting)."""

    def message_stored(self, session_id: str, size: int) -> None:
        """A message of ``size`` octets is durable in the store (its 250 follows)."""

    def reply_sent(self, code: str, policy: str | None) -> None:
        """A complete reply with ``code`` went out; ``policy`` names who decided it (``None``: the protocol).

        Reported from the transcript when the connection ends, right after ``connection_closed``."""

    def connection_closed(self, session_id: str, client_address: str, duration: float) -> None:
        """The connection ended after ``duration`` seconds (its transcript is being recorded)."""


def final_replies(transcript: Iterable[tuple[str, str, str | None]]) -> Iterator[tuple[str, str | None]]:
    """``(code, policy)`` of every complete server reply in a transcript of ``(direction, line, policy)``.

    A multiline reply is one reply: only its last line (``250 ...``, not ``250-...``) counts (RFC 5321
    section 4.2.1). Lines that do not start with three digits are not replies.
    """
    for direction, line, policy in transcript:
        if direction != "S" or len(line) < 3 or not line[:3].isdigit():
            continue
        if line[3:4] == "-":
            continue
        yield line[:3], policy


def report_replies(observer: ServerObserver, transcript: Iterable[tuple[str, str, str | None]]) -> None:
    """Tell ``observer`` about every complete reply of a finished session's transcript."""
    for code, policy in final_replies(transcript):
        observer.reply_sent(code, policy)
