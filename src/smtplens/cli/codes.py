"""``smtplens code``, ``compare`` and ``codes``: the knowledge base on the command line."""

from __future__ import annotations

import click

from smtplens.cli.output import emit_document, emit_json, is_terminal, lang_option
from smtplens.compare import compare
from smtplens.i18n import ui
from smtplens.knowledge.catalogue import CodeInfo, list_codes, lookup
from smtplens.knowledge.entries import Kind
from smtplens.model import ReplyClass
from smtplens.render.document import code_document, comparison_document

_FORMATS = click.Choice(["text", "markdown", "html"])
format_option = click.option(
    "--format",
    "fmt",
    type=_FORMATS,
    default="text",
    show_default=True,
    help="Page format (text on a terminal is styled).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a page.")


@click.command("code")
@click.argument("code")
@lang_option
@json_option
@format_option
def code_cmd(code: str, lang: str, as_json: bool, fmt: str) -> None:
    """Explain one code: 421, 554, 5.7.1, X.1.1, 4.X.X or X.7.X."""
    info = lookup(code, lang)
    if as_json:
        emit_json(info.to_dict())
    else:
        emit_document(code_document(info), fmt)


@click.command("compare")
@click.argument("a")
@click.argument("b")
@lang_option
@json_option
@format_option
def compare_cmd(a: str, b: str, lang: str, as_json: bool, fmt: str) -> None:
    """Compare two codes side by side, e.g. ``compare 421 554 --lang de``."""
    result = compare(a, b, lang)
    if as_json:
        emit_json(result.to_dict())
    else:
        emit_document(comparison_document(result), fmt)


def _class_label(info: CodeInfo) -> str:
    return ui(info.lang, f"class_{info.reply_class.value if info.reply_class else 'none'}")


@click.command("codes")
@click.option(
    "--class",
    "cls",
    type=click.Choice([c.value for c in ReplyClass]),
    help="Only codes of this class (enhanced details used with it included).",
)
@click.option("--kind", type=click.Choice([k.value for k in Kind]), help="Only basic or only enhanced codes.")
@click.option("--search", "-s", help="Full-text search over code, title and all texts (every word must match).")
@lang_option
@json_option
def codes_cmd(cls: str | None, kind: str | None, search: str | None, lang: str, as_json: bool) -> None:
    """List the known codes."""
    found = list_codes(
        lang,
        reply_class=ReplyClass(cls) if cls else None,
        kind=Kind(kind) if kind else None,
        search=search,
    )
    if as_json:
        emit_json([info.to_dict() for info in found])
        return
    if is_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(ui(lang, "label_code"), ui(lang, "label_class"), "", box=None)
        from rich.text import Text

        for info in found:
            table.add_row(info.code, _class_label(info), Text(info.title))
        Console().print(table)
        return
    for info in found:
        click.echo(f"{info.code:<8} {_class_label(info):<24} {info.title}")
