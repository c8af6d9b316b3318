"""DNS blocklists: the zone table (``dnsbl_zones.toml``), query names, answer interpretation and an IP check.

The table is data: each zone with its operator, pages, the operator's documentation and the meaning of each
return code. :func:`interpret` turns the A records of one query into a :class:`Listing` (listed, not listed or
error) without touching the network; :func:`check_ip` asks an injected resolver about every IP zone at once.
Error answers (Spamhaus's 127.255.255.x, URIBL's 127.0.0.1, anything outside 127.0.0.0/8) are never reported as
listings: a refused query says nothing about the address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from smtplens.diagnose.dns import Answer, DnsError, Resolver
from smtplens.knowledge import schema

__all__ = [
    "DnsblZone",
    "Listing",
    "ListingStatus",
    "ReturnCode",
    "check_ip",
    "interpret",
    "load_zones",
    "query_name",
    "reverse_ip",
    "zone",
    "zones",
]

TABLE_FILE = "dnsbl_zones.toml"
KINDS = ("ip4", "ip6", "domain")
CODE_STATUSES = ("listed", "error", "neutral")
MATCHES = ("exact", "bitmask")
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_BITMASK_BASE = ipaddress.IPv4Network("127.0.0.0/24")
_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


class ListingStatus(StrEnum):
    LISTED = "listed"
    NOT_LISTED = "not_listed"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ReturnCode:
    """One documented answer of a zone: ``status`` is ``listed``, ``error`` (never a listing) or ``neutral``."""

    answer: str
    status: str
    meaning: str


@dataclass(frozen=True, slots=True)
class DnsblZone:
    """One blocklist zone from the table, with the source of its facts."""

    zone: str
    name: str
    kinds: tuple[str, ...]
    operator: str
    url: str
    delist_url: str
    source: str
    match: str
    codes: tuple[ReturnCode, ...]
    note: str | None = None

    def code(self, answer: str) -> ReturnCode | None:
        for item in self.codes:
            if item.answer == answer:
                return item
        return None

    def supports(self, kind: str) -> bool:
        return kind in self.kinds


@dataclass(frozen=True, slots=True)
class Listing:
    """The verdict of one zone on one address or domain.

    ``answers`` are the A records received, ``meanings`` one sentence per answer (or per bit of a bitmask
    answer), ``txt`` the zone's TXT text if it was fetched. ``message`` sums it up in one sentence.
    """

    zone: str
    name: str
    query: str
    status: ListingStatus
    answers: tuple[str, ...] = ()
    meanings: tuple[str, ...] = ()
    txt: tuple[str, ...] = ()
    delist_url: str | None = None
    message: str = ""

    @property
    def listed(self) -> bool:
        return self.status is ListingStatus.LISTED

    @property
    def error(self) -> bool:
        return self.status is ListingStatus.ERROR


# --- the table -------------------------------------------------------------------------------------------------


def load_zones(node: Traversable | None = None, label: str = TABLE_FILE) -> tuple[DnsblZone, ...]:
    """Read and validate a zone table; a broken table raises ``KnowledgeError`` naming file, zone and field."""
    if node is None:
        node = resources.files("smtplens.diagnose") / TABLE_FILE
    data = schema.read_toml(node, label)
    top = schema.Where(label)
    for key in data:
        if key != "zone":
            raise top.error(key, "unknown top-level key (expected only [[zone]] tables)")
    out: list[DnsblZone] = []
    seen: set[str] = set()
    for index, raw in enumerate(schema.tables(top, data, "zone")):
        name = schema.req_text(schema.Where(label, f"zone[{index}]"), raw, "zone").lower().rstrip(".")
        where = schema.Where(label, name)
        item = _zone(where, name, raw)
        if name in seen:
            raise where.error("zone", "listed twice")
        seen.add(name)
        out.append(item)
    if not out:
        raise top.error("zone", "the table has no zones")
    return tuple(out)


_ZONE_FIELDS = ("zone", "name", "kind", "operator", "url", "delist_url", "source", "match", "note", "code")


def _zone(where: schema.Where, name: str, raw: Mapping[str, object]) -> DnsblZone:
    for key in raw:
        if key not in _ZONE_FIELDS:
            raise where.error(key, "unknown field")
    if not all(_LABEL_RE.fullmatch(label) for label in name.split(".")) or "." not in name:
        raise where.error("zone", f"not a DNS zone name: {name!r}")
    kinds = _kinds(where, raw)
    pages = {}
    for key in ("url", "delist_url", "source"):
        value = schema.req_text(where, raw, key)
        if not value.startswith("https://"):
            raise where.error(key, f"not an https URL: {value!r}")
        pages[key] = value
    match = schema.req_text(where, raw, "match")
    if match not in MATCHES:
        raise where.error("match", f"must be one of {', '.join(MATCHES)}, not {match!r}")
    codes = _codes(where, raw, match)
    return DnsblZone(
        zone=name,
        name=schema.req_text(where, raw, "name"),
        kinds=kinds,
        operator=schema.req_text(where, raw, "operator"),
        url=pages["url"],
        delist_url=pages["delist_url"],
        source=pages["source"],
        match=match,
        codes=codes,
        note=schema.text(where, raw, "note", required=False) or None,
    )


def _kinds(where: schema.Where, raw: Mapping[str, object]) -> tuple[str, ...]:
    value = raw.get("kind")
    kinds = [value] if isinstance(value, str) else schema.text_list(where, raw, "kind")
    if not kinds:
        raise where.error("kind", "is empty")
    for kind in kinds:
        if kind not in KINDS:
            raise where.error("kind", f"must be among {', '.join(KINDS)}, not {kind!r}")
    if "domain" in kinds and len(kinds) > 1:
        raise where.error("kind", "a zone lists either domains or IP addresses, not both")
    return tuple(kinds)


def _codes(where: schema.Where, raw: Mapping[str, object], match: str) -> tuple[ReturnCode, ...]:
    codes: list[ReturnCode] = []
    seen: set[str] = set()
    for index, item in enumerate(schema.tables(where, raw, "code")):
        field_name = f"code[{index}]"
        for key in item:
            if key not in ("answer", "status", "meaning"):
                raise where.error(f"{field_name}.{key}", "unknown field")
        answer = schema.req_text(where, item, "answer")
        try:
            address = ipaddress.IPv4Address(answer)
        except ValueError:
            raise where.error(f"{field_name}.answer", f"not an IPv4 address: {answer!r}") from None
        if address not in _LOOPBACK:
            raise where.error(f"{field_name}.answer", f"{answer} is not in 127.0.0.0/8")
        if answer in seen:
            raise where.error(f"{field_name}.answer", f"{answer} is listed twice")
        seen.add(answer)
        status = schema.req_text(where, item, "status")
        if status not in CODE_STATUSES:
            raise where.error(f"{field_name}.status", f"must be one of {', '.join(CODE_STATUSES)}, not {status!r}")
        if match == "bitmask" and status != "error":
            last = int(address) & 0xFF
            if address not in _BITMASK_BASE or last < 2 or last & (last - 1):
                raise where.error(f"{field_name}.answer", f"{answer} is not a single bit of 127.0.0.x")
        codes.append(ReturnCode(answer, status, schema.req_text(where, item, "meaning")))
    if not any(code.status == "listed" for code in codes):
        raise where.error("code", "no return code with status 'listed'")
    return tuple(codes)


@cache
def zones() -> tuple[DnsblZone, ...]:
    """The packaged zone table (read once)."""
    return load_zones()


def zone(name: str) -> DnsblZone:
    """The packaged zone called ``name``; ``KeyError`` if smtplens does not know it."""
    wanted = name.lower().rstrip(".")
    for item in zones():
        if item.zone == wanted:
            return item
    raise KeyError(f"unknown DNSBL zone {name!r}")


# --- query names -----------------------------------------------------------------------------------------------


def reverse_ip(ip: str) -> str:
    """The DNSBL form of an address (RFC 5782 section 2.1 and 2.4): reversed octets or reversed nibbles."""
    address = ipaddress.ip_address(ip.strip())
    if isinstance(address, ipaddress.IPv4Address):
        return ".".join(reversed(str(address).split(".")))
    return ".".join(reversed(address.exploded.replace(":", "")))


def query_name(subject: str, dnsbl: DnsblZone | str) -> str:
    """The name to query for ``subject`` (an IPv4 or IPv6 address, or a domain) in ``dnsbl``.

    ``ValueError`` if the zone does not list that kind of subject, or the domain is not a valid name.
    """
    target = _as_zone(dnsbl)
    kind, key = _subject(subject)
    if not target.supports(kind):
        raise ValueError(f"{target.zone} does not list {_KIND_WORDS[kind]} (it lists {', '.join(target.kinds)})")
    return f"{key}.{target.zone}"


_KIND_WORDS = {"ip4": "IPv4 addresses", "ip6": "IPv6 addresses", "domain": "domains"}


def _subject(subject: str) -> tuple[str, str]:
    text = subject.strip().rstrip(".")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        labels = text.lower().split(".")
        if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
            raise ValueError(f"not an IP address or domain name: {subject!r}") from None
        return "domain", text.lower()
    return ("ip4" if address.version == 4 else "ip6"), reverse_ip(text)


def _as_zone(dnsbl: DnsblZone | str) -> DnsblZone:
    if isinstance(dnsbl, DnsblZone):
        return dnsbl
    try:
        return zone(dnsbl)
    except KeyError:
        name = dnsbl.lower().rstrip(".")
        # A zone outside the table: only the conventions of RFC 5782 apply.
        return DnsblZone(name, name, KINDS[:2], "unknown", "", "", "", "exact", ())


# --- interpretation --------------------------------------------------------------------------------------------


def interpret(
    dnsbl: DnsblZone | str, answers: Iterable[str] | Answer, txt: Iterable[str] = (), query: str = ""
) -> Listing:
    """What the A records ``answers`` of one query mean in ``dnsbl``: listed, not listed or error.

    An empty answer (NXDOMAIN) is ``not listed``. A documented error code, 127.0.0.1 (RFC 5782 section 5) and any
    address outside 127.0.0.0/8 (a resolver rewriting NXDOMAIN) are ``error``; a documented listing code or an
    undocumented 127.x answer is ``listed``; ``neutral`` codes (good reputation) count as not listed.
    """
    target = _as_zone(dnsbl)
    records = tuple(answers.records if isinstance(answers, Answer) else answers)
    texts = tuple(txt)
    statuses: list[str] = []
    meanings: list[str] = []
    for answer in records:
        for status, meaning in _meanings(target, answer):
            statuses.append(status)
            meanings.append(meaning)
    if "listed" in statuses:
        status = ListingStatus.LISTED
        message = f"Listed in {target.name}: " + "; ".join(
            m for s, m in zip(statuses, meanings, strict=True) if s == "listed"
        )
    elif "error" in statuses:
        status = ListingStatus.ERROR
        message = f"No usable answer from {target.name}: " + "; ".join(
            m for s, m in zip(statuses, meanings, strict=True) if s == "error"
        )
    else:
        status = ListingStatus.NOT_LISTED
        message = f"Not listed in {target.name}" + (f" ({'; '.join(meanings)})" if meanings else "")
    return Listing(
        zone=target.zone,
        name=target.name,
        query=query,
        status=status,
        answers=records,
        meanings=tuple(meanings),
        txt=texts,
        delist_url=(target.delist_url or None) if status is ListingStatus.LISTED else None,
        message=message + ".",
    )


def _meanings(target: DnsblZone, answer: str) -> list[tuple[str, str]]:
    try:
        address = ipaddress.IPv4Address(answer.strip())
    except ValueError:
        return [("error", f"{answer!r} is not an IPv4 address, so not a DNSBL answer")]
    text = str(address)
    known = target.code(text)
    if known is not None:
        return [(known.status, f"{text} = {known.meaning}")]
    if address not in _LOOPBACK:
        return [("error", f"{text} is outside 127.0.0.0/8: a resolver or network rewrote the answer, not a listing")]
    if text == "127.0.0.1":
        return [("error", "127.0.0.1 is never a listing (RFC 5782): the list refuses the query or has shut down")]
    if target.match == "bitmask" and address in _BITMASK_BASE:
        return _bits(target, text, int(address) & 0xFF)
    return [("listed", f"{text} = a return code smtplens does not know for this list")]


def _bits(target: DnsblZone, text: str, last: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for bit in range(1, 8):
        value = 1 << bit
        if last & value:
            code = target.code(f"127.0.0.{value}")
            meaning = code.meaning if code else "a list bit smtplens does not know"
            out.append(("listed", f"{text} bit {value} = {meaning}"))
    return out or [("listed", f"{text} = a return code smtplens does not know for this list")]


# --- the live check --------------------------------------------------------------------------------------------


async def check_ip(ip: str, resolver: Resolver, zones: Sequence[DnsblZone | str] | None = None) -> tuple[Listing, ...]:
    """Look ``ip`` up in every IP zone of the table (or in ``zones``), all queries at once.

    For each zone the A records are asked first; the TXT record only when the address is listed, to spare the
    lists' free-use budgets. A zone that cannot be asked (timeout, SERVFAIL) gives an ``error`` listing; a zone
    given in ``zones`` that does not list this address family gives an ``error`` listing without a query.
    ``ValueError`` if ``ip`` is not an IP address.
    """
    address = ipaddress.ip_address(ip.strip())
    kind = "ip4" if address.version == 4 else "ip6"
    if zones is None:
        targets = [item for item in _table() if item.supports(kind)]
    else:
        targets = [_as_zone(item) for item in zones]
    return tuple(await asyncio.gather(*(_check_one(target, str(address), kind, resolver) for target in targets)))


def _table() -> tuple[DnsblZone, ...]:
    return zones()


async def _check_one(target: DnsblZone, ip: str, kind: str, resolver: Resolver) -> Listing:
    if not target.supports(kind):
        return Listing(
            target.zone,
            target.name,
            "",
            ListingStatus.ERROR,
            message=f"{target.name} does not list {_KIND_WORDS[kind]}; not queried.",
        )
    name = f"{reverse_ip(ip)}.{target.zone}"
    try:
        answer = await resolver.a(name)
    except DnsError as exc:
        return Listing(
            target.zone, target.name, name, ListingStatus.ERROR, message=f"{target.name} could not be asked: {exc}."
        )
    txt: tuple[str, ...] = ()
    if answer.records:
        try:
            txt = (await resolver.txt(name)).records
        except DnsError:
            txt = ()
    return interpret(target, answer, txt, query=name)
