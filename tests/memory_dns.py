"""An in-memory :class:`smtplens.diagnose.dns.Resolver` for unit tests (the integration tests use real unbound)."""

from __future__ import annotations

import asyncio

from smtplens.diagnose.dns import Answer

Data = dict[tuple[str, str], list[str] | Exception]


class MemoryResolver:
    """Answers from a dict ``{("TXT", name): [...]}``: a missing key is NXDOMAIN, ``[]`` is NODATA, an exception
    value is raised. Names are compared without the trailing dot and case-insensitively. Records the queries and
    how many were in flight at once (to show that checks run their lookups concurrently)."""

    def __init__(self, data: Data, delay: float = 0.0) -> None:
        self.data = {(rdtype, name.rstrip(".").lower()): value for (rdtype, name), value in data.items()}
        self.delay = delay
        self.queries: list[tuple[str, str]] = []
        self.in_flight = 0
        self.peak = 0

    async def _get(self, rdtype: str, name: str) -> Answer:
        self.queries.append((rdtype, name))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        value = self.data.get((rdtype, name.rstrip(".").lower()))
        if isinstance(value, Exception):
            raise value
        if value is None:
            return Answer((), nxdomain=True)
        return Answer(tuple(value))

    async def txt(self, name: str) -> Answer:
        return await self._get("TXT", name)

    async def a(self, name: str) -> Answer:
        return await self._get("A", name)

    async def aaaa(self, name: str) -> Answer:
        return await self._get("AAAA", name)

    async def mx(self, name: str) -> Answer:
        return await self._get("MX", name)

    async def ptr(self, ip: str) -> Answer:
        return await self._get("PTR", ip)

    async def cname(self, name: str) -> Answer:
        value = self.data.get(("CNAME", name.rstrip(".").lower()))
        if isinstance(value, Exception):
            raise value
        return Answer(tuple(value or ()))
