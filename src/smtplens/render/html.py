"""Render a Document as a standalone, escaped HTML page (Jinja2 with autoescaping)."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, select_autoescape

from smtplens.render.document import Document

__all__ = ["to_html"]


@cache
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("smtplens.render", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def to_html(doc: Document) -> str:
    return _env().get_template("page.html.j2").render(doc=doc)
