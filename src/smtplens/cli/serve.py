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

from smtplens.diagnose.dns import DnspythonResolver
from smtplens.model import Stage
from smtplens.server.net import ServerConfig, SmtpServer, new_event_loop
from smtplens.server.pipeline import Pipeline, Policy
from smtplens.server.policies import DnsblPolicy, GreylistPolicy, RateLimit, RateLimitPolicy, RelayPolicy
from smtplens.server.protocol import SessionConfig
from smtplens.server.store import MessageStore

__all__ = ["build_pipeline", "default_data_dir", "parse_listen", "parse_rate", "serve_cmd"]

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


def build_pipeline(
    config: ServerConfig,
    *,
    greylist: float | None = None,
    dnsbl: tuple[str, ...] = (),
    dnsbl_at: str = "greeting",
    dns: tuple[str, int] | None = None,
    rate_limit: tuple[int, float] | None = None,
) -> Pipeline:
    """The pipeline ``serve`` runs: relay first, then rate limits, DNSBL and greylisting when configured."""
    hostname = config.session.hostname
    policies: list[Policy] = [RelayPolicy(config.accepted_domains, config.accepted_recipients)]
    if rate_limit is not None:
        count, window = rate_limit
        limits = [RateLimit("connections", "client", count, window), RateLimit("messages", "client", count, window)]
        policies.append(RateLimitPolicy(limits, hostname=hostname))
    if dnsbl:
        resolver = DnspythonResolver(*dns) if dns else DnspythonResolver()
        stage = Stage.CONNECT if dnsbl_at == "greeting" else Stage.RCPT
        policies.append(DnsblPolicy(dnsbl, resolver, stage=stage))
    if greylist is not None:
        policies.append(GreylistPolicy(greylist))
    return Pipeline(policies, hostname=hostname, timeout=config.decision_timeout)


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
    default="greeting",
    show_default=True,
    help="Where a DNSBL listing is refused with 554 5.7.1.",
)
@click.option("--dns", metavar="HOST:PORT", help="DNS server for the DNSBL lookups (default: the system's).")
@click.option(
    "--rate-limit",
    metavar="N/SECONDS",
    help="At most N connections (then 421) and N messages (then 450 4.7.1) per client IP in SECONDS.",
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
    greylist: float | None,
    dnsbl: tuple[str, ...],
    dnsbl_at: str,
    dns: str | None,
    rate_limit: str | None,
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
    try:
        dns_server = parse_listen(dns) if dns else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--dns'") from None
    try:
        rate = parse_rate(rate_limit) if rate_limit else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--rate-limit'") from None
    pipeline = build_pipeline(
        config, greylist=greylist, dnsbl=dnsbl, dnsbl_at=dnsbl_at, dns=dns_server, rate_limit=rate
    )
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="smtplens: %(message)s")
    directory = data_dir or default_data_dir()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve(config, pipeline, directory, host, port))


async def _serve(config: ServerConfig, pipeline: Pipeline, directory: Path, host: str, port: int) -> None:
    store = MessageStore(directory)
    try:
        server = SmtpServer(config, store, pipeline.decide)
        await server.start(host, port)
        host, port = server.address
        domains = ", ".join(sorted(config.accepted_domains)) or "none (every recipient is refused)"
        click.echo(f"smtplens: SMTP on {host}:{port}, store {directory}, accepting mail for {domains}", err=True)
        names = ", ".join(policy.name for policy in pipeline.policies)
        click.echo(f"smtplens: policies {names}", err=True)
        server.install_signal_handlers(SHUTDOWN_GRACE)
        await server.serve_forever()
        click.echo("smtplens: stopped", err=True)
    finally:
        await store.aclose()
