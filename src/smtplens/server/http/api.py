"""The JSON API under ``/api/`` (docs/http-api.md): messages, sessions, maintenance, scenarios, health.

Each route reads or switches what its :class:`~smtplens.server.http.control.Control` bundles; nothing here
knows SMTP. A refused request raises ``ApiError`` (``params``), which the app answers with a JSON body
``{"error": "..."}`` and a 4xx status; anything unexpected becomes a JSON 500 and a log line, never a traceback.
Store calls that touch the disk run in a worker thread so the SMTP sessions sharing the event loop never wait
for them; the open connections are read in the loop itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from smtplens.server.http.control import Control
from smtplens.server.http.params import (
    MAX_LIMIT,
    ApiError,
    bool_param,
    enabled_flag,
    json_object,
    page_params,
)
from smtplens.server.http.views import (
    find_live,
    health,
    live_sessions,
    message_detail,
    message_summary,
    session_detail,
    session_summary,
)
from smtplens.server.scenarios import ScenarioBook, ScenarioError
from smtplens.server.store_model import MessageInfo

__all__ = ["Endpoint", "api_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]
"""A route's handler for one method."""


def _control(request: Request) -> Control:
    control: Control = request.app.state.control
    return control


# -- routes ----------------------------------------------------------------------------------------------------


async def get_health(request: Request) -> Response:
    control = _control(request)
    return JSONResponse(await asyncio.to_thread(health, control))


async def list_messages(request: Request) -> Response:
    limit, offset, query = page_params(request)
    store = _control(request).store

    def read() -> tuple[list[MessageInfo], int]:
        return store.messages(limit, offset, query), store.count(query)

    messages, total = await asyncio.to_thread(read)
    return JSONResponse(
        {
            "messages": [message_summary(info) for info in messages],
            "total": total,
            "limit": limit,
            "offset": offset,
            "q": query,
        }
    )


async def get_message(request: Request) -> Response:
    queue_id = request.path_params["id"]
    stored = await asyncio.to_thread(_control(request).store.message, queue_id)
    if stored is None:
        raise ApiError(404, f"no message {queue_id!r}")
    return JSONResponse(await asyncio.to_thread(message_detail, stored.info, stored.raw))


async def get_raw_message(request: Request) -> Response:
    queue_id = request.path_params["id"]
    stored = await asyncio.to_thread(_control(request).store.message, queue_id)
    if stored is None:
        raise ApiError(404, f"no message {queue_id!r}")
    if stored.raw is None:
        raise ApiError(409, f"the file of message {queue_id!r} is missing (its index row survived)")
    headers = {}
    if bool_param(request, "download"):
        headers["Content-Disposition"] = f'attachment; filename="{stored.info.queue_id}.eml"'
    return Response(stored.raw, media_type="message/rfc822", headers=headers)


async def delete_message(request: Request) -> Response:
    queue_id = request.path_params["id"]
    deleted = await asyncio.to_thread(_control(request).store.delete, queue_id)
    if not deleted:
        raise ApiError(404, f"no message {queue_id!r}")
    return JSONResponse({"deleted": queue_id})


async def purge_messages(request: Request) -> Response:
    """``?all=true`` deletes every message; without it the store's retention limits are applied now."""
    store = _control(request).store
    if bool_param(request, "all"):

        def delete_all() -> int:
            count = 0
            while batch := store.messages(MAX_LIMIT, 0):
                deleted = sum(store.delete(info.queue_id) for info in batch)
                if not deleted:  # someone else is deleting these very rows
                    break
                count += deleted
            return count

        deleted = await asyncio.to_thread(delete_all)
        return JSONResponse({"messages": deleted, "sessions": 0, "all": True})
    purged = await asyncio.to_thread(store.purge)
    return JSONResponse({"messages": purged.messages, "sessions": purged.sessions, "all": False})


async def list_sessions(request: Request) -> Response:
    """Recorded sessions; with ``live=true`` the connections open now instead (read in the event loop)."""
    limit, offset, query = page_params(request)
    control = _control(request)
    if bool_param(request, "live"):
        records = live_sessions(control, query)[offset : offset + limit + 1]
    else:
        records = await asyncio.to_thread(control.store.sessions, limit + 1, offset, query)
    return JSONResponse(
        {
            "sessions": [session_summary(record) for record in records[:limit]],
            "more": len(records) > limit,
            "limit": limit,
            "offset": offset,
            "q": query,
        }
    )


