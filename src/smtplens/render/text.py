"""Render a Document as plain text (for pipes) or as rich output (for terminals)."""

from __future__ import annotations

import textwrap

from smtplens.render.document import Block, Document, Section

__all__ = ["to_text"]

WIDTH = 100


def _wrap(text: str, indent: str = "", first: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent + first, subsequent_indent=indent + " " * len(first)) or [
        ""
    ]


def _block(block: Block, indent: str) -> list[str]:
    out: list[str] = []
    if block.kind == "para":
        out += _wrap(block.items[0], indent)
    elif block.kind == "bullets":
        for item in block.items:
            out += _wrap(item, indent, "- ")
    elif block.kind == "facts":
        width = max(len(k) for k, _ in block.pairs)
        for key, value in block.pairs:
            out += _wrap(value, indent, f"{key + ':':<{width + 2}}")
    else:
        for title, url in block.pairs:
            out += _wrap(f"{title} <{url}>", indent, "- ")
    return [*out, ""]


def _section(section: Section, depth: int) -> list[str]:
    indent = "  " * depth
    lines = [f"{indent}{section.heading}"]
    if depth == 0:
        lines.append("-" * len(section.heading))
    for block in section.blocks:
        lines += _block(block, indent)
    for sub in section.subsections:
        lines += _section(sub, depth + 1)
    return lines


def to_text(doc: Document) -> str:
    lines = [doc.title, "=" * len(doc.title), ""]
    for section in doc.sections:
        lines += _section(section, 0)
    return "\n".join(lines).rstrip() + "\n"
