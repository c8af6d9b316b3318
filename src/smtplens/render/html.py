"""Render a Document as a standalone, escaped HTML page (Jinja2 with autoescaping)."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from smtplens.render.document import Document

__all__ = ["to_html"]


def inline_code(text: str) -> Markup:
    """Escape ``text`` and show its `backquoted` parts (reply texts, setting names) as <code>."""
    pieces = text.split("`")
    if len(pieces) % 2 == 0:  # an unpaired backquote: show it as it is
        return escape(text)
    out = [escape(p) if i % 2 == 0 else Markup("<code>") + escape(p) + Markup("</code>") for i, p in enumerate(pieces)]
    return Markup("").join(out)


@cache
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("smtplens.render", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["code"] = inline_code
    return env


def to_html(doc: Document) -> str:
    return _env().get_template("page.html.j2").render(doc=doc)
