"""The running part of ``smtplens serve``: open the store, start SMTP (and HTTP), wait for a signal, stop."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import click

from smtplens.server.assemble import Assembly
from smtplens.server.config import ServeSettings
from smtplens.server.net import SmtpServer
from smtplens.server.retention import keep_retention
from smtplens.server.store import MessageStore
from smtplens.server.store_null import MessageSink, NullStore

__all__ = ["run_server"]


async def run_server(settings: ServeSettings, assembly: Assembly, directory: Path) -> None:
    """Serve until SIGTERM or SIGINT; the store is closed after the last session has ended."""
    store: MessageStore | None = None
    sink: MessageSink
    if settings.store.enabled:
        store = MessageStore(
            directory,
            retention_count=settings.store.retention_count,
            retention_seconds=settings.store.retention_seconds,
        )
        sink = store
    else:
        sink = NullStore()
    try:
        async with contextlib.AsyncExitStack() as stack:
            observer = None
            if settings.http.listen is not None:
                from smtplens.server.http import ServerMetrics

                observer = ServerMetrics()
            server = SmtpServer(assembly.config, sink, assembly.pipeline.decide, observer=observer)
            await server.start(*settings.smtp.listen)
            host, port = server.address
            where = f"store {directory}" if store is not None else "no store (messages are discarded)"
            domains = ", ".join(sorted(assembly.config.accepted_domains)) or "none (every recipient is refused)"
            click.echo(f"smtplens: SMTP on {host}:{port}, {where}, accepting mail for {domains}", err=True)
            if observer is not None and store is not None and settings.http.listen is not None:
                from smtplens.server.http import Control, create_app, serve_http

                control = Control(server=server, store=store, metrics=observer, scenarios=assembly.scenarios)
                http = await serve_http(create_app(control), *settings.http.listen)
                stack.push_async_callback(http.stop)
                http_host, http_port = http.address
                click.echo(f"smtplens: HTTP API and web UI on http://{http_host}:{http_port}/", err=True)
            if store is not None and (store.retention_count is not None or store.retention_seconds is not None):
                retention = asyncio.create_task(keep_retention(store, settings.store.purge_interval))
                stack.callback(retention.cancel)
            names = ", ".join(policy.name for policy in assembly.pipeline.policies)
            click.echo(f"smtplens: policies {names}", err=True)
            server.install_signal_handlers(settings.smtp.shutdown_grace)
            await server.serve_forever()
        click.echo("smtplens: stopped", err=True)
    finally:
        if store is not None:
            await store.aclose()
