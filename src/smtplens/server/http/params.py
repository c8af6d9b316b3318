"""Reading a request: query parameters and JSON bodies, each mistake an :class:`ApiError` naming it.

``ApiError`` is the one way a route refuses a request: the app answers it with its status and a JSON body
``{"error": message}`` (an error page in the UI).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "ApiError",
    "bool_param",
    "enabled_flag",
    "int_param",
    "json_object",
    "page_params",
]

MAX_LIMIT = 500
"""The largest page ``limit`` accepted."""

DEFAULT_LIMIT = 50
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ApiError(Exception):
    """A request the API refuses: ``status`` (400, 404, 405, 409, 422) and a message for the JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def int_param(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    """Query parameter ``name`` as an integer from 0 to ``maximum``; ``default`` when absent or empty."""
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()):
        raise ApiError(400, f"{name} must be a non-negative integer, not {text!r}")
    value = int(text)
    if maximum is not None and value > maximum:
        raise ApiError(400, f"{name} must be at most {maximum}, not {value}")
    return value


def bool_param(request: Request, name: str) -> bool:
    """Query parameter ``name`` as a flag: 1/true/yes/on or 0/false/no/off (absent: false)."""
    text = request.query_params.get(name, "").lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ApiError(400, f"{name} must be true or false, not {text!r}")


def page_params(request: Request) -> tuple[int, int, str | None]:
    """``limit``, ``offset`` and the search text ``q`` (None when empty) of a list request."""
    limit = int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    offset = int_param(request, "offset", 0)
    query = request.query_params.get("q") or None
    return limit, offset, query


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object: 400 when it is not JSON, 422 when it is JSON but not an object."""
    body = await request.body()
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(422, f"the body must be a JSON object, not {type(value).__name__}")
    return value


def enabled_flag(body: Mapping[str, Any]) -> bool:
    """The ``enabled`` boolean of a switch body (``{"enabled": true}``); 422 for anything else."""
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise ApiError(422, 'the body must be {"enabled": true} or {"enabled": false}')
    return enabled
