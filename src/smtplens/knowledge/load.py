"""Loading and validating the knowledge data files shipped inside the package."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from smtplens.errors import KnowledgeError
from smtplens.knowledge import schema
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
from smtplens.model import ReplyClass, Stage

__all__ = ["KnowledgeBase", "knowledge", "load_knowledge"]

BASE_LANGUAGE = "en"
BASIC_RE = re.compile(r"[2-5][0-5]\d")
CLASS_KEY_RE = re.compile(r"([245])\.X\.X")
SUBJECT_KEY_RE = re.compile(r"X\.([0-7])\.X")
DETAIL_KEY_RE = re.compile(r"X\.([0-7])\.(\d{1,3})")
CONCRETE_ENHANCED_RE = re.compile(r"([245])\.([0-7])\.(\d{1,3})")


@dataclass(frozen=True)
class KnowledgeBase:
    """Everything smtplens knows about codes: facts by key, texts by language and key, interface strings."""

    facts: Mapping[str, Facts]
    texts: Mapping[str, Mapping[str, Texts]]
    ui: Mapping[str, Mapping[str, str]]
    language_names: Mapping[str, str]

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.texts)


def _stages(where: schema.Where, data: Mapping[str, object], *, allow_empty: bool = False) -> tuple[Stage, ...]:
    names = schema.req_list(where, data, "stages")
    out = []
    for name in names:
        try:
            out.append(Stage(name))
        except ValueError:
            raise where.error("stages", f"unknown stage {name!r}") from None
    if not out and not allow_empty:
        raise where.error("stages", "is empty")
    return tuple(out)


def _references(where: schema.Where, data: Mapping[str, object]) -> tuple[Reference, ...]:
    refs = []
    for i, item in enumerate(schema.tables(where, data, "references")):
        title = schema.req_text(where, item, "title")
        url = schema.req_text(where, item, "url")
        if not url.startswith("https://"):
            raise where.error(f"references[{i}].url", f"not an https URL: {url!r}")
        refs.append(Reference(title, url))
    if not refs:
        raise where.error("references", "at least one reference is required")
    return tuple(refs)


def _basic_facts(where: schema.Where, key: str, data: Mapping[str, object]) -> Facts:
    if not BASIC_RE.fullmatch(key):
        raise where.error("code", f"not a basic reply code: {key!r}")
    cls_name = schema.req_text(where, data, "class")
    try:
        cls = ReplyClass(cls_name)
    except ValueError:
        raise where.error("class", f"unknown class {cls_name!r}") from None
    if cls.digit != key[0]:
        raise where.error("class", f"{cls.value} does not agree with the first digit of {key}")
    defs = []
    for item in schema.tables(where, data, "definitions"):
        defs.append(
            Definition(
                schema.req_text(where, item, "text"),
                schema.req_text(where, item, "rfc"),
                schema.req_text(where, item, "section", allow_empty=True),
            )
        )
    if not defs:
        raise where.error("definitions", "at least one definition is required")
    enhanced = schema.text_list(where, data, "enhanced", required=False) or []
    for code in enhanced:
        m = CONCRETE_ENHANCED_RE.fullmatch(code)
        if not m:
            raise where.error("enhanced", f"not an enhanced status code: {code!r}")
    return Facts(
        key=key,
        kind=Kind.BASIC,
        level=Level.CODE,
        reply_class=cls,
        stages=_stages(where, data),
        commands=tuple(schema.text_list(where, data, "commands", required=False) or ()),
        closes_connection=schema.flag(where, data, "closes_connection"),
        definitions=tuple(defs),
        counterparts=tuple(enhanced),
        iana_basic=None,
        classes=(key[0],),
        related=tuple(schema.req_list(where, data, "related")),
        references=_references(where, data),
        source=schema.req_text(where, data, "source"),
        file=where.file,
    )


def _enhanced_facts(where: schema.Where, key: str, data: Mapping[str, object]) -> Facts:
    level_name = schema.req_text(where, data, "level")
    try:
        level = Level(level_name)
    except ValueError:
        raise where.error("level", f"unknown level {level_name!r}") from None
    pattern = {Level.CLASS: CLASS_KEY_RE, Level.SUBJECT: SUBJECT_KEY_RE, Level.DETAIL: DETAIL_KEY_RE}.get(level)
    if pattern is None or not pattern.fullmatch(key):
        raise where.error("code", f"{key!r} is not a valid {level_name} key")
    cls = ReplyClass.from_digit(key[0]) if level is Level.CLASS else None
    classes = schema.text_list(where, data, "classes", required=False)
    if level is Level.CLASS:
        classes = [key[0]]
    elif not classes:
        raise where.error("classes", "missing")
    for digit in classes:
        if digit not in ("2", "4", "5"):
            raise where.error("classes", f"class digit must be 2, 4 or 5, not {digit!r}")
    definition = Definition(
        schema.req_text(where, data, "registry_name"),
        schema.req_text(where, data, "defined_in"),
        schema.req_text(where, data, "section", allow_empty=True),
    )
    basic = schema.text_list(where, data, "basic", required=False) or []
    for code in basic:
        if not BASIC_RE.fullmatch(code):
            raise where.error("basic", f"not a basic reply code: {code!r}")
    return Facts(
        key=key,
        kind=Kind.ENHANCED,
        level=level,
        reply_class=cls,
        stages=_stages(where, data, allow_empty=True),  # empty: only seen in DSNs, never in a reply
        commands=tuple(schema.text_list(where, data, "commands", required=False) or ()),
        closes_connection=schema.flag(where, data, "closes_connection"),
        definitions=(definition,),
        counterparts=tuple(basic),
        iana_basic=schema.req_text(where, data, "iana_basic", allow_empty=True),
        classes=tuple(classes),
        related=tuple(schema.req_list(where, data, "related")),
        references=_references(where, data),
        source=schema.req_text(where, data, "source"),
        file=where.file,
    )


def _load_facts(root: Traversable) -> dict[str, Facts]:
    facts: dict[str, Facts] = {}
    codes_dir = root / "codes"
    for node in sorted(codes_dir.iterdir(), key=lambda n: n.name):
        if not node.name.endswith(".toml"):
            continue
        label = f"codes/{node.name}"
        data = schema.read_toml(node, label)
        for i, raw in enumerate(schema.tables(schema.Where(label), data, "code")):
            key = schema.req_text(schema.Where(label, f"code[{i}]"), raw, "code")
            where = schema.Where(label, key)
            entry = _basic_facts(where, key, raw) if node.name.startswith("basic") else _enhanced_facts(where, key, raw)
            if key in facts:
                raise where.error("code", f"defined twice (also in {facts[key].file})")
            facts[key] = entry
    return facts


def _load_texts(where: schema.Where, data: Mapping[str, object]) -> Texts:
    values: dict[str, object] = {}
    known = set(TEXT_FIELDS) | set(LIST_FIELDS)
    for name in data:
        if name not in known:
            raise where.error(name, "unknown field")
    for name in TEXT_FIELDS:
        values[name] = schema.text(where, data, name, required=False)
    for name in LIST_FIELDS:
        items = schema.text_list(where, data, name, required=False)
        values[name] = tuple(items) if items is not None else None
    return Texts(**values)  # type: ignore[arg-type]


def _load_language(lang_dir: Traversable, lang: str) -> tuple[dict[str, Texts], dict[str, str]]:
    texts: dict[str, Texts] = {}
    ui: dict[str, str] = {}
    for node in sorted(lang_dir.iterdir(), key=lambda n: n.name):
        if not node.name.endswith(".toml") or node.name in _OTHER_TEXT_FILES:
            continue
        label = f"texts/{lang}/{node.name}"
        data = schema.read_toml(node, label)
        if node.name == "ui.toml":
            for key, value in data.items():
                if not isinstance(value, str):
                    raise KnowledgeError(label, key, "expected a string")
                ui[key] = value
            continue
        for key, raw in data.items():
            where = schema.Where(label, key)
            if key in texts:
                raise where.error("(entry)", "defined twice")
            texts[key] = _load_texts(where, schema.table(where, raw, "(entry)"))
    return texts, ui


def _check_references(facts: Mapping[str, Facts]) -> None:
    for entry in facts.values():
        where = schema.Where(entry.file, entry.key)
        for code in entry.related:
            if canonical_key(code) not in facts:
                raise where.error("related", f"refers to unknown code {code!r}")
        for code in entry.counterparts:
            if canonical_key(code) not in facts:
                field = "enhanced" if entry.kind is Kind.BASIC else "basic"
                raise where.error(field, f"refers to unknown code {code!r}")


def _check_texts(facts: Mapping[str, Facts], texts: Mapping[str, Mapping[str, Texts]]) -> None:
    base = texts.get(BASE_LANGUAGE, {})
    for lang, by_key in texts.items():
        for key in by_key:
            if key not in facts:
                raise KnowledgeError(f"texts/{lang}", key, "texts for a code that has no facts entry")
    for key, entry in facts.items():
        en = base.get(key)
        where = schema.Where(f"texts/{BASE_LANGUAGE}/{entry.file.removeprefix('codes/')}", key)
        if en is None:
            raise where.error("(entry)", "English texts are missing")
        for name in TEXT_FIELDS + LIST_FIELDS:
            if getattr(en, name) in (None, ""):
                raise where.error(name, "missing (English is complete by rule)")


def canonical_key(code: str) -> str:
    """Map a concrete code spelling to its facts key: ``"5.1.1"`` → ``"X.1.1"``; basic codes stay."""
    m = CONCRETE_ENHANCED_RE.fullmatch(code)
    if m:
        return f"X.{m.group(2)}.{int(m.group(3))}"
    return code


def load_knowledge(root: Traversable | None = None) -> KnowledgeBase:
    """Load and validate every data file under ``root`` (the package's ``knowledge`` folder by default)."""
    if root is None:
        root = resources.files("smtplens.knowledge")
    facts = _load_facts(root)
    _check_references(facts)
    texts: dict[str, dict[str, Texts]] = {}
    ui: dict[str, dict[str, str]] = {}
    texts_root = root / "texts"
    lang_dirs = sorted((n for n in texts_root.iterdir() if n.is_dir()), key=lambda n: n.name)
    for lang_dir in _base_first(lang_dirs):
        texts[lang_dir.name], ui[lang_dir.name] = _load_language(lang_dir, lang_dir.name)
    if BASE_LANGUAGE not in texts:
        raise KnowledgeError("texts", BASE_LANGUAGE, "the English texts folder is missing")
    _check_texts(facts, texts)
    missing_ui = [k for k in _REQUIRED_UI if k not in ui[BASE_LANGUAGE]]
    if missing_ui:
        raise KnowledgeError(f"texts/{BASE_LANGUAGE}/ui.toml", missing_ui[0], "missing")
    names = {lang: ui[lang].get("language_name", lang) for lang in texts}
    return KnowledgeBase(facts=facts, texts=texts, ui=ui, language_names=names)


def _base_first(dirs: Iterable[Traversable]) -> list[Traversable]:
    return sorted(dirs, key=lambda n: (n.name != BASE_LANGUAGE, n.name))


_OTHER_TEXT_FILES = frozenset({"reasons.toml"})  # loaded by smtplens.knowledge.reasons
_REQUIRED_UI = ("language_name", "heading_description", "heading_when", "heading_fix")


@cache
def knowledge() -> KnowledgeBase:
    """The shipped knowledge base, loaded and validated once per process."""
    return load_knowledge()
