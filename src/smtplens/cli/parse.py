"""``smtplens parse``: codes, host and stage out of replies, DSN fields and log lines."""

from __future__ import annotations

import sys

import click

from smtplens.cli.output import emit_json, emit_pairs, lang_option
from smtplens.i18n import ui
from smtplens.knowledge.catalogue import resolve_language
from smtplens.model import Reply
from smtplens.reply import parse_reply


def _print_reply(reply: Reply, lang: str) -> None:
    none = ui(lang, "label_none")
    cls = ui(lang, f"class_{reply.reply_class.value}") if reply.reply_class else none
    rows = [
        (ui(lang, "label_code"), f"{reply.basic or none} {reply.enhanced or ''}".rstrip()),
        (ui(lang, "label_class"), cls),
        (ui(lang, "label_text"), reply.message or none),
        (
            ui(lang, "label_remote_host"),
            " ".join(x for x in (reply.remote_host, reply.remote_ip and f"[{reply.remote_ip}]") if x) or none,
        ),
        (ui(lang, "label_stage"), ui(lang, f"stage_short_{reply.stage.value}") if reply.stage else none),
    ]
    rows += [(ui(lang, "label_warnings"), warning) for warning in reply.warnings]
    emit_pairs(rows)


@click.command("parse")
@click.argument("text")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on any problem instead of warning.")
@lang_option
@click.option("--json", "as_json", is_flag=True, help="JSON output (JSON Lines when reading stdin).")
def parse_cmd(text: str, strict: bool, lang: str, as_json: bool) -> None:
    """Parse TEXT, or '-' to read one reply per line from stdin."""
    lang = resolve_language(lang)
    if text != "-":
        reply = parse_reply(text, strict=strict)
        if as_json:
            emit_json(reply.to_dict())
        else:
            _print_reply(reply, lang)
        return
    first = True
    for raw in sys.stdin.buffer:
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        reply = parse_reply(line, strict=strict)
        if as_json:
            emit_json(reply.to_dict(), lines=True)
        else:
            if not first:
                click.echo()
            _print_reply(reply, lang)
            first = False
