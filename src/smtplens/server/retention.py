"""Apply the store's retention limits while the server runs: at start, then every ``interval`` seconds.

``MessageStore.purge()`` does the work (blocking, in a thread here); this loop only schedules it and logs what
went. A failing purge is logged and tried again at the next tick: retention never stops the server.
"""

from __future__ import annotations

import asyncio
import logging

from smtplens.server.store import MessageStore

__all__ = ["keep_retention"]

log = logging.getLogger("smtplens.server.retention")


async def keep_retention(store: MessageStore, interval: float) -> None:
    """Purge now and every ``interval`` seconds until cancelled."""
    if interval <= 0:
        raise ValueError("the purge interval must be positive")
    while True:
        try:
            purged = await asyncio.to_thread(store.purge)
        except Exception as exc:
            log.error("applying the retention limits failed: %s", exc)
        else:
            if purged.messages or purged.sessions:
                log.info("retention: removed %d messages and %d sessions", purged.messages, purged.sessions)
        await asyncio.sleep(interval)
