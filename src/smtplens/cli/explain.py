"""``smtplens explain`` and ``smtplens reasons``: what a reply means for the sender, and the reason taxonomy."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import click

from smtplens.classifier import Verdict, classify
from smtplens.cli.output import emit_json, emit_pairs, lang_option
from smtplens.errors import UnknownCodeError
from smtplens.i18n import ui
from smtplens.knowledge.catalogue import lookup, resolve_language
from smtplens.knowledge.reasons import reason_table


def _code_line(code: str | None, lang: str) -> str | None:
    if not code:
        return None
    try:
        info = lookup(code, lang)
    except UnknownCodeError:
        return None
    return f"{info.code} {info.title}: {info.summary}"


def _print_verdict(v: Verdict, lang: str) -> None:
    r = v.reply
    none = ui(lang, "label_none")
    yes_no = {True: ui(lang, "yes"), False: ui(lang, "no")}
    rows: list[tuple[str, str]] = [
        (ui(lang, "label_code"), f"{r.basic or none} {r.enhanced or ''}".rstrip()),
        (ui(lang, "label_text"), r.message or none),
    ]
    for code in (r.basic, r.enhanced):
        line = _code_line(code, lang)
        if line:
            rows.append(("", line))
    if r.remote_host:
        rows.append((ui(lang, "label_remote_host"), r.remote_host + (f" [{r.remote_ip}]" if r.remote_ip else "")))
    if r.stage:
        rows.append((ui(lang, "label_stage"), ui(lang, f"stage_short_{r.stage.value}")))
    rows += [
        (ui(lang, "label_reason"), f"{v.reason} ({v.reason_title})"),
        (ui(lang, "label_meaning"), v.meaning),
        (ui(lang, "label_permanent"), yes_no[v.permanent]),
        (ui(lang, "label_hard_bounce"), yes_no[v.hard_bounce]),
        (ui(lang, "label_retry"), yes_no[v.retry]),
    ]
    if v.retry_after is not None:
        rows.append((ui(lang, "label_retry_after"), ui(lang, "label_seconds", n=v.retry_after)))
    rows += [
        (ui(lang, "label_action"), v.action),
        (ui(lang, "label_operator_action"), v.operator_action),
        (ui(lang, "label_provider"), v.provider or none),
        (ui(lang, "label_confidence"), f"{v.confidence:.2f}"),
    ]
    rows += [(ui(lang, "heading_notes"), note) for note in v.notes]
    for e in v.evidence:
        if e.kind in ("phrase", "code"):
            rows.append((ui(lang, "label_evidence"), f"{e.kind} “{e.detail}” → {e.reason} ({e.table}; {e.source})"))
        elif e.kind == "override" and e.table:  # a table row that changed the reason (not a note, shown above)
            rows.append((ui(lang, "label_evidence"), f"{e.detail} → {e.reason} ({e.table}; {e.source})"))
    emit_pairs(rows)


def _lines() -> Iterator[bytes]:
    for raw in sys.stdin.buffer:
        line = raw.rstrip(b"\r\n")
        if line.strip():
            yield line


@click.command("explain")
@click.argument("text")
@click.option(
    "--stage",
    type=click.Choice(["connect", "helo", "starttls", "auth", "mail", "rcpt", "data", "end_of_data", "quit", "other"]),
    help="The stage, if the text lacks it.",
)
@click.option("--host", "remote_host", help="The remote host that sent the reply, if the text lacks it.")
@lang_option
@click.option("--json", "as_json", is_flag=True, help="JSON output (JSON Lines when reading stdin).")
def explain_cmd(text: str, stage: str | None, remote_host: str | None, lang: str, as_json: bool) -> None:
    """Explain a reply: reason, transient or permanent, hard or soft bounce, what to do. '-' reads stdin."""
    lang = resolve_language(lang)
    inputs: Iterator[str | bytes] = iter([text]) if text != "-" else _lines()
    first = True
    for item in inputs:
        verdict = classify(item, stage=stage, remote_host=remote_host, lang=lang)
        if as_json:
            emit_json(verdict.to_dict(), lines=text == "-")
            continue
        if not first:
            click.echo()
        _print_verdict(verdict, lang)
        first = False


@click.command("reasons")
@lang_option
@click.option("--json", "as_json", is_flag=True, help="Print the taxonomy as JSON.")
def reasons_cmd(lang: str, as_json: bool) -> None:
    """List the reason taxonomy: id, Sisimai name, hard or not, meaning, action."""
    lang = resolve_language(lang)
    table = reason_table()
    infos = [table.info(rid, lang) for rid in table.reasons]
    if as_json:
        emit_json([info.to_dict() for info in infos])
        return
    for info in infos:
        r = info.reason
        click.echo(f"{r.id:<22} {r.nature.value:<5} {r.sisimai:<16} {info.title}")
        click.echo(f"{'':<22} {info.meaning}")
        click.echo(f"{'':<22} {info.action}")
