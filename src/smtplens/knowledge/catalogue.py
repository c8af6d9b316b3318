"""Localised views of the knowledge base: look a code up, list and search codes."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

from smtplens.errors import UnknownCodeError, UnknownLanguageError
from smtplens.knowledge.entries import (
    LIST_FIELDS,
    TEXT_FIELDS,
    Definition,
    Facts,
    Kind,
    Level,
    Reference,
    Texts,
)
from smtplens.knowledge.load import BASE_LANGUAGE, KnowledgeBase, knowledge
from smtplens.model import ReplyClass, Stage

__all__ = ["CodeInfo", "Heading", "list_codes", "lookup", "normalize_code", "resolve_language"]

_BASIC = re.compile(r"[2-5]\d\d")
_ENHANCED = re.compile(r"([245Xx])\.(\d{1,3}|[Xx]{1,3})\.(\d{1,3}|[Xx]{1,3}|[Yy]{1,3})")


@dataclass(frozen=True, slots=True)
class Heading:
    """The class or subject entry an enhanced detail belongs to, as a short localised line."""

    code: str
    title: str
    summary: str


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """One code, localised: what ``smtplens code`` shows and ``code --json`` prints."""

    code: str
    key: str
    kind: Kind
    level: Level
    reply_class: ReplyClass | None
    lang: str
    title: str
    summary: str
    description: str
    when: tuple[str, ...]
    fix_sender: tuple[str, ...]
    fix_operator: tuple[str, ...]
    use_when: str
    causes: tuple[str, ...]
    stages: tuple[Stage, ...]
    commands: tuple[str, ...]
    closes_connection: bool
    official: tuple[Definition, ...]
    counterparts: tuple[str, ...]
    iana_basic: str | None
    classes: tuple[str, ...]
    related: tuple[str, ...]
    references: tuple[Reference, ...]
    source: str
    fallback: tuple[str, ...]
    notes: tuple[str, ...]
    class_heading: Heading | None
    subject_heading: Heading | None

    def to_dict(self) -> dict[str, object]:
        """The ``code --json`` contract (see docs/json.md)."""
        out: dict[str, object] = {
            "code": self.code,
            "kind": self.kind.value,
            "level": self.level.value,
            "class": self.reply_class.value if self.reply_class else None,
            "lang": self.lang,
            "title": self.title,
            "summary": self.summary,
            "description": self.description,
            "when": list(self.when),
            "fix": {"sender": list(self.fix_sender), "operator": list(self.fix_operator)},
            "use_when": self.use_when,
            "causes": list(self.causes),
            "stages": [s.value for s in self.stages],
            "commands": list(self.commands),
            "closes_connection": self.closes_connection,
            "official": [{"text": d.text, "rfc": d.rfc, "section": d.section} for d in self.official],
            "enhanced" if self.kind is Kind.BASIC else "basic": list(self.counterparts),
            "related": list(self.related),
            "references": [r.to_dict() for r in self.references],
            "source": self.source,
            "fallback": list(self.fallback),
            "notes": list(self.notes),
        }
        if self.kind is Kind.ENHANCED:
            out["iana_basic"] = self.iana_basic
            out["classes"] = list(self.classes)
            for name, head in (
                ("class_heading", self.class_heading),
                ("subject_heading", self.subject_heading),
            ):
                out[name] = None if head is None else {"code": head.code, "title": head.title, "summary": head.summary}
        return out


def resolve_language(lang: str, kb: KnowledgeBase | None = None) -> str:
    """Accept ``de``, ``DE``, ``de-DE`` or ``de_AT``; raise UnknownLanguageError otherwise."""
    if kb is None and lang in _RESOLVED:
        return _RESOLVED[lang]
    kb = kb or knowledge()
    short = lang.strip().replace("_", "-").split("-")[0].lower()
    if short not in kb.texts:
        raise UnknownLanguageError(lang, list(kb.languages))
    if kb is knowledge():
        _RESOLVED[lang] = short
    return short


_RESOLVED: dict[str, str] = {}


def normalize_code(text: str) -> tuple[str, str] | None:
    """Return ``(display code, facts key)`` for a code spelling, or None when it is not a code at all.

    Accepts ``421``, ``5.7.1``, ``#5.7.1``, ``(5.7.1)``, ``5.7.01``, ``X.7.1``, ``5.X.X``, ``5.XXX.YYY``,
    ``X.7.X`` and ``X.7.YYY``.
    """
    s = text.strip().strip("#()[]<>").strip()
    if _BASIC.fullmatch(s):
        return s, s
    m = _ENHANCED.fullmatch(s)
    if not m:
        return None
    cls, subject, detail = m.group(1).upper(), m.group(2), m.group(3)
    subject_is_x = subject.upper().strip("X") == ""
    detail_is_x = detail.upper().strip("XY") == ""
    if cls != "X" and subject_is_x and detail_is_x:
        return f"{cls}.X.X", f"{cls}.X.X"
    if subject_is_x:
        return None
    subject = str(int(subject))
    if subject not in "01234567" or len(subject) != 1:
        return None
    if detail_is_x:
        return (f"X.{subject}.X", f"X.{subject}.X") if cls == "X" else None
    key = f"X.{subject}.{int(detail)}"
    return (key if cls == "X" else f"{cls}.{subject}.{int(detail)}"), key


def _texts(kb: KnowledgeBase, lang: str, key: str) -> tuple[Texts, Texts]:
    return kb.texts[lang].get(key, Texts()), kb.texts[BASE_LANGUAGE][key]


def _field(local: Texts, base: Texts, name: str, fallback: list[str]) -> object:
    value = getattr(local, name)
    if value is None:
        fallback.append(name)
        return getattr(base, name)
    return value


def _heading(kb: KnowledgeBase, lang: str, key: str, shown: str) -> Heading | None:
    if key not in kb.facts:
        return None
    local, base = _texts(kb, lang, key)
    return Heading(shown, local.title or base.title or key, local.summary or base.summary or "")


def _ui(kb: KnowledgeBase, lang: str, key: str) -> str:
    return kb.ui[lang].get(key) or kb.ui[BASE_LANGUAGE][key]


def _notes(kb: KnowledgeBase, lang: str, facts: Facts, code: str) -> list[str]:
    notes = []
    if facts.level is Level.DETAIL and code[0] != "X" and code[0] not in facts.classes:
        used = ", ".join(f"{d}.{facts.key[2:]}" for d in facts.classes)
        notes.append(_ui(kb, lang, "note_unusual_class").format(code=code, used=used))
    if facts.level is Level.DETAIL and code[0] == "X":
        notes.append(_ui(kb, lang, "note_class_from_digit").format(code=code))
    return notes


def lookup(code: str, lang: str = BASE_LANGUAGE, *, kb: KnowledgeBase | None = None) -> CodeInfo:
    """Everything smtplens knows about one code, in ``lang`` with per-field English fallback.

    ``kb`` selects another knowledge base than the shipped one (tests, extensions).
    """
    kb = kb or knowledge()
    lang = resolve_language(lang, kb)
    norm = normalize_code(code)
    if norm is None or norm[1] not in kb.facts:
        raise _unknown(kb, code, norm)
    shown, key = norm
    facts = kb.facts[key]
    local, base = _texts(kb, lang, key)
    fallback: list[str] = []
    values = {name: _field(local, base, name, fallback) for name in TEXT_FIELDS + LIST_FIELDS}
    reply_class = facts.reply_class
    class_heading = subject_heading = None
    if facts.kind is Kind.ENHANCED and facts.level is not Level.CLASS:
        if shown[0] != "X":
            reply_class = ReplyClass.from_digit(shown[0])
            class_heading = _heading(kb, lang, f"{shown[0]}.X.X", f"{shown[0]}.X.X")
        subject_key = f"X.{key.split('.')[1]}.X"
        if facts.level is Level.DETAIL:
            subject_heading = _heading(kb, lang, subject_key, subject_key)
    return CodeInfo(
        code=shown,
        key=key,
        kind=facts.kind,
        level=facts.level,
        reply_class=reply_class,
        lang=lang,
        stages=facts.stages,
        commands=facts.commands,
        closes_connection=facts.closes_connection,
        official=facts.definitions,
        counterparts=facts.counterparts,
        iana_basic=facts.iana_basic,
        classes=facts.classes,
        related=facts.related,
        references=facts.references,
        source=facts.source,
        fallback=tuple(fallback),
        notes=tuple(_notes(kb, lang, facts, shown)),
        class_heading=class_heading,
        subject_heading=subject_heading,
        **values,  # type: ignore[arg-type]
    )


def _unknown(kb: KnowledgeBase, code: str, norm: tuple[str, str] | None) -> UnknownCodeError:
    candidates = [k for k in kb.facts if not k.endswith(".X")]
    concrete = [f"{d}{k[1:]}" for k in candidates if k.startswith("X.") for d in kb.facts[k].classes]
    pool = [k for k in candidates if not k.startswith("X.")] + concrete
    probe = norm[0] if norm else code.strip()
    suggestions = difflib.get_close_matches(probe, pool, n=4, cutoff=0.6)
    hint = None
    if norm and norm[1].startswith("X.") and norm[1].count(".") == 2 and not norm[1].endswith(".X"):
        subject = f"X.{norm[1].split('.')[1]}.X"
        if subject in kb.facts:
            title = kb.texts[BASE_LANGUAGE][subject].title
            hint = f"not in the IANA registry; its subject {subject} means {title}"
            if subject not in suggestions:
                suggestions.append(subject)
    return UnknownCodeError(code, suggestions, hint)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _sort_key(key: str) -> tuple[int, int, int, int]:
    if _BASIC.fullmatch(key):
        return (0, int(key), 0, 0)
    cls, subject, detail = key.split(".")
    level = 1 if detail == "X" and subject == "X" else 2 if detail == "X" else 3
    return (
        1,
        level,
        int(subject) if subject.isdigit() else -1,
        int(detail) if detail.isdigit() else (int(cls) if cls.isdigit() else -1),
    )


def list_codes(
    lang: str = BASE_LANGUAGE,
    *,
    reply_class: ReplyClass | None = None,
    kind: Kind | None = None,
    search: str | None = None,
    kb: KnowledgeBase | None = None,
) -> list[CodeInfo]:
    """All codes in display order, optionally filtered by class, kind and a full-text search.

    The search matches every word (case- and accent-insensitive) against the code and all its texts in
    ``lang``. Enhanced details match a class filter when they are used with that class.
    """
    kb = kb or knowledge()
    lang = resolve_language(lang, kb)
    words = _fold(search).split() if search else []
    out = []
    for key in sorted(kb.facts, key=_sort_key):
        facts = kb.facts[key]
        if kind is not None and facts.kind is not kind:
            continue
        if reply_class is not None:
            if facts.reply_class is not None and facts.reply_class is not reply_class:
                continue
            if facts.reply_class is None and reply_class.digit not in facts.classes:
                continue
        info = lookup(key, lang, kb=kb)
        if words:
            hay = _fold(" ".join(_searchable(info)))
            if not all(w in hay for w in words):
                continue
        out.append(info)
    return out


def _searchable(info: CodeInfo) -> list[str]:
    parts = [info.code, info.title, info.summary, info.description, info.use_when]
    parts += list(info.when) + list(info.fix_sender) + list(info.fix_operator) + list(info.causes)
    parts += [d.text for d in info.official]
    return parts
