"""``smtplens serve``: the SMTP server (docs/server.md) with its durable store and, with ``--http``, the JSON API
and web UI, until SIGTERM or SIGINT.

Settings come from the defaults, then the ``--config`` TOML file (docs/server-config.md), then the flags given
on the command line: a flag always wins. A signal shuts down gracefully: every open session gets 421, a
message being received is finished first, and nothing that got 250 is lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import click

from smtplens.server.assemble import assemble
from smtplens.server.config import (
    ConfigError,
    DnsblSettings,
    GreylistSettings,
    ServeSettings,
    load_config,
    parse_address,
)
from smtplens.server.policies import RateLimit

__all__ = ["apply_flags", "default_data_dir", "parse_rate", "serve_cmd"]


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/smtplens`` (``~/.local/share/smtplens`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "smtplens"


def parse_rate(text: str) -> tuple[int, float]:
    """``N/SECONDS`` as (count, window)."""
    count, sep, window = text.partition("/")
    try:
        pair = int(count), float(window)
    except ValueError:
        pair = (0, 0.0)
    if not sep or pair[0] < 1 or pair[1] <= 0:
        raise ValueError(f"expected N/SECONDS, not {text!r}")
    return pair


def apply_flags(settings: ServeSettings, flags: dict[str, Any]) -> ServeSettings:
    """The settings with the command-line ``flags`` that were given (value not None) put over them.

    Raises ValueError (with the flag's name first) for a malformed address or rate.
    """
    smtp = settings.smtp
    smtp_changes: dict[str, Any] = {}
    for flag, name in (("max_connections", "max_connections"), ("max_per_ip", "max_per_ip"), ("hostname", "hostname")):
        if flags.get(flag) is not None:
            smtp_changes[name] = flags[flag]
    if flags.get("maintenance"):
        smtp_changes["maintenance"] = True
    if flags.get("domains"):
        smtp_changes["accept_domains"] = smtp.accept_domains | {d.lower() for d in flags["domains"]}
    if flags.get("listen") is not None:
        smtp_changes["listen"] = _flag_address("--smtp", flags["listen"])
    changes: dict[str, Any] = {"smtp": dataclasses.replace(smtp, **smtp_changes)}
    if flags.get("http") is not None:
        listen = None if flags["http"] in ("", "off", "none") else _flag_address("--http", flags["http"])
        changes["http"] = dataclasses.replace(settings.http, listen=listen)
    store_changes: dict[str, Any] = {}
    if flags.get("data_dir") is not None:
        store_changes["directory"] = flags["data_dir"]
    if flags.get("no_store"):
        store_changes["enabled"] = False
    if store_changes:
        changes["store"] = dataclasses.replace(settings.store, **store_changes)
    if flags.get("dns") is not None:
        changes["dns"] = _flag_address("--dns", flags["dns"])
    if flags.get("greylist") is not None:
        changes["greylist"] = dataclasses.replace(settings.greylist or GreylistSettings(), delay=flags["greylist"])
    if flags.get("dnsbl"):
        at = flags.get("dnsbl_at") or (settings.dnsbl.at if settings.dnsbl else "greeting")
        zones = (settings.dnsbl.zones if settings.dnsbl else ()) + tuple(flags["dnsbl"])
        changes["dnsbl"] = DnsblSettings(zones=tuple(dict.fromkeys(zones)), at=at)
    elif flags.get("dnsbl_at") and settings.dnsbl is not None:
        changes["dnsbl"] = dataclasses.replace(settings.dnsbl, at=flags["dnsbl_at"])
    if flags.get("rate_limit") is not None:
        try:
            count, window = parse_rate(flags["rate_limit"])
        except ValueError as exc:
            raise ValueError(f"--rate-limit: {exc}") from None
        limits = (RateLimit("connections", "client", count, window), RateLimit("messages", "client", count, window))
        changes["rate_limits"] = settings.rate_limits + limits
    return dataclasses.replace(settings, **changes)


def _flag_address(flag: str, text: str) -> tuple[str, int]:
    try:
        return parse_address(text)
    except ValueError as exc:
        raise ValueError(f"{flag}: {exc}") from None


@click.command("serve")
@click.option("--smtp", "listen", metavar="HOST:PORT", help="Address to listen on for SMTP.  [default: 127.0.0.1:2525]")
@click.option("--http", metavar="HOST:PORT", help="Serve the JSON API, /metrics and the web UI here (off by default).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="TOML configuration (docs/server-config.md); flags given on the command line override it.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Store directory (messages and session transcripts; default $XDG_DATA_HOME/smtplens).",
)
@click.option(
    "--no-store",
    is_flag=True,
    help="Accept messages without storing them (for load tests: a 250 then promises nothing).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    metavar="N",
    help="Open connections allowed in total; more get a 421 4.7.0 greeting and are closed.  [default: 1000]",
)
@click.option(
    "--max-per-ip",
    type=click.IntRange(min=1),
    metavar="N",
    help="Open connections allowed per client address.  [default: 100]",
)
@click.option("--maintenance", is_flag=True, help="Answer every connection with a 421 greeting and close it.")
@click.option(
    "--accept-domain",
    "domains",
    multiple=True,
    metavar="DOMAIN",
    help="Accept mail for this domain (repeatable). Other recipients get 554 5.7.1 Relay access denied.",
)
@click.option("--hostname", metavar="NAME", help="The name in the greeting and the EHLO reply.  [default: localhost]")
@click.option(
    "--greylist",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Greylist (client /24, sender, recipient): 451 4.7.1 until a retry after SECONDS.",
)
@click.option("--dnsbl", "dnsbl", multiple=True, metavar="ZONE", help="Refuse clients listed in ZONE (repeatable).")
@click.option(
    "--dnsbl-at",
    type=click.Choice(["greeting", "rcpt"]),
    help="Where a DNSBL listing is refused with 554 5.7.1.  [default: greeting]",
)
@click.option("--dns", metavar="HOST:PORT", help="DNS server for the DNSBL and SPF/DKIM/DMARC lookups.")
@click.option(
    "--rate-limit",
    metavar="N/SECONDS",
    help="At most N connections (then 421) and N messages (then 450 4.7.1) per client IP in SECONDS.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every session's connection events.")
def serve_cmd(*, config_file: Path | None, verbose: bool, **flags: Any) -> None:
    """Run the SMTP server (and with --http the JSON API and web UI) until SIGTERM or SIGINT.

    Accepted messages are stored durably in DIR before the 250; every session's transcript is kept there too.
    Never an open relay: only recipients in the --accept-domain domains are accepted.
    """
    try:
        settings = load_config(config_file) if config_file else ServeSettings()
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="'--config'") from None
    try:
        settings = apply_flags(settings, flags)
    except ValueError as exc:
        flag, _, problem = str(exc).partition(": ")
        raise click.BadParameter(problem, param_hint=f"'{flag}'") from None
    if settings.http.listen is not None:
        if not settings.store.enabled:
            raise click.UsageError("--http shows the stored messages: it cannot be used with --no-store")
        import smtplens.server.http  # noqa: F401 - before anything listens: a missing extra is said at once
    try:
        assembly = assemble(settings)
    except (ValueError, ConfigError) as exc:
        raise click.UsageError(str(exc)) from None
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="smtplens: %(message)s")
    from smtplens.cli.serve_run import run_server
    from smtplens.server.net import new_event_loop

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(run_server(settings, assembly, settings.store.directory or default_data_dir()))
