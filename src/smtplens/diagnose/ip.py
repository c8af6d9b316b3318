"""``check ip``: is a sending address blocklisted, and does its reverse DNS look like a mail server's?

:func:`diagnose_ip` asks every DNSBL zone and the PTR record at once, then checks that a PTR name resolves back to
the address (forward-confirmed reverse DNS, which many receivers require) and whether the name looks like an
ISP's generic name for a dynamic address. All DNS goes through the injected resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from smtplens.diagnose import dnsbl
from smtplens.diagnose import findings as f
from smtplens.diagnose.dns import Answer, DnsError, DnsTempError, Resolver
from smtplens.diagnose.dnsbl import DnsblZone, Listing, ListingStatus
from smtplens.diagnose.findings import Finding
from smtplens.diagnose.report import Report

__all__ = ["IpReport", "diagnose_ip", "looks_generic"]

MAX_PTR_NAMES = 10
"""PTR names checked for forward confirmation; more is a misconfiguration in itself."""

_IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NUMBER_RE = re.compile(r"[0-9]+")
_HEX_RE = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class IpReport(Report):
    """The IP check: DNSBL ``listings``, the ``ptr`` names and whether one of them is forward-confirmed."""

    ip: str
    listings: tuple[Listing, ...] = ()
    ptr: tuple[str, ...] = ()
    fcrdns: bool = False


async def diagnose_ip(ip: str, resolver: Resolver, *, zones: Sequence[DnsblZone | str] | None = None) -> IpReport:
    """Check ``ip`` against the DNS blocklists (all of the table, or ``zones``) and its reverse DNS.

    ``ValueError`` if ``ip`` is not an IP address; :class:`~smtplens.diagnose.dns.DnsTempError` when no DNS
    question got an answer at all (the check could not run).
    """
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        raise ValueError(f"not an IP address: {ip!r}") from None
    text = str(address)
    listings, ptr = await asyncio.gather(dnsbl.check_ip(text, resolver, zones), _ptr(resolver, text))
    if isinstance(ptr, DnsError) and all(_unanswered(item) for item in listings):
        raise DnsTempError(f"no DNS answer at all for {text}: {ptr}")
    names = ptr.records if isinstance(ptr, Answer) else ()
    confirmed = await _confirmed(resolver, address, names[:MAX_PTR_NAMES])
    found = [*_listing_findings(text, listings), *_ptr_findings(address, ptr, confirmed)]
    return IpReport(
        verdict=_verdict(text, listings, names, bool(confirmed)),
        findings=tuple(found),
        ip=text,
        listings=listings,
        ptr=names,
        fcrdns=bool(confirmed),
    )


def looks_generic(name: str, ip: str) -> bool:
    """True when a PTR name spells out the address, as ISPs' names for dynamic pools do.

    ``192-0-2-1.dsl.example.net``, ``1.2.0.192.pool.example.net`` and ``host-c0000201.example.net`` (hex) spell
    out 192.0.2.1; for IPv6, the last 64 bits in hex anywhere in the name count.
    """
    address = ipaddress.ip_address(ip)
    lowered = name.lower()
    if isinstance(address, ipaddress.IPv4Address):
        octets = [int(part) for part in str(address).split(".")]
        numbers = [int(part) for part in _NUMBER_RE.findall(lowered)]
        for wanted in (octets, octets[::-1]):
            if any(numbers[i : i + 4] == wanted for i in range(len(numbers) - 3)):
                return True
        return f"{int(address):08x}" in _HEX_RE.findall(lowered)
    interface = address.exploded.replace(":", "")[16:]
    return interface.strip("0") != "" and interface in re.sub(r"[^0-9a-f]", "", lowered)


# --- lookups ---------------------------------------------------------------------------------------------------


async def _ptr(resolver: Resolver, ip: str) -> Answer | DnsError:
    try:
        return await resolver.ptr(ip)
    except DnsError as exc:
        return exc


async def _confirmed(resolver: Resolver, address: _IpAddress, names: Sequence[str]) -> tuple[str, ...]:
    """The PTR names whose A (or AAAA) records hold ``address``; a failed lookup confirms nothing."""

    async def addresses(name: str) -> tuple[str, ...]:
        try:
            answer = await (resolver.a(name) if address.version == 4 else resolver.aaaa(name))
        except DnsError:
            return ()
        return answer.records

    results = await asyncio.gather(*(addresses(name) for name in names))
    return tuple(name for name, found in zip(names, results, strict=True) if any(_same(address, r) for r in found))


def _same(address: _IpAddress, text: str) -> bool:
    try:
        return ipaddress.ip_address(text.strip()) == address
    except ValueError:
        return False


def _unanswered(listing: Listing) -> bool:
    """A zone that could not be asked (no answer at all), as opposed to one that answered with an error code."""
    return listing.status is ListingStatus.ERROR and not listing.answers and bool(listing.query)


# --- findings --------------------------------------------------------------------------------------------------


def _listing_findings(ip: str, listings: Sequence[Listing]) -> list[Finding]:
    out: list[Finding] = []
    for item in listings:
        if item.listed:
            out.append(_listed(ip, item))
        elif item.status is ListingStatus.ERROR and not item.query:
            out.append(
                f.info(
                    "dnsbl.not_queried",
                    item.message,
                    "Use a list that covers this address family to check this address.",
                )
            )
        elif item.status is ListingStatus.ERROR and item.answers:
            out.append(
                f.warning(
                    "dnsbl.refused",
                    f"{item.name}: the list refused the query (public resolver or quota): use your own resolver. "
                    f"It answered {', '.join(item.answers)} ({'; '.join(_meaning(m) for m in item.meanings)}); "
                    "this says nothing about the address.",
                    f"Run the check with --dns pointing at a resolver of your own that queries {item.zone} "
                    "directly, or use the operator's paid query service.",
                )
            )
        elif item.status is ListingStatus.ERROR:
            out.append(
                f.warning(
                    "dnsbl.no_answer",
                    f"{item.name} gave no answer, so it is unknown whether {ip} is listed there ({item.message})",
                    f"Check that your resolver can reach {item.zone}; some lists answer only registered "
                    "resolvers, so use your own resolver or ask again later.",
                )
            )
    return out


def _listed(ip: str, item: Listing) -> Finding:
    parts = [f"{ip} is listed on {item.name} ({item.zone}): {'; '.join(_meaning(m) for m in item.meanings)}."]
    if item.txt:
        parts.append(f"The list says: {' / '.join(item.txt)}.")
    if item.delist_url:
        parts.append(f"Delisting: {item.delist_url}")
    fix = "Find and stop what caused the listing (a compromised account or host, an open relay, a bad list), "
    fix += f"then request removal at {item.delist_url}." if item.delist_url else "then ask the list's operator."
    return f.error("dnsbl.listed", " ".join(parts), fix)


def _ptr_findings(address: _IpAddress, ptr: Answer | DnsError, confirmed: Sequence[str]) -> list[Finding]:
    ip = str(address)
    if isinstance(ptr, DnsError):
        return [
            f.warning(
                "ptr.lookup_failed",
                f"The reverse DNS lookup of {ip} failed ({ptr}); receivers that cannot resolve it may reject mail.",
                "Check that the reverse zone's name servers answer, then run the check again.",
            )
        ]
    if ptr.void:
        return [
            f.error(
                "ptr.missing",
                f"No reverse DNS: {ip} has no PTR record; many receivers reject or distrust mail from such addresses.",
                f"Ask whoever controls the address block (hosting provider or ISP) to set a PTR record for {ip} "
                "naming the mail server's host name, and give that name an address record pointing back.",
            )
        ]
    out: list[Finding] = []
    names = ptr.records
    if len(names) > 1:
        out.append(
            f.info(
                "ptr.several",
                f"{ip} has {len(names)} PTR names ({', '.join(names)}); receivers may look at any one of them.",
                "Keep one PTR record that names the mail server.",
            )
        )
    if not confirmed:
        shown = ", ".join(names[:MAX_PTR_NAMES])
        record = "A" if address.version == 4 else "AAAA"
        out.append(
            f.warning(
                "ptr.not_confirmed",
                f"Reverse DNS is not forward-confirmed: no PTR name of {ip} ({shown}) has an {record} record "
                f"holding {ip}.",
                f"Add an {record} record for {names[0]} pointing to {ip}, or change the PTR to a name that does.",
            )
        )
    for name in names[:MAX_PTR_NAMES]:
        if looks_generic(name, ip):
            out.append(
                f.info(
                    "ptr.generic",
                    f"The PTR name {name} spells out the address, like an ISP's name for a dynamic address; "
                    "some receivers score such names as end-user connections.",
                    f"Set the PTR of {ip} to the mail server's own name (for example mail.<your domain>).",
                )
            )
    return out


def _meaning(text: str) -> str:
    """``"127.0.0.2 = SBL: ..."`` without the answer address."""
    return text.partition(" = ")[2] or text


# --- verdict ---------------------------------------------------------------------------------------------------


def _verdict(ip: str, listings: Sequence[Listing], names: Sequence[str], confirmed: bool) -> str:
    listed = [item for item in listings if item.listed]
    unknown = sum(1 for item in listings if item.error)
    asked = len(listings)
    if listed:
        head = f"{ip} is listed on {len(listed)} of {asked} blocklists: " + ", ".join(
            _short_name(item) for item in listed
        )
    elif asked:
        head = f"{ip} is listed on none of {asked} blocklists"
    else:
        head = f"{ip}: no blocklist asked"
    if unknown:
        head += f" ({unknown} gave no usable answer)"
    if not names:
        tail = "no reverse DNS"
    else:
        tail = f"reverse DNS {names[0]}" + (", forward-confirmed" if confirmed else ", not forward-confirmed")
    return f"{head}; {tail}"


def _short_name(item: Listing) -> str:
    tags = []
    for meaning in item.meanings:
        label, colon, _ = _meaning(meaning).partition(":")
        if colon and len(label) <= 24 and label not in tags:
            tags.append(label)
    return f"{item.name} ({', '.join(tags)})" if tags else item.name
