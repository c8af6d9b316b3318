"""``smtplens bounce``: what happened to each recipient of bounce mails, per file, as text, JSON Lines or CSV."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

import click

from smtplens.bounce import DEFAULT_LIMIT, BounceResult, InputError, batches, decode_batch, decode_bounce, iter_mails
from smtplens.bounce.inputs import expand
from smtplens.cli.output import emit_json, is_terminal

if TYPE_CHECKING:
    from rich.console import Console

PROGRESS_FROM = 20  # files; fewer finish before a bar would be worth drawing
CSV_COLUMNS = (
    "file",
    "kind",
    "decoder",
    "recipient",
    "original_recipient",
    "sender",
    "reason",
    "status",
    "reply_code",
    "action",
    "hard_bounce",
    "remote_host",
    "stage",
    "diagnostic",
    "timestamp",
    "message_id",
    "subject",
    "list_id",
    "feedback_type",
    "error",
    "warnings",
)


def rows(name: str, result: BounceResult, warnings: list[str]) -> list[dict[str, object]]:
    """The output objects of one mail: one per recipient, or one saying what the mail is when it has none."""
    notes = [*warnings, *result.warnings]
    if not result.recipients:
        return [
            {"file": name, "kind": result.kind.value, "decoder": result.decoder, "recipient": None, "warnings": notes}
        ]
    return [{"file": name, **r.to_dict(), "warnings": notes} for r in result.recipients]


Echo = Callable[[str, str | None], None]


def _plain(line: str, style: str | None) -> None:
    click.echo(line)


def _rich_echo(console: Console) -> Echo:
    from rich.text import Text

    def echo(line: str, style: str | None) -> None:
        console.print(Text(line, style=style or ""), highlight=False, soft_wrap=True)

    return echo


class _Writer:
    """Writes output objects as JSON Lines, CSV or text lines; text is styled with rich on a terminal (where a
    progress bar shares the console, lines appear above it)."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.echo: Echo = _plain
        if fmt == "text" and is_terminal():
            from rich.console import Console

            self.echo = _rich_echo(Console())
        self.csv: csv.DictWriter[str] | None = None
        if fmt == "csv":
            self.csv = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
            self.csv.writeheader()

    def write(self, row: dict[str, object]) -> None:
        if self.fmt == "json":
            emit_json(row, lines=True)
        elif self.csv is not None:
            flat = {k: _cell(row.get(k)) for k in CSV_COLUMNS}
            self.csv.writerow(flat)
        else:
            self.echo(_text_line(row), _style(row))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def _text_line(row: dict[str, object]) -> str:
    name = row["file"]
    if "error" in row:
        return f"{name}: error: {row['error']}"
    if row.get("recipient") is None:
        notes = row.get("warnings") or []
        suffix = f" ({'; '.join(str(n) for n in notes)})" if isinstance(notes, list) and notes else ""
        return f"{name}: {row['kind']}{suffix}"
    fields = [
        str(row.get("recipient") or "(recipient not named)"),
        str(row["reason"]),
        str(row.get("status") or "-"),
        str(row.get("reply_code") or "-"),
        str(row.get("action") or row["kind"]),
    ]
    if row.get("hard_bounce"):
        fields.append("hard")
    diagnostic = " ".join(str(row.get("diagnostic") or "").split())
    line = f"{name}: " + " ".join(fields)
    return f"{line} | {diagnostic[:160]}" if diagnostic else line


def _style(row: dict[str, object]) -> str | None:
    if "error" in row:
        return "bold red"
    if row.get("recipient") is None:
        return "dim"
    if row.get("hard_bounce"):
        return "red"
    if row.get("kind") == "bounce":
        return "yellow" if row.get("retry") else "magenta"
    return "green" if row.get("kind") == "delivery_notice" else None


class _Bar(Protocol):
    console: Console

    def advance(self) -> None: ...


@contextmanager
def _progress(total: int) -> Iterator[_Bar | None]:
    """A rich progress bar on the terminal for large inputs (on stderr when the output is redirected, else below
    the output lines); None for small inputs or without a terminal."""
    if total < PROGRESS_FROM or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=not is_terminal())
    with Progress(
        TextColumn("bounces"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task("decode", total=total)

        class RichBar:
            def __init__(self) -> None:
                self.console = console

            def advance(self) -> None:
                progress.advance(task)

        yield RichBar()


@click.command("bounce")
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one object per recipient, with 'file'.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row: one row per recipient.")
@click.option(
    "--limit",
    type=click.IntRange(min=1024),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Bytes read of one mail; a larger mail is cut there, with a warning.",
)
def bounce_cmd(paths: tuple[str, ...], as_json: bool, as_csv: bool, limit: int) -> int:
    """Explain bounce mails per recipient: reason, status, reply code, hard bounce, original message.

    PATHS are mail files, directories (searched recursively, Maildir folders included), mbox files, or '-' for
    stdin. A file that cannot be read is reported (JSON: {"file", "error"}) and the others are still decoded;
    the exit code is then 1.
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv cannot be used together")
    writer = _Writer("json" if as_json else "csv" if as_csv else "text")
    files = expand(paths)
    file_names = set(files)
    failed = False
    notes: dict[str, list[str]] = {}
    last_file: str | None = None
    with _progress(len(files)) as bar:
        if bar is not None and is_terminal() and writer.fmt == "text":
            writer.echo = _rich_echo(bar.console)
        mails = iter_mails(files, limit=limit, on_warning=lambda n, m: notes.setdefault(n, []).append(m))
        for group in batches(mails, _weight):  # decoded together (decode_batch), written in order
            results = _decoded([data for _, data in group if not isinstance(data, InputError)])
            for name, data in group:
                base = name.rsplit("#", 1)[0] if "#" in name and name not in file_names else name
                if bar is not None and base != last_file:
                    bar.advance()
                last_file = base
                if isinstance(data, InputError):
                    failed = True
                    writer.write({"file": name, "error": data.problem})
                    continue
                result = next(results)
                if isinstance(result, str):
                    failed = True
                    writer.write({"file": name, "error": result})
                    continue
                for row in rows(name, result, notes.pop(name, [])):
                    writer.write(row)
    return 1 if failed else 0


def _weight(item: tuple[str, bytes | InputError]) -> int:
    return len(item[1]) if isinstance(item[1], bytes) else 0


def _decoded(datas: list[bytes]) -> Iterator[BounceResult | str]:
    """Each mail's result, or the text of the error its decoding raised: a decoder bug must not stop a batch, and
    is reported like an unreadable file. The group is decoded together; if that raises, mail by mail, so that only
    the mail at fault is lost."""
    try:
        together = decode_batch(datas)
    except Exception:
        if os.environ.get("SMTPLENS_DEBUG"):
            raise
    else:
        yield from together
        return
    for data in datas:
        try:
            yield decode_bounce(data)
        except Exception as exc:
            if os.environ.get("SMTPLENS_DEBUG"):
                raise
            yield f"internal error: {type(exc).__name__}: {exc}"
