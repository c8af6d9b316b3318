"""The reason taxonomy: ids, nature (hard/soft/none), retry timing, Sisimai crosswalk, texts per language."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from smtplens.errors import KnowledgeError
from smtplens.knowledge import schema
from smtplens.knowledge.load import BASE_LANGUAGE

__all__ = ["Nature", "Reason", "ReasonInfo", "ReasonTable", "load_reasons", "reason_table"]

_TEXT_FIELDS = ("title", "meaning", "action", "operator")


class Nature(StrEnum):
    """``hard``: the address itself is bad; ``soft``: retrying later may work; ``none``: neither, fix the cause."""

    HARD = "hard"
    SOFT = "soft"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Reason:
    id: str
    sisimai: str
    nature: Nature
    retry_after: int
    enhanced: tuple[str, ...]
    source: str

    @property
    def hard(self) -> bool:
        return self.nature is Nature.HARD


@dataclass(frozen=True, slots=True)
class ReasonInfo:
    """A reason with its texts in one language (English per field where the language lacks one)."""

    reason: Reason
    lang: str
    title: str
    meaning: str
    action: str
    operator: str
    fallback: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        r = self.reason
        return {
            "id": r.id,
            "sisimai": r.sisimai,
            "hard": r.hard,
            "nature": r.nature.value,
            "retry_after": r.retry_after or None,
            "enhanced": list(r.enhanced),
            "lang": self.lang,
            "title": self.title,
            "meaning": self.meaning,
            "action": self.action,
            "operator": self.operator,
            "fallback": list(self.fallback),
        }


@dataclass(frozen=True)
class ReasonTable:
    reasons: Mapping[str, Reason]  # in taxonomy order
    texts: Mapping[str, Mapping[str, Mapping[str, str]]]  # lang -> id -> field -> text
    _infos: dict[tuple[str, str], ReasonInfo] = field(default_factory=dict, repr=False, compare=False)

    def info(self, reason_id: str, lang: str = BASE_LANGUAGE) -> ReasonInfo:
        """The reason with its texts in ``lang`` (built once, then shared)."""
        cached = self._infos.get((reason_id, lang))
        if cached is None:
            cached = self._infos[(reason_id, lang)] = self._build(reason_id, lang)
        return cached

    def _build(self, reason_id: str, lang: str) -> ReasonInfo:
        reason = self.reasons[reason_id]
        local = self.texts.get(lang, {}).get(reason_id, {})
        base = self.texts[BASE_LANGUAGE][reason_id]
        fallback = tuple(f for f in _TEXT_FIELDS if f not in local)
        values = {f: local.get(f) or base[f] for f in _TEXT_FIELDS}
        return ReasonInfo(reason, lang, fallback=fallback, **values)


def load_reasons(root: Traversable | None = None) -> ReasonTable:
    """Load and validate ``reasons/reasons.toml`` and every ``texts/<lang>/reasons.toml`` under ``root``."""
    root = root or resources.files("smtplens.knowledge")
    label = "reasons/reasons.toml"
    data = schema.read_toml(root / "reasons" / "reasons.toml", label)
    reasons: dict[str, Reason] = {}
    for i, raw in enumerate(schema.tables(schema.Where(label), data, "reason")):
        rid = schema.req_text(schema.Where(label, f"reason[{i}]"), raw, "id")
        where = schema.Where(label, rid)
        nature = schema.req_text(where, raw, "nature")
        try:
            nat = Nature(nature)
        except ValueError:
            raise where.error("nature", f"must be hard, soft or none, not {nature!r}") from None
        retry_after = raw.get("retry_after")
        if not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0:
            raise where.error("retry_after", "expected a whole number of seconds (0 = do not retry)")
        if rid in reasons:
            raise where.error("id", "defined twice")
        reasons[rid] = Reason(
            id=rid,
            sisimai=schema.req_text(where, raw, "sisimai"),
            nature=nat,
            retry_after=retry_after,
            enhanced=tuple(schema.text_list(where, raw, "enhanced", required=False) or ()),
            source=schema.req_text(where, raw, "source"),
        )
    texts: dict[str, dict[str, dict[str, str]]] = {}
    for lang_dir in sorted((n for n in (root / "texts").iterdir() if n.is_dir()), key=lambda n: n.name):
        node = lang_dir / "reasons.toml"
        if not node.is_file():
            continue
        tlabel = f"texts/{lang_dir.name}/reasons.toml"
        tdata = schema.read_toml(node, tlabel)
        by_id: dict[str, dict[str, str]] = {}
        for rid, value in tdata.items():
            where = schema.Where(tlabel, rid)
            if rid not in reasons:
                raise where.error("(entry)", "texts for a reason that is not in reasons.toml")
            entry = schema.table(where, value, "(entry)")
            fields = {}
            for name in _TEXT_FIELDS:
                text_value = schema.text(where, entry, name, required=lang_dir.name == BASE_LANGUAGE)
                if text_value:
                    fields[name] = text_value
            by_id[rid] = fields
        texts[lang_dir.name] = by_id
    base = texts.get(BASE_LANGUAGE, {})
    for rid in reasons:
        if rid not in base:
            raise KnowledgeError(f"texts/{BASE_LANGUAGE}/reasons.toml", "(entry)", "English texts are missing", rid)
    return ReasonTable(reasons=reasons, texts=texts)


@cache
def reason_table() -> ReasonTable:
    """The shipped taxonomy, loaded and validated once per process."""
    return load_reasons()
