"""Bounce decoders: one small module per format, each satisfying :class:`Decoder`.

A decoder module has a ``name``, a cheap ``detect(mail)`` that says whether the mail is in its format, and
``decode(mail)`` that returns one :class:`~smtplens.bounce.model.Finding` per recipient, in the order the mail
names them (an empty list: the format was recognised but no recipient could be read; the next decoder tries).
Decoders are pure: they read the parsed mail and never raise on any input. ``smtplens.bounce.registry`` lists
them in the order they are tried; a test checks that every module here is listed. A module may also state words
without which its ``detect`` is false, so that most mails never ask it (``smtplens.bounce.dispatch``): ``GATE``,
of the header; ``TEXT_GATE``, of the readable text; ``HEADER_SIGNS``, header words on which ``detect`` is true
alone (they open the text gate).

The helpers below are shared by decoders: cleaning an address out of a DSN field, reading a date, Google's
"The response was:" paragraph, and the signs that a mail is a bounce at all.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Protocol

from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Finding

__all__ = [
    "MAX_RECIPIENTS",
    "Decoder",
    "clean_address",
    "looks_like_bounce",
    "mta_host",
    "parse_date",
    "response_under_heading",
    "sections",
]

MAX_RECIPIENTS = 1000
"""Recipients explained per mail; a decoder may return one more to say that there are more (the pipeline warns).
A real bounce names a few; thousands are a broken or hostile mail, and each costs a classification."""


class Decoder(Protocol):
    """The contract of a decoder module (a module satisfies it with a ``name`` and two functions)."""

    name: str

    def detect(self, mail: Mail) -> bool: ...

    def decode(self, mail: Mail) -> list[Finding]: ...


_TYPED = re.compile(r"^\s*(?:rfc822|x-[\w.-]+|utf-8|unknown)\s*;\s*", re.I)


def sections(pattern: re.Pattern[str], text: str, end: int | None = None) -> list[tuple[re.Match[str], int]]:
    """Each match of ``pattern`` (a recipient line of a report) with where its section ends: at the next match,
    or at ``end`` (the end of ``text`` by default). At most ``MAX_RECIPIENTS + 1`` sections."""
    stop = len(text) if end is None else end
    matches = list(pattern.finditer(text, 0, stop))
    return [
        (m, matches[i + 1].start() if i + 1 < len(matches) else stop)
        for i, m in enumerate(matches[: MAX_RECIPIENTS + 1])
    ]


# Google's notices give the remote server's reply (or Google's own finding) under a heading on a line of its own
_RESPONSE_HEADING = re.compile(r"^[ \t]*the response (?:from the remote server )?was:[ \t]*\n", re.I | re.M)
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n")
MAX_RESPONSE = 1000  # characters of the paragraph under the heading read


def response_under_heading(text: str) -> tuple[int, str] | None:
    """Where Google's "The response was:" heading ("The response from the remote server was:") begins in ``text``,
    and the paragraph under it (blank lines after the heading skipped), white space collapsed ("" if nothing
    follows); None without the heading."""
    heading = _RESPONSE_HEADING.search(text)
    if heading is None:
        return None
    start = heading.end()
    while text.startswith("\n", start):
        start += 1  # blank lines under the heading
    end = _PARAGRAPH_END.search(text, start, start + MAX_RESPONSE)
    return heading.start(), " ".join(text[start : end.start() if end else start + MAX_RESPONSE].split())


def clean_address(value: str | None) -> str | None:
    """The address of a DSN address field (``rfc822; <Neko@Example.JP>`` → ``Neko@Example.JP``), else None.

    RFC 3464 section 2.3.1: the value is ``address-type ";" generic-address``; ``utf-8`` typed values
    (RFC 6533) may carry ``\\x{…}`` escapes, which are kept as written.
    """
    if not value:
        return None
    text = _TYPED.sub("", value, count=1).strip()
    if "<" in text:
        start = text.find("<")
        end = text.find(">", start)
        text = text[start + 1 : end if end > start else len(text)]
    text = text.strip()
    if text.startswith('"') and '"@' in text:
        return text.rstrip(".,;>") or None  # a quoted local part ("john smith"@example.org, RFC 5321 4.1.2)
    text = text.strip("<>\"' \t").rstrip(".,;")
    return text or None


# The common form of an RFC 5322 date (``Mon, 2 Jan 2006 15:04:05 +0900``, any comment after it), read without
# the standard library's general tokeniser; everything else goes to it. The result is the same: the standard
# library reads only the first five words after a day name, and "-0000" means an unknown zone (a naive time).
_COMMON_DATE = re.compile(
    r"(?:[A-Za-z]{3},[ \t]+)?([0-9]{1,2})[ \t]+(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[ \t]+([1-9][0-9]{3})"
    r"[ \t]+([0-9]{2}):([0-9]{2}):([0-9]{2})[ \t]+([+-])([0-9]{2})([0-9]{2})(?:\s.*)?",
    re.S,
)
_MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}


def mta_host(value: str | None) -> str | None:
    """``dns; mx.example.jp`` → ``mx.example.jp`` (RFC 3464 section 2.2.2, 2.3.5)."""
    if not value:
        return None
    text = value.split(";", 1)[1] if ";" in value else value
    text = text.strip()
    if not text:
        return None
    host = text.split()[0].strip("[]()<>").rstrip(".")
    return host or None


@lru_cache(maxsize=256)
def _zone(sign: str, hours: str, minutes: str) -> timezone:
    """The fixed-offset zone of ``+0900`` (one object per offset: a few dozen offsets exist)."""
    offset = int(hours) * 3600 + int(minutes) * 60
    return timezone(timedelta(seconds=-offset if sign == "-" else offset))


def parse_date(value: str | None) -> datetime | None:
    """An RFC 5322 date (lenient: obsolete zones, missing seconds), else None."""
    if not value:
        return None
    m = _COMMON_DATE.fullmatch(value.strip())
    if m is not None:
        day, month, year, hour, minute, second, sign, zh, zm = m.groups()
        try:
            if sign == "-" and zh == "00" and zm == "00":
                return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
            return datetime(
                int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=_zone(sign, zh, zm)
            )
        except (ValueError, OverflowError):
            pass  # out of range: the standard library decides (it raises too)
    try:
        return parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


_BOUNCE_FROM = ("mailer-daemon", "postmaster", "mail delivery", "mail-daemon", "maildelivery", "mdaemon@")
_BOUNCE_SUBJECT = (
    "undeliver",
    "undelivered",
    "delivery status notification",
    "delivery failure",
    "delivery has failed",
    "delivery failed",
    "failure notice",
    "returned mail",
    "mail delivery failed",
    "non remis",
    "nicht zustellbar",
    "unzustellbar",
    "no se puede entregar",
    "not delivered",
    "could not be delivered",
    "delivery notification",
    "message not delivered",
    "mail system error",
    "warning: could not send",
    "delayed mail",
    "delivery delayed",
    "delivery report",
    "returned to sender",
)


def looks_like_bounce(mail: Mail) -> bool:
    """Whether the mail shows the outward signs of a bounce: sent by a mailer daemon or postmaster, or a subject
    that reports a delivery problem, or a DSN part (RFC 3464)."""
    sender = mail.lowered("from")
    for word in _BOUNCE_FROM:
        if word in sender:
            return True
    subject = mail.lowered("subject")
    for word in _BOUNCE_SUBJECT:
        if word in subject:
            return True
    return mail.find("message/delivery-status", "message/global-delivery-status") is not None
