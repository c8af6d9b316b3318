"""The server's values as JSON-ready dicts, shared by the API and the UI's pages (docs/http-api.md).

Pure shaping of what the store and the server hand out, plus the two live views of the open connections, which
must be read in the event loop that runs the SMTP server.
"""

from __future__ import annotations

from smtplens import __version__
from smtplens.server.http.control import Control
from smtplens.server.http.mailview import view_message
from smtplens.server.store_model import MessageInfo, SessionRecord

__all__ = [
    "find_live",
    "health",
    "live_sessions",
    "message_detail",
    "message_summary",
    "session_detail",
    "session_summary",
]


def health(control: Control) -> dict[str, object]:
    """What ``GET /api/health`` answers."""
    server = control.server
    stats = control.store.stats()
    try:
        host, port = server.address
        smtp: dict[str, object] | None = {"host": host, "port": port}
    except RuntimeError:
        smtp = None
    return {
        "status": "maintenance" if server.maintenance else "ok",
        "version": __version__,
        "uptime": round(control.uptime, 3),
        "smtp": smtp,
        "connections": server.connections,
        "maintenance": server.maintenance,
        "store": {
            "directory": str(control.store.directory),
            "messages": control.store.count(),
            "messages_stored": stats.messages_stored,
            "sessions_recorded": stats.sessions_recorded,
            "commits": stats.commits,
            "largest_batch": stats.largest_batch,
        },
        "scenarios": control.scenarios is not None,
    }


def message_summary(info: MessageInfo) -> dict[str, object]:
    """A message in a list: its index row without the extra envelope fields."""
    row = info.to_dict()
    row.pop("envelope", None)
    row["id"] = info.queue_id
    return row


def message_detail(info: MessageInfo, raw: bytes | None) -> dict[str, object]:
    """A message with its decoded header fields, text and parts (``None`` when the file is missing)."""
    detail = info.to_dict()
    detail["id"] = info.queue_id
    detail["view"] = None if raw is None else view_message(raw).to_dict()
    return detail


def session_summary(record: SessionRecord) -> dict[str, object]:
    """A session in a list: who, when, the outcome and how many lines, without the transcript."""
    return {
        "id": record.session_id,
        "client_address": record.client_address,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "outcome": record.outcome,
        "lines": len(record.transcript),
        "live": record.ended_at is None,
    }


def session_detail(record: SessionRecord) -> dict[str, object]:
    """A session with its transcript; each line names its direction and, for replies, the deciding policy."""
    detail = session_summary(record)
    detail["transcript"] = [
        {"direction": direction, "line": line, "policy": policy} for direction, line, policy in record.transcript
    ]
    return detail


def live_sessions(control: Control, query: str | None) -> list[SessionRecord]:
    """The open connections (newest first) whose id, client address or transcript contains ``query``."""
    records = control.server.open_sessions()[::-1]
    if not query:
        return records
    wanted = query.lower()

    def hit(record: SessionRecord) -> bool:
        texts = [record.session_id, record.client_address, *(line for _, line, _ in record.transcript)]
        return any(wanted in text.lower() for text in texts)

    return [record for record in records if hit(record)]


def find_live(control: Control, session_id: str) -> SessionRecord | None:
    """The open connection ``session_id``, if it is still open."""
    return next((record for record in control.server.open_sessions() if record.session_id == session_id), None)
