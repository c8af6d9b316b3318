"""The running part of ``smtplens serve``: open the store, start SMTP (and HTTP), wait for a signal, stop."""

from __future__ import annotations

from pathlib import Path

import click

from smtplens.server.assemble import Assembly
from smtplens.server.config import ServeSettings
from smtplens.server.net import SmtpServer
from smtplens.server.store import MessageStore

__all__ = ["run_server"]


async def run_server(settings: ServeSettings, assembly: Assembly, directory: Path) -> None:
    store = MessageStore(
        directory,
        retention_count=settings.store.retention_count,
        retention_seconds=settings.store.retention_seconds,
    )
    try:
        server = SmtpServer(assembly.config, store, assembly.pipeline.decide)
        await server.start(*settings.smtp.listen)
        host, port = server.address
        domains = ", ".join(sorted(assembly.config.accepted_domains)) or "none (every recipient is refused)"
        click.echo(f"smtplens: SMTP on {host}:{port}, store {directory}, accepting mail for {domains}", err=True)
        names = ", ".join(policy.name for policy in assembly.pipeline.policies)
        click.echo(f"smtplens: policies {names}", err=True)
        server.install_signal_handlers(settings.smtp.shutdown_grace)
        await server.serve_forever()
        click.echo("smtplens: stopped", err=True)
    finally:
        await store.aclose()
