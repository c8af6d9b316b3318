"""Render a Document as CommonMark."""

from __future__ import annotations

import re

from smtplens.render.document import Block, Document, Section

__all__ = ["to_markdown"]

_SPECIAL = re.compile(r"([\\*_\[\]<>|])")


def _esc(text: str) -> str:
    """Escape Markdown syntax, but keep `backquoted` parts as code spans (their content is literal)."""
    pieces = text.split("`")
    if len(pieces) % 2 == 0:  # an unpaired backquote: escape it too
        return _SPECIAL.sub(r"\\\1", text).replace("`", "\\`")
    return "`".join(p if i % 2 else _SPECIAL.sub(r"\\\1", p) for i, p in enumerate(pieces))


def _block(block: Block) -> list[str]:
    if block.kind == "para":
        return [_esc(block.items[0]), ""]
    if block.kind == "bullets":
        return [f"- {_esc(item)}" for item in block.items] + [""]
    if block.kind == "facts":
        return [f"- **{_esc(k)}:** {_esc(v)}" for k, v in block.pairs] + [""]
    return [f"- [{_esc(title)}](<{url}>)" for title, url in block.pairs] + [""]


def _section(section: Section, level: int) -> list[str]:
    lines = [f"{'#' * level} {_esc(section.heading)}", ""]
    for block in section.blocks:
        lines += _block(block)
    for sub in section.subsections:
        lines += _section(sub, min(level + 1, 6))
    return lines


def to_markdown(doc: Document) -> str:
    lines = [f"# {_esc(doc.title)}", ""]
    for section in doc.sections:
        lines += _section(section, 2)
    return "\n".join(lines).rstrip() + "\n"
