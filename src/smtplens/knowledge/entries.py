"""The knowledge base's records: language-neutral facts and per-language texts of one code."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from smtplens.model import ReplyClass, Stage


class Kind(StrEnum):
    BASIC = "basic"
    ENHANCED = "enhanced"


class Level(StrEnum):
    """The level of an enhanced code in the RFC 3463 scheme; basic codes are ``CODE``."""

    CODE = "code"
    CLASS = "class"
    SUBJECT = "subject"
    DETAIL = "detail"


@dataclass(frozen=True, slots=True)
class Definition:
    text: str
    rfc: str
    section: str


@dataclass(frozen=True, slots=True)
class Reference:
    title: str
    url: str

    def to_dict(self) -> dict[str, str]:
        return {"title": self.title, "url": self.url}


@dataclass(frozen=True, slots=True)
class Facts:
    """Language-neutral facts about one code (``key`` is ``"421"``, ``"X.7.1"``, ``"5.X.X"`` or ``"X.7.X"``)."""

    key: str
    kind: Kind
    level: Level
    reply_class: ReplyClass | None
    stages: tuple[Stage, ...]
    commands: tuple[str, ...]
    closes_connection: bool
    definitions: tuple[Definition, ...]
    counterparts: tuple[str, ...]  # usual enhanced codes of a basic code, basic codes of an enhanced one
    iana_basic: str | None
    classes: tuple[str, ...]  # class digits an enhanced detail is used with
    related: tuple[str, ...]
    references: tuple[Reference, ...]
    source: str
    file: str


TEXT_FIELDS: tuple[str, ...] = ("title", "summary", "description", "use_when")
LIST_FIELDS: tuple[str, ...] = ("when", "fix_sender", "fix_operator", "causes")
ALL_TEXT_FIELDS: tuple[str, ...] = TEXT_FIELDS + LIST_FIELDS


@dataclass(frozen=True, slots=True)
class Texts:
    """The prose of one code in one language; a field is ``None`` when the language lacks it."""

    title: str | None = None
    summary: str | None = None
    description: str | None = None
    use_when: str | None = None
    when: tuple[str, ...] | None = None
    fix_sender: tuple[str, ...] | None = None
    fix_operator: tuple[str, ...] | None = None
    causes: tuple[str, ...] | None = None
