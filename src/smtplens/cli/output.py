"""Writing results: rich on a terminal, plain text in a pipe, JSON, markdown or HTML on request."""

from __future__ import annotations

import json
import sys

import click

from smtplens.render.document import Document
from smtplens.render.html import to_html
from smtplens.render.markdown import to_markdown
from smtplens.render.text import to_text

__all__ = ["emit_document", "emit_json", "emit_pairs", "is_terminal", "lang_option"]

lang_option = click.option(
    "--lang",
    "-l",
    default="en",
    show_default=True,
    envvar="SMTPLENS_LANG",
    help="Language of the texts (en, de, fr, es; more when data files are added).",
)


def is_terminal() -> bool:
    return sys.stdout.isatty()


def emit_json(value: object, *, lines: bool = False) -> None:
    """One JSON document, or one compact JSON object per line with ``lines``."""
    if lines:
        click.echo(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    else:
        click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def emit_document(doc: Document, fmt: str) -> None:
    if fmt == "markdown":
        click.echo(to_markdown(doc), nl=False)
    elif fmt == "html":
        click.echo(to_html(doc), nl=False)
    elif is_terminal():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(to_markdown(doc)))
    else:
        click.echo(to_text(doc), nl=False)


def emit_pairs(rows: list[tuple[str, str]]) -> None:
    """Label/value rows: a styled grid on a terminal, aligned plain text in a pipe."""
    if is_terminal():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for key, value in rows:
            grid.add_row(Text(key), Text(value))  # Text: "[TSS04]" is data, not rich markup
        Console().print(grid)
        return
    width = max((len(k) for k, _ in rows), default=0) + 2
    for key, value in rows:
        click.echo(f"{key + ':' if key else '':<{width}}{value}")
