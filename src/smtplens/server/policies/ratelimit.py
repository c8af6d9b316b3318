"""Rate limits per client IP, sender domain and recipient domain, in a sliding window.

``RateLimitPolicy(limits, hostname=..., clock=time.monotonic)`` takes :class:`RateLimit` rules: ``RateLimit(what,
per, count, window)`` allows ``count`` events of ``what`` (``connections``, ``messages``, ``recipients``) per
value of ``per`` (``client``, ``sender_domain``, ``recipient_domain``) in any ``window`` seconds. Events are
counted when they are allowed (a refused attempt does not extend the wait). The replies are Postfix's anvil texts:

* connections (per client only), at connect: ``421 4.7.0 <hostname> Error: too many connections from <ip>``,
  and the connection is closed;
* messages, counted at MAIL (per recipient domain: at the first RCPT of the message for that domain):
  ``450 4.7.1 Error: too much mail from <key>``;
* recipients, at RCPT: ``450 4.7.1 Error: too many recipients from <key>``.

The clock is injectable (a callable giving seconds); state is in memory and pruned as windows pass.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.session import Context

__all__ = ["RateLimit", "RateLimitPolicy"]

What = Literal["connections", "messages", "recipients"]
Per = Literal["client", "sender_domain", "recipient_domain"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    what: What
    per: Per
    count: int
    window: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.window <= 0:
            raise ValueError("a rate limit needs a positive count and window")
        if self.what not in ("connections", "messages", "recipients"):
            raise ValueError(f"unknown rate limit event {self.what!r}")
        if self.per not in ("client", "sender_domain", "recipient_domain"):
            raise ValueError(f"unknown rate limit key {self.per!r}")
        if self.what == "connections" and self.per != "client":
            raise ValueError("connections are limited per client only")

    @property
    def stage(self) -> Stage:
        if self.what == "connections":
            return Stage.CONNECT
        if self.what == "messages" and self.per != "recipient_domain":
            return Stage.MAIL
        return Stage.RCPT


def _domain(address: str | None) -> str:
    return (address or "").rpartition("@")[2].lower().rstrip(".")


class RateLimitPolicy:
    def __init__(
        self,
        limits: Iterable[RateLimit],
        *,
        hostname: str = "localhost",
        clock: Callable[[], float] = time.monotonic,
        name: str = "ratelimit",
    ) -> None:
        self.name = name
        self.limits = tuple(limits)
        self.hostname = hostname
        self.clock = clock
        self.stages = frozenset(limit.stage for limit in self.limits)
        self._events: dict[tuple[int, str], deque[float]] = {}

    def _key(self, limit: RateLimit, context: Context) -> str | None:
        envelope = context.envelope
        if limit.per == "client":
            return envelope.client_address
        if limit.per == "sender_domain":
            return _domain(envelope.mail_from) if envelope.mail is not None else None
        if context.recipient is None:
            return None
        domain = _domain(context.recipient.address)
        if limit.what == "messages" and any(_domain(r.address) == domain for r in envelope.recipients):
            return None  # this message was already counted for the domain
        return domain

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        now = self.clock()
        due: list[deque[float]] = []
        for index, limit in enumerate(self.limits):
            if limit.stage is not stage:
                continue
            key = self._key(limit, context)
            if key is None:
                continue
            events = self._events.setdefault((index, key), deque())
            while events and events[0] <= now - limit.window:
                events.popleft()
            if len(events) >= limit.count:
                return self._refuse(limit, key)
            due.append(events)
        for events in due:
            events.append(now)
        if len(self._events) > 10_000:
            self._prune(now)
        return None

    def _refuse(self, limit: RateLimit, key: str) -> Decision:
        if limit.what == "connections":
            text = f"{self.hostname} Error: too many connections from {key}"
            return Decision.defer(code="421", enhanced="4.7.0", text=text, disconnect=True, policy=self.name)
        what = "too much mail" if limit.what == "messages" else "too many recipients"
        return Decision.defer(code="450", enhanced="4.7.1", text=f"Error: {what} from {key}", policy=self.name)

    def _prune(self, now: float) -> None:
        for (index, key), events in list(self._events.items()):
            if not events or events[-1] <= now - self.limits[index].window:
                del self._events[index, key]
