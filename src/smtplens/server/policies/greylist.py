"""Greylisting on the triplet (client network, sender, recipient), at RCPT.

``GreylistPolicy(delay=300, retry_window=25 * 3600, lifetime=35 * 86400, clock=time.monotonic)``: the first
time a triplet is seen, the recipient is deferred with ``451 4.7.1 <rcpt>: Recipient address rejected:
Greylisted, please try again in N seconds`` (N is what is left of ``delay``). A retry at least ``delay`` seconds
after the first attempt and at most ``retry_window`` seconds after it is accepted and whitelists the triplet
for ``lifetime`` seconds, renewed on every use; a retry later than the window starts over. The client network
is the /24 (IPv4, ``ipv4_prefix``) or /64 (IPv6, ``ipv6_prefix``) of the client address, as postgrey and
Haraka do, because big senders retry from another address of the same pool. Sender and recipient are compared
case-insensitively. State is in memory; the clock is injectable (a callable giving seconds). Defaults: the
delay of postgrey (300 s), the retry window and whitelist lifetime of Haraka (25 h, 35 days).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.session import Context

__all__ = ["GreylistPolicy"]


@dataclass(slots=True)
class _Entry:
    first_seen: float
    whitelisted_until: float | None = None


class GreylistPolicy:
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.RCPT})

    def __init__(
        self,
        delay: float = 300.0,
        retry_window: float = 25 * 3600.0,
        lifetime: float = 35 * 86400.0,
        *,
        ipv4_prefix: int = 24,
        ipv6_prefix: int = 64,
        clock: Callable[[], float] = time.monotonic,
        name: str = "greylist",
    ) -> None:
        if delay < 0 or retry_window <= 0 or lifetime <= 0:
            raise ValueError("greylist delay must not be negative; retry window and lifetime must be positive")
        self.name = name
        self.delay = delay
        self.retry_window = retry_window
        self.lifetime = lifetime
        self.ipv4_prefix = ipv4_prefix
        self.ipv6_prefix = ipv6_prefix
        self.clock = clock
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._checks = 0

    def network(self, ip: str) -> str:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return ip
        prefix = self.ipv4_prefix if address.version == 4 else self.ipv6_prefix
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        if stage is not Stage.RCPT or context.recipient is None:
            return None
        envelope = context.envelope
        recipient = context.recipient.address
        triplet = (self.network(envelope.client_address), (envelope.mail_from or "").lower(), recipient.lower())
        now = self.clock()
        self._checks += 1
        if self._checks % 1000 == 0:
            self._prune(now)
        entry = self._entries.get(triplet)
        if entry is not None and entry.whitelisted_until is not None and now <= entry.whitelisted_until:
            entry.whitelisted_until = now + self.lifetime
            return Decision.accept(policy=self.name)
        if entry is None or entry.whitelisted_until is not None or now - entry.first_seen > self.retry_window:
            entry = self._entries[triplet] = _Entry(now)
        waited = now - entry.first_seen
        if waited >= self.delay:
            entry.whitelisted_until = now + self.lifetime
            return Decision.accept(policy=self.name)
        left = max(1, math.ceil(self.delay - waited))
        text = f"<{recipient}>: Recipient address rejected: Greylisted, please try again in {left} seconds"
        return Decision.defer(code="451", enhanced="4.7.1", text=text, policy=self.name)

    def _prune(self, now: float) -> None:
        for triplet, entry in list(self._entries.items()):
            if entry.whitelisted_until is not None:
                if now > entry.whitelisted_until:
                    del self._entries[triplet]
            elif now - entry.first_seen > self.retry_window:
                del self._entries[triplet]
