"""A stored message as a reader sees it: its header fields, its text and its parts (pure, no I/O).

The API and the web UI show what a client sent without trusting it: header fields are decoded (RFC 2047) but
never interpreted, the text is the first ``text/plain`` part (or ``text/html`` when there is no plain part),
decoded with its declared charset and replacement characters where the bytes do not fit, and cut at
``TEXT_LIMIT`` characters so a huge message cannot blow up a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

__all__ = ["TEXT_LIMIT", "MailView", "Part", "view_message"]

TEXT_LIMIT = 200_000
"""The most characters of body text a view carries."""


@dataclass(frozen=True, slots=True)
class Part:
    """One leaf of the MIME tree: its content type, file name (if any) and decoded size in octets."""

    content_type: str
    filename: str | None
    size: int

    def to_dict(self) -> dict[str, object]:
        return {"content_type": self.content_type, "filename": self.filename, "size": self.size}


@dataclass(frozen=True, slots=True)
class MailView:
    """What ``view_message`` found: header fields in order, the body text, whether it was cut, the parts."""

    headers: tuple[tuple[str, str], ...]
    text: str | None
    text_type: str | None
    truncated: bool
    parts: tuple[Part, ...]

    def header(self, name: str) -> str | None:
        """The first field called ``name`` (case-insensitively)."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def to_dict(self) -> dict[str, object]:
        return {
            "headers": [[name, value] for name, value in self.headers],
            "text": self.text,
            "text_type": self.text_type,
            "truncated": self.truncated,
            "parts": [part.to_dict() for part in self.parts],
        }


def _headers(message: EmailMessage) -> tuple[tuple[str, str], ...]:
    fields: list[tuple[str, str]] = []
    for name, raw in message.raw_items():
        try:
            value = str(message.policy.header_fetch_parse(name, raw))
        except Exception:  # a field the email package cannot decode: show it as it was sent
            value = str(raw)
        fields.append((name, value))
    return tuple(fields)


def _decoded_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", errors="replace")


def _leaves(message: Message) -> list[Message]:
    return [part for part in message.walk() if not part.is_multipart()]


def view_message(raw: bytes) -> MailView:
    """Parse ``raw`` (the bytes as received) into a :class:`MailView`; never raises on malformed input."""
    message: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)
    headers = _headers(message)
    leaves = _leaves(message)
    parts = tuple(
        Part(
            content_type=leaf.get_content_type(),
            filename=leaf.get_filename(),
            size=len(payload) if isinstance(payload := leaf.get_payload(decode=True), bytes) else 0,
        )
        for leaf in leaves
    )
    body: Message | None = None
    for wanted in ("text/plain", "text/html"):
        body = next((leaf for leaf in leaves if leaf.get_content_type() == wanted and not leaf.get_filename()), None)
        if body is not None:
            break
    if body is None:
        return MailView(headers, None, None, False, parts)
    text = _decoded_text(body)
    truncated = len(text) > TEXT_LIMIT
    return MailView(headers, text[:TEXT_LIMIT], body.get_content_type(), truncated, parts)
