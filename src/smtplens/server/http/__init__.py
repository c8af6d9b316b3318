"""The HTTP side of ``smtplens serve``: JSON API, Prometheus metrics and web UI (docs/http-api.md).

``Control`` bundles what the API drives, ``ServerMetrics`` counts what the SMTP server does (it is the server's
observer), ``create_app`` builds the Starlette app and ``serve_http`` runs it beside the SMTP server.
"""

from __future__ import annotations

from smtplens.server.http.app import HttpServer, create_app, serve_http
from smtplens.server.http.control import Control
from smtplens.server.http.metrics import ServerMetrics

__all__ = ["Control", "HttpServer", "ServerMetrics", "create_app", "serve_http"]
