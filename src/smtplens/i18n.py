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


_COMMAND_STAGES = (Stage.HELO, Stage.STARTTLS, Stage.MAIL, Stage.RCPT, Stage.DATA, Stage.QUIT)


def stage_phrase(lang: str, stages: tuple[Stage, ...]) -> str:
    """Where a code is sent, as a phrase: ``in the greeting and in reply to MAIL FROM or RCPT TO``."""
    if not stages:
        return ui(lang, "stage_none")
    present = set(stages)
    if present >= _MAIN_STAGES:
        return ui(lang, "stage_any")
    commands = [s for s in _COMMAND_STAGES if s in present]
    parts = [ui(lang, "stage_connect")] if Stage.CONNECT in present else []
    if len(commands) == 1:
        parts.append(ui(lang, f"stage_{commands[0].value}"))
    elif commands:
        names = [ui(lang, f"stage_short_{s.value}") for s in commands]
        either = f"{', '.join(names[:-1])} {ui(lang, 'list_or')} {names[-1]}"
        parts.append(ui(lang, "stage_reply_to", commands=either))
    parts += [ui(lang, f"stage_{s.value}") for s in (Stage.AUTH, Stage.END_OF_DATA, Stage.OTHER) if s in present]
    return join_list(lang, parts)
