"""DNS blocklists on the client address, through an injected resolver.

``DnsblPolicy(zones, resolver, stage=Stage.CONNECT)`` looks the client IP up in every zone at once
(:func:`smtplens.diagnose.dnsbl.check_ip`: the A record, then the TXT record when listed). A listing refuses
with Postfix's text ``554 5.7.1 Service unavailable; Client host [ip] blocked using <zone>; <TXT>`` (without
``; <TXT>`` when the zone has none), at the greeting (``stage=Stage.CONNECT``: the session then only accepts
QUIT) or at every RCPT (``stage=Stage.RCPT``, which makes a sending MTA bounce instead of retrying another MX).
Error answers (127.0.0.1, Spamhaus's 127.255.255.x, answers outside 127/8) and failed lookups never block.
``resolver`` is any :class:`smtplens.diagnose.dns.Resolver`; results are cached per address for ``cache_ttl``
seconds on the injectable ``clock``. A client address that is not an IP address is not looked up.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable

from smtplens.diagnose.dns import Resolver
from smtplens.diagnose.dnsbl import check_ip
from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.session import Context

__all__ = ["DnsblPolicy"]


class DnsblPolicy:
    def __init__(
        self,
        zones: Iterable[str],
        resolver: Resolver,
        *,
        stage: Stage = Stage.CONNECT,
        cache_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "dnsbl",
    ) -> None:
        if stage not in (Stage.CONNECT, Stage.RCPT):
            raise ValueError("a DNSBL is checked at the greeting (connect) or at rcpt")
        self.name = name
        self.zones = tuple(z.lower().rstrip(".") for z in zones)
        if not self.zones:
            raise ValueError("at least one DNSBL zone is needed")
        self.resolver = resolver
        self.stage = stage
        self.stages = frozenset({stage})
        self.cache_ttl = cache_ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, Decision | None]] = {}

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        if stage is not self.stage:
            return None
        ip = context.envelope.client_address
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return None
        now = self.clock()
        cached = self._cache.get(ip)
        if cached is not None and now - cached[0] < self.cache_ttl:
            return cached[1]
        decision = await self._lookup(ip)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[ip] = (now, decision)
        return decision

    async def _lookup(self, ip: str) -> Decision | None:
        for listing in await check_ip(ip, self.resolver, self.zones):
            if listing.listed:
                text = f"Service unavailable; Client host [{ip}] blocked using {listing.zone}"
                if listing.txt:
                    text += "; " + " ".join(listing.txt)
                return Decision.reject(code="554", enhanced="5.7.1", text=text, policy=self.name)
        return None