async def get_session(request: Request) -> Response:
    """A recorded session, or an open connection's transcript so far (``live: true``)."""
    control = _control(request)
    session_id = request.path_params["id"]
    record = find_live(control, session_id) or await asyncio.to_thread(control.store.session, session_id)
    if record is None:
        raise ApiError(404, f"no session {session_id!r}")
    return JSONResponse(session_detail(record))


def _maintenance(control: Control) -> dict[str, object]:
    return {"enabled": control.server.maintenance}


async def get_maintenance(request: Request) -> Response:
    return JSONResponse(_maintenance(_control(request)))


async def set_maintenance(request: Request) -> Response:
    control = _control(request)
    control.server.maintenance = enabled_flag(await json_object(request))
    return JSONResponse(_maintenance(control))


def _book(request: Request) -> ScenarioBook:
    book = _control(request).scenarios
    if book is None:
        raise ApiError(404, "scenarios are not enabled on this server")
    return book


async def list_scenarios(request: Request) -> Response:
    book = _book(request)
    return JSONResponse({"scenarios": [scenario.to_json() for scenario in book.list()]})


async def add_scenario(request: Request) -> Response:
    """The body is a scenario spec; ``{"preset": NAME, ...overrides}`` instantiates a preset."""
    book = _book(request)
    spec = await json_object(request)
    try:
        scenario = await asyncio.to_thread(book.add, spec)
    except ScenarioError as exc:  # it names the field and what is wrong with it
        raise ApiError(422, str(exc)) from None
    return JSONResponse(scenario.to_json(), status_code=201)


async def get_scenario(request: Request) -> Response:
    scenario_id = request.path_params["id"]
    scenario = _book(request).get(scenario_id)
    if scenario is None:
        raise ApiError(404, f"no scenario {scenario_id!r}")
    return JSONResponse(scenario.to_json())


async def patch_scenario(request: Request) -> Response:
    book = _book(request)
    scenario_id = request.path_params["id"]
    enabled = enabled_flag(await json_object(request))
    scenario = book.set_enabled(scenario_id, enabled)
    if scenario is None:
        raise ApiError(404, f"no scenario {scenario_id!r}")
    return JSONResponse(scenario.to_json())


async def delete_scenario(request: Request) -> Response:
    scenario_id = request.path_params["id"]
    if not _book(request).remove(scenario_id):
        raise ApiError(404, f"no scenario {scenario_id!r}")
    return JSONResponse({"deleted": scenario_id})


async def list_presets(request: Request) -> Response:
    found = _control(request).presets()
    return JSONResponse({"presets": {name: scenario.to_json() for name, scenario in sorted(found.items())}})


def api_routes() -> list[BaseRoute]:
    """The routes under ``/api`` (``/scenarios/presets`` before ``/scenarios/{id}``)."""
    table: list[tuple[str, dict[str, Endpoint]]] = [
        ("/health", {"GET": get_health}),
        ("/messages", {"GET": list_messages, "DELETE": purge_messages}),
        ("/messages/{id}", {"GET": get_message, "DELETE": delete_message}),
        ("/messages/{id}/raw", {"GET": get_raw_message}),
        ("/sessions", {"GET": list_sessions}),
        ("/sessions/{id}", {"GET": get_session}),
        ("/maintenance", {"GET": get_maintenance, "PUT": set_maintenance, "POST": set_maintenance}),
        ("/scenarios", {"GET": list_scenarios, "POST": add_scenario}),
        ("/scenarios/presets", {"GET": list_presets}),
        ("/scenarios/{id}", {"GET": get_scenario, "PATCH": patch_scenario, "DELETE": delete_scenario}),
    ]
    return [_route(path, endpoints) for path, endpoints in table]


def _route(path: str, endpoints: dict[str, Endpoint]) -> Route:
    """One route per path with an endpoint per method, so that a 405 lists every method the path has."""
    if "GET" in endpoints:
        endpoints = {**endpoints, "HEAD": endpoints["GET"]}

    async def dispatch(request: Request) -> Response:
        return await endpoints[request.method](request)

    return Route(path, dispatch, methods=list(endpoints))
