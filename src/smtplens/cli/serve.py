"""``smtplens serve``: run the SMTP server (docs/server.md) with its durable store, until SIGTERM or SIGINT.

SMTP only so far; the HTTP API comes later. A signal shuts down gracefully: every open session gets 421, a
message being received is finished first, and nothing that got 250 is lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import click

from smtplens.server.net import ServerConfig, SmtpServer, new_event_loop
from smtplens.server.protocol import SessionConfig
from smtplens.server.store import MessageStore

__all__ = ["default_data_dir", "parse_listen", "serve_cmd"]

SHUTDOWN_GRACE = 30.0


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/smtplens`` (``~/.local/share/smtplens`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "smtplens"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` as (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


@click.command("serve")
@click.option(
    "--smtp",
    "listen",
    default="127.0.0.1:2525",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to listen on for SMTP.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Store directory (messages and session transcripts; default $XDG_DATA_HOME/smtplens).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    metavar="N",
    help="Open connections allowed in total; more get a 421 4.7.0 greeting and are closed.",
)
@click.option(
    "--max-per-ip",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    metavar="N",
    help="Open connections allowed per client address.",
)
@click.option("--maintenance", is_flag=True, help="Answer every connection with a 421 greeting and close it.")
@click.option(
    "--accept-domain",
    "domains",
    multiple=True,
    metavar="DOMAIN",
    help="Accept mail for this domain (repeatable). Other recipients get 554 5.7.1 Relay access denied.",
)
@click.option(
    "--hostname",
    default="localhost",
    show_default=True,
    metavar="NAME",
    help="The name in the greeting and the EHLO reply.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every session's connection events.")
def serve_cmd(
    *,
    listen: str,
    data_dir: Path | None,
    max_connections: int,
    max_per_ip: int,
    maintenance: bool,
    domains: tuple[str, ...],
    hostname: str,
    verbose: bool,
) -> None:
    """Run the SMTP server until SIGTERM or SIGINT (SMTP only for now; the HTTP API comes later).

    Accepted messages are stored durably in DIR before the 250; every session's transcript is kept there too.
    Never an open relay: only recipients in the --accept-domain domains are accepted.
    """
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--smtp'") from None
    try:
        session = SessionConfig(hostname=hostname)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--hostname'") from None
    config = ServerConfig(
        session=session,
        accepted_domains=frozenset(d.lower() for d in domains),
        max_connections=max_connections,
        max_per_ip=max_per_ip,
        maintenance=maintenance,
    )
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="smtplens: %(message)s")
    directory = data_dir or default_data_dir()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve(config, directory, host, port))


async def _serve(config: ServerConfig, directory: Path, host: str, port: int) -> None:
    store = MessageStore(directory)
    try:
        server = SmtpServer(config, store)
        await server.start(host, port)
        host, port = server.address
        domains = ", ".join(sorted(config.accepted_domains)) or "none (every recipient is refused)"
        click.echo(f"smtplens: SMTP on {host}:{port}, store {directory}, accepting mail for {domains}", err=True)
        server.install_signal_handlers(SHUTDOWN_GRACE)
        await server.serve_forever()
        click.echo("smtplens: stopped", err=True)
    finally:
        await store.aclose()
