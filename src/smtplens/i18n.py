"""Interface strings and list joining per language, read from the knowledge base's ui.toml files."""

from __future__ import annotations

from smtplens.knowledge.load import BASE_LANGUAGE, knowledge
from smtplens.model import STAGES, Stage

__all__ = ["join_list", "stage_phrase", "ui"]

_MAIN_STAGES = frozenset(s for s in STAGES if s is not Stage.OTHER)


def ui(lang: str, key: str, **values: object) -> str:
    """The interface string ``key`` in ``lang`` (English when the language lacks it), formatted."""
    kb = knowledge()
    template = kb.ui.get(lang, {}).get(key) or kb.ui[BASE_LANGUAGE][key]
    return template.format(**values) if values else template


def join_list(lang: str, items: list[str]) -> str:
    """``a, b and c`` in the language's own words."""
    if not items:
        return ui(lang, "label_none")
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {ui(lang, 'list_and')} {items[-1]}"


def stage_phrase(lang: str, stages: tuple[Stage, ...]) -> str:
    """Where a code is sent, as a phrase: ``in the greeting and in reply to RCPT TO``."""
    if set(stages) >= _MAIN_STAGES:
        return ui(lang, "stage_any")
    return join_list(lang, [ui(lang, f"stage_{s.value}") for s in stages])
