"""The DNS boundary of the diagnosis checks: a small async resolver protocol and its dnspython implementation.

Checks ask for record data only (``txt``, ``a``, ``aaaa``, ``mx``, ``ptr``, ``cname``) and get plain Python values
back. A name that does not exist or has no records of the type gives an empty list and ``void=True`` in
:class:`Answer`; a failure to get an answer (timeout, SERVFAIL, refused) raises :class:`DnsTempError`. Tests
and tools inject any object that follows :class:`Resolver`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from smtplens.errors import SmtplensError

__all__ = ["Answer", "DnsError", "DnsTempError", "DnspythonResolver", "Resolver"]


class DnsError(SmtplensError):
    """A DNS problem that a check reports rather than hides."""


class DnsTempError(DnsError):
    """No answer could be had (timeout, SERVFAIL, REFUSED, network failure): try again later."""


@dataclass(frozen=True, slots=True)
class Answer:
    """Records of one type for one name. ``void`` is true for NXDOMAIN and for an empty answer (NODATA)."""

    records: tuple[str, ...]
    nxdomain: bool = False

    @property
    def void(self) -> bool:
        return not self.records


class Resolver(Protocol):
    """What the checks need from DNS. Names are absolute or relative to the root; no search list is applied.

    * ``txt``: each record's strings joined (RFC 7208 section 3.3), in answer order.
    * ``a`` / ``aaaa``: addresses as text.
    * ``mx``: ``"PREFERENCE EXCHANGE"`` strings, exchange without the trailing dot.
    * ``ptr``: the names of a reverse lookup of an IP address (without trailing dot).
    * ``cname``: the target of the name's CNAME record (without trailing dot); an empty answer when the name is
      not an alias. The alias is not followed.
    """

    async def txt(self, name: str) -> Answer: ...

    async def a(self, name: str) -> Answer: ...

    async def aaaa(self, name: str) -> Answer: ...

    async def mx(self, name: str) -> Answer: ...

    async def ptr(self, ip: str) -> Answer: ...

    async def cname(self, name: str) -> Answer: ...


class DnspythonResolver:
    """:class:`Resolver` over dnspython's async resolver, optionally pointed at one server (``--dns HOST:PORT``)."""

    def __init__(self, server: str | None = None, port: int = 53, timeout: float = 5.0) -> None:
        import dns.asyncresolver

        self._resolver = dns.asyncresolver.Resolver(configure=server is None)
        if server is not None:
            self._resolver.nameservers = [server]
            self._resolver.port = port
        self._resolver.lifetime = timeout
        self._resolver.search = []

    async def _query(self, name: str, rdtype: str) -> list[object]:
        import dns.exception
        import dns.name
        import dns.resolver

        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            raise DnsError(f"not a valid DNS name: {name!r} ({exc})") from exc
        try:
            answer = await self._resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            raise _NxDomainError from None
        except (dns.resolver.NoNameservers, dns.exception.Timeout, dns.resolver.LifetimeTimeout) as exc:
            raise DnsTempError(f"no answer for {name} {rdtype}: {exc}") from exc
        except dns.exception.DNSException as exc:
            raise DnsTempError(f"DNS failure for {name} {rdtype}: {exc}") from exc
        return list(answer.rrset or [])

    async def _answer(self, name: str, rdtype: str) -> Answer:
        try:
            rrs = await self._query(name, rdtype)
        except _NxDomainError:
            return Answer((), nxdomain=True)
        return Answer(tuple(_text(rdtype, rr) for rr in rrs))

    async def txt(self, name: str) -> Answer:
        return await self._answer(name, "TXT")

    async def a(self, name: str) -> Answer:
        return await self._answer(name, "A")

    async def aaaa(self, name: str) -> Answer:
        return await self._answer(name, "AAAA")

    async def mx(self, name: str) -> Answer:
        return await self._answer(name, "MX")

    async def ptr(self, ip: str) -> Answer:
        import dns.reversename

        return await self._answer(dns.reversename.from_address(ip).to_text(), "PTR")

    async def cname(self, name: str) -> Answer:
        return await self._answer(name, "CNAME")


class _NxDomainError(Exception):
    pass


def _text(rdtype: str, rr: object) -> str:
    if rdtype == "TXT":
        strings: tuple[bytes, ...] = rr.strings  # type: ignore[attr-defined]
        return b"".join(strings).decode("utf-8", "replace")
    if rdtype == "MX":
        return f"{rr.preference} {rr.exchange.to_text().rstrip('.')}"  # type: ignore[attr-defined]
    if rdtype in ("PTR", "CNAME"):
        return str(rr.target.to_text().rstrip("."))  # type: ignore[attr-defined]
    return str(rr.to_text())  # type: ignore[attr-defined]
