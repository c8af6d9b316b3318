"""The HTTP side of ``smtplens serve``: the Starlette app (API, metrics, UI) and uvicorn inside the running loop.

``create_app(control)`` mounts the JSON API under ``/api``, Prometheus metrics at ``/metrics``, the UI's pages
at ``/`` and its assets under ``/static``. Errors are JSON ``{"error": ...}`` under ``/api`` and ``/metrics``
and an error page elsewhere; an unexpected exception is logged and answered 500 without a traceback.

``await serve_http(app, host, port)`` binds the socket itself (port 0 is resolved at once), then runs uvicorn's
server in the current event loop beside the SMTP server, without uvicorn's signal handlers (``smtplens serve``
owns SIGTERM and SIGINT); ``await http.stop()`` closes it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from smtplens.server.http.api import api_routes
from smtplens.server.http.control import Control
from smtplens.server.http.metrics import CONTENT_TYPE
from smtplens.server.http.params import ApiError
from smtplens.server.http.security import SecurityHeaders
from smtplens.server.http.ui import error_page, ui_routes

__all__ = ["HttpServer", "create_app", "serve_http"]

log = logging.getLogger("smtplens.http")

STATIC = Path(__file__).parent / "static"
_MACHINE_PREFIXES = ("/api", "/metrics", "/static")  # errors there are JSON; elsewhere an error page


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return any(path == prefix or path.startswith(f"{prefix}/") for prefix in _MACHINE_PREFIXES)


def _error(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    response = error_page(request, status, message)
    if headers:
        response.headers.update(headers)
    return response


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(request, exc.status, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: "not found", 405: f"method {request.method} not allowed here"}
    message = messages.get(exc.status_code, str(exc.detail))
    return _error(request, exc.status_code, message, dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc, exc_info=exc)
    return _error(request, 500, f"internal error ({type(exc).__name__}); see the server log")


async def _metrics(request: Request) -> Response:
    control: Control = request.app.state.control
    return Response(control.metrics.render(), media_type=CONTENT_TYPE)


def create_app(control: Control) -> Starlette:
    """The ASGI app over ``control``; see the module docstring and docs/http-api.md."""
    app = Starlette(
        routes=[
            Mount("/api", routes=api_routes()),
            Route("/metrics", _metrics, methods=["GET"]),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
            *ui_routes(),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected},
    )
    app.state.control = control
    return app


class HttpServer:
    """A running uvicorn server (from ``serve_http``): its ``address`` and ``stop()``."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket, loop_task: asyncio.Task[None]) -> None:
        self._server = server
        self._socket = sock
        self._loop_task = loop_task
        host, port = sock.getsockname()[:2]
        self._address = (str(host), int(port))
        self._stopped = False

    @property
    def address(self) -> tuple[str, int]:
        """The host and port listened on (port 0 resolved)."""
        return self._address

    @property
    def url(self) -> str:
        host, port = self._address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stop accepting, let requests in progress finish (5 s at most), close. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._server.should_exit = True
        await self._loop_task
        await self._server.shutdown(sockets=[self._socket])


async def serve_http(app: Starlette, host: str, port: int) -> HttpServer:
    """Start serving ``app`` on ``host:port`` in the running event loop; returns once it is listening.

    Raises ``OSError`` when the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=1024)
    sock.setblocking(False)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,  # leave logging to smtplens serve: uvicorn must not reconfigure it
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    try:
        await server.startup(sockets=[sock])
    except BaseException:
        sock.close()
        raise
    loop_task = asyncio.get_running_loop().create_task(server.main_loop(), name="smtplens-http")
    return HttpServer(server, sock, loop_task)
