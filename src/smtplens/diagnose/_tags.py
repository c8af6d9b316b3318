"""The ``name=value; name=value`` lists that DKIM, DMARC, MTA-STS and TLS-RPT records share.

RFC 6376 section 3.2 defines the tag list that DKIM and DMARC (RFC 7489 section 6.4) use; RFC 8461 section 3.1
and RFC 8460 section 3 use the same shape with ``*WSP ";" *WSP`` as delimiter. One lenient splitter serves all
four: it never raises, keeps the tags in order and reports what is malformed as plain sentences for the caller to
turn into findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["EXT_NAME_RE", "TAG_NAME_RE", "TagList", "split_tags", "squeeze"]

# RFC 6376 section 3.2: tag-name = ALPHA *ALNUMPUNC, ALNUMPUNC = ALPHA / DIGIT / "_"
TAG_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# RFC 8461 section 3.1 and RFC 8460 section 3: ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
EXT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_WS_RE = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True, slots=True)
class TagList:
    """Tags in record order (first occurrence wins) and the problems met on the way."""

    tags: tuple[tuple[str, str], ...]
    problems: tuple[str, ...] = field(default=())
    duplicates: tuple[str, ...] = field(default=())

    def get(self, name: str) -> str | None:
        for key, value in self.tags:
            if key == name:
                return value
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.tags)


def split_tags(text: str, name_re: re.Pattern[str] = TAG_NAME_RE) -> TagList:
    """Split ``text`` at ``;`` into ``(name, value)`` pairs; surrounding whitespace is dropped.

    A final ``;`` is allowed (all four grammars allow it). Empty elements, elements without ``=``, invalid names
    and repeated names are reported; a repeated tag keeps its first value.
    """
    tags: list[tuple[str, str]] = []
    problems: list[str] = []
    duplicates: list[str] = []
    seen: set[str] = set()
    parts = text.split(";")
    if parts and not parts[-1].strip():
        parts.pop()
    for index, raw in enumerate(parts, start=1):
        element = raw.strip(" \t\r\n")
        if not element:
            problems.append(f"element {index} is empty (two ';' in a row)")
            continue
        name, sep, value = element.partition("=")
        name = name.strip(" \t\r\n")
        if not sep:
            problems.append(f"element {index} ({_short(element)!r}) has no '='")
            continue
        if not name_re.fullmatch(name):
            problems.append(f"element {index} has an invalid tag name {_short(name)!r}")
            continue
        if name in seen:
            duplicates.append(name)
            problems.append(f"tag {name!r} appears more than once")
            continue
        seen.add(name)
        tags.append((name, value.strip(" \t\r\n")))
    return TagList(tuple(tags), tuple(problems), tuple(duplicates))


def squeeze(value: str) -> str:
    """``value`` with all folding whitespace removed (base64 and colon lists may be folded)."""
    return _WS_RE.sub("", value)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
