"""The web UI: server-rendered pages over the same values the JSON API gives, plus a small script for buttons.

Pages: ``/messages`` (search, paging), ``/messages/{id}`` (header fields, text, parts, raw and download
links), ``/sessions`` and ``/sessions/{id}`` (the transcript with the policy behind each reply; ``?live=1``: the
connections open now),
``/scenarios`` (add from a preset or JSON, enable, delete), ``/health``. Every page has the maintenance toggle.
The buttons call the JSON API from ``static/app.js``; pages carry no inline script (the app's
Content-Security-Policy forbids it) and Jinja2 escapes every value (autoescape).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from smtplens import __version__
from smtplens.server.http.control import Control
from smtplens.server.http.params import ApiError
from smtplens.server.http.views import (
    find_live,
    health,
    live_sessions,
    message_detail,
    message_summary,
    session_detail,
    session_summary,
)
from smtplens.server.store_model import MessageInfo

__all__ = ["PAGE_SIZE", "error_page", "templates", "ui_routes"]

PAGE_SIZE = 25
"""Rows per page in the lists."""

TEMPLATES = Path(__file__).parent / "templates"


def _when(timestamp: object) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS UTC`` (empty for none)."""
    if not isinstance(timestamp, int | float):
        return ""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def templates() -> Environment:
    """The Jinja2 environment of the UI: autoescaping on for every template, undefined names are errors."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    return environment


_ENVIRONMENT = templates()


def _render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    control: Control = request.app.state.control
    page = _ENVIRONMENT.get_template(name).render(
        maintenance=control.server.maintenance,
        scenarios_enabled=control.scenarios is not None,
        version=__version__,
        path=request.url.path,
        **context,
    )
    return HTMLResponse(page, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error as a page of the UI."""
    return _render(request, "error.html", status=status, status_code=status, message=message)


def _offset(request: Request) -> int:
    text = request.query_params.get("offset", "0")
    return int(text) if text.isdigit() else 0


async def home(request: Request) -> Response:
    return RedirectResponse("/messages", status_code=303)


async def messages_page(request: Request) -> Response:
    control: Control = request.app.state.control
    query = request.query_params.get("q") or None
    offset = _offset(request)

    def read() -> tuple[list[MessageInfo], int]:
        return control.store.messages(PAGE_SIZE, offset, query), control.store.count(query)

    messages, total = await asyncio.to_thread(read)
    return _render(
        request,
        "messages.html",
        messages=[message_summary(info) for info in messages],
        total=total,
        q=query or "",
        offset=offset,
        page_size=PAGE_SIZE,
    )


async def message_page(request: Request) -> Response:
    control: Control = request.app.state.control
    queue_id = request.path_params["id"]
    stored = await asyncio.to_thread(control.store.message, queue_id)
    if stored is None:
        raise ApiError(404, f"no message {queue_id!r}")
    detail = await asyncio.to_thread(message_detail, stored.info, stored.raw)
    return _render(request, "message.html", message=detail)


async def sessions_page(request: Request) -> Response:
    control: Control = request.app.state.control
    query = request.query_params.get("q") or None
    offset = _offset(request)
    live = request.query_params.get("live") == "1"
    if live:
        records = live_sessions(control, query)[offset : offset + PAGE_SIZE + 1]
    else:
        records = await asyncio.to_thread(control.store.sessions, PAGE_SIZE + 1, offset, query)
    return _render(
        request,
        "sessions.html",
        sessions=[session_summary(record) for record in records[:PAGE_SIZE]],
        more=len(records) > PAGE_SIZE,
        live=live,
        q=query or "",
        offset=offset,
        page_size=PAGE_SIZE,
    )


async def session_page(request: Request) -> Response:
    control: Control = request.app.state.control
    session_id = request.path_params["id"]
    record = find_live(control, session_id) or await asyncio.to_thread(control.store.session, session_id)
    if record is None:
        raise ApiError(404, f"no session {session_id!r}")
    return _render(request, "session.html", session=session_detail(record))


async def scenarios_page(request: Request) -> Response:
    control: Control = request.app.state.control
    book = control.scenarios
    scenarios = [scenario.to_json() for scenario in book.list()] if book is not None else []
    presets = sorted(control.presets().items())
    return _render(request, "scenarios.html", scenarios=scenarios, presets=presets)


async def health_page(request: Request) -> Response:
    control: Control = request.app.state.control
    return _render(request, "health.html", health=await asyncio.to_thread(health, control))


def ui_routes() -> list[BaseRoute]:
    """The pages of the UI (GET only; changes go through the JSON API)."""
    return [
        Route("/", home, methods=["GET"]),
        Route("/messages", messages_page, methods=["GET"]),
        Route("/messages/{id}", message_page, methods=["GET"]),
        Route("/sessions", sessions_page, methods=["GET"]),
        Route("/sessions/{id}", session_page, methods=["GET"]),
        Route("/scenarios", scenarios_page, methods=["GET"]),
        Route("/health", health_page, methods=["GET"]),
    ]
