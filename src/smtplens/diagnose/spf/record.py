"""Parse an SPF record (RFC 7208 sections 4.5, 4.6, 5, 6 and 12) into mechanisms and modifiers.

The whole record is checked before any term is evaluated (section 4.6: syntax errors anywhere in the record
are a permerror), so :func:`parse_record` either returns a complete :class:`SpfRecord` or raises
:class:`SpfSyntaxError` naming the problem, the term and the column.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from smtplens.diagnose.spf.errors import SpfSyntaxError
from smtplens.diagnose.spf.macro import DOMAIN_LETTERS, EXPLAIN_LETTERS, Literal, Token, letters, parse_macro_string

__all__ = [
    "DNS_MECHANISMS",
    "MECHANISMS",
    "DomainSpec",
    "Mechanism",
    "Modifier",
    "Qualifier",
    "SpfRecord",
    "is_spf_record",
    "parse_domain_spec",
    "parse_record",
    "spf_records",
]

MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
"""The mechanisms of RFC 7208 section 5, in the section's order."""
DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
"""Mechanisms that query DNS and count against the limit of 10 (section 4.6.4), like the redirect modifier."""

_VERSION = "v=spf1"
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9._-]*)=(.*)", re.DOTALL)
# toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )   (section 7.1)
_TOPLABEL = re.compile(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9]")
_DUAL_CIDR = re.compile(r"(?:/([0-9]+))?(?://([0-9]+))?\Z")
_DIGITS = re.compile(r"0|[1-9][0-9]*")


class Qualifier(StrEnum):
    """The qualifier of a mechanism and the result it gives on a match (section 4.6.2)."""

    PASS = "+"
    FAIL = "-"
    SOFTFAIL = "~"
    NEUTRAL = "?"


@dataclass(frozen=True, slots=True)
class DomainSpec:
    """A domain-spec as written and its macro tokens."""

    text: str
    tokens: tuple[Token, ...]

    @property
    def letters(self) -> frozenset[str]:
        return letters(self.tokens)


@dataclass(frozen=True, slots=True)
class Mechanism:
    """A directive: qualifier and mechanism with its arguments. ``text`` is the term as written."""

    kind: str
    qualifier: Qualifier
    text: str
    position: int
    domain: DomainSpec | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    cidr4: int = 32
    cidr6: int = 128

    @property
    def queries_dns(self) -> bool:
        return self.kind in DNS_MECHANISMS

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Modifier:
    """A modifier ``name=value``; ``name`` is lower case."""

    name: str
    value: str
    text: str
    position: int

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class SpfRecord:
    """A parsed ``v=spf1`` record: mechanisms in order, the ``redirect`` and ``exp`` targets, all modifiers."""

    text: str
    mechanisms: tuple[Mechanism, ...]
    redirect: DomainSpec | None = None
    exp: DomainSpec | None = None
    modifiers: tuple[Modifier, ...] = ()

    @property
    def dns_terms(self) -> int:
        """The terms of this record that query DNS (include, a, mx, ptr, exists, redirect; section 4.6.4).

        Included and redirected records add their own when evaluated.
        """
        return sum(m.queries_dns for m in self.mechanisms) + (self.redirect is not None)

    @property
    def unknown_modifiers(self) -> tuple[Modifier, ...]:
        return tuple(m for m in self.modifiers if m.name not in ("redirect", "exp"))


def is_spf_record(text: str) -> bool:
    """True when a TXT record is an SPF record: ``v=spf1`` (any case) followed by a space or the end (4.5)."""
    return text[: len(_VERSION)].lower() == _VERSION and text[len(_VERSION) : len(_VERSION) + 1] in ("", " ")


def spf_records(txts: Iterable[str]) -> list[str]:
    """The SPF records among the TXT records of a name; other TXT records are none of SPF's business."""
    return [t for t in txts if is_spf_record(t)]


def parse_record(text: str) -> SpfRecord:
    """Parse one SPF record; raise :class:`SpfSyntaxError` on the first error anywhere in it."""
    if not is_spf_record(text):
        raise SpfSyntaxError("an SPF record starts with 'v=spf1' followed by a space or the end", text, 0)
    for i, ch in enumerate(text):
        if not 0x20 <= ord(ch) <= 0x7E:
            # Section 3.1 (7-bit ASCII) and 4.6.1 (terms are separated by spaces only).
            what = "non-ASCII" if ord(ch) > 0x7F else "control"
            raise SpfSyntaxError(f"{what} character {ch!r} in the record", text, i)
    mechanisms: list[Mechanism] = []
    modifiers: list[Modifier] = []
    redirect: DomainSpec | None = None
    exp: DomainSpec | None = None
    for match in re.finditer(r"[^ ]+", text[len(_VERSION) :]):
        term, pos = match.group(), match.start() + len(_VERSION)
        try:
            parsed = _term(term, pos)
        except SpfSyntaxError as exc:
            raise SpfSyntaxError(exc.problem, text, pos + (exc.position or 0), term) from None
        if isinstance(parsed, Mechanism):
            mechanisms.append(parsed)
            continue
        name, value = parsed
        modifier = Modifier(name, value, term, pos)
        if name in ("redirect", "exp"):
            # Section 6: these two MUST NOT appear more than once each.
            if any(m.name == name for m in modifiers):
                raise SpfSyntaxError(f"the {name!r} modifier appears more than once", text, pos, term)
            spec = _modifier_domain_spec(term, text, pos, name, value)
            if name == "redirect":
                redirect = spec
            else:
                exp = spec
        modifiers.append(modifier)
    return SpfRecord(text, tuple(mechanisms), redirect, exp, tuple(modifiers))


def _modifier_domain_spec(term: str, record: str, pos: int, name: str, value: str) -> DomainSpec:
    offset = len(name) + 1
    if not value:
        raise SpfSyntaxError(f"{name}= needs a domain-spec", record, pos + offset, term)
    try:
        return parse_domain_spec(value)
    except SpfSyntaxError as exc:
        raise SpfSyntaxError(exc.problem, record, pos + offset + (exc.position or 0), term) from None


def _term(term: str, pos: int) -> Mechanism | tuple[str, str]:
    """A mechanism's parts, or a modifier's ``(name, value)``; errors carry the offset within ``term``."""
    modifier = _MODIFIER.fullmatch(term)
    if modifier:
        name, value = modifier.groups()
        if name.lower() not in ("redirect", "exp"):
            # unknown-modifier = name "=" macro-string: the value must still be a valid macro string.
            _macro(term, len(name) + 1, value, EXPLAIN_LETTERS)
        return name.lower(), value
    qualifier = Qualifier.PASS
    start = 0
    if term[0] in "+-~?":
        qualifier = Qualifier(term[0])
        start = 1
    name = re.match(r"[^:/]*", term[start:])
    assert name is not None
    kind = name.group().lower()
    rest_at = start + name.end()
    rest = term[rest_at:]
    if kind not in MECHANISMS:
        if "=" in name.group():
            problem = f"{term!r} is not a valid modifier: a modifier name starts with a letter"
        elif not kind:
            problem = "a mechanism name is missing"
        else:
            problem = f"unknown mechanism {name.group()!r}"
        raise SpfSyntaxError(problem, term, start)
    if kind == "all":
        if rest:
            raise SpfSyntaxError("'all' takes no argument", term, rest_at)
        return Mechanism(kind, qualifier, term, pos)
    if kind in ("include", "exists", "ptr"):
        return Mechanism(kind, qualifier, term, pos, _target_only(term, kind, rest, rest_at))
    if kind in ("a", "mx"):
        domain, cidr4, cidr6 = _target_and_cidr(term, kind, rest, rest_at)
        return Mechanism(kind, qualifier, term, pos, domain, cidr4=cidr4, cidr6=cidr6)
    return Mechanism(kind, qualifier, term, pos, network=_network(term, kind, rest, rest_at))


def _target_only(term: str, kind: str, rest: str, at: int) -> DomainSpec | None:
    if not rest:
        if kind == "ptr":
            return None
        raise SpfSyntaxError(f"'{kind}' needs ':' and a domain-spec", term, at)
    if rest[0] != ":":
        raise SpfSyntaxError(f"'{kind}' takes no CIDR length", term, at)
    if len(rest) == 1:
        raise SpfSyntaxError(f"'{kind}:' has an empty domain-spec", term, at + 1)
    if re.search(r"/[0-9]+\Z", rest):
        raise SpfSyntaxError(f"'{kind}' takes no CIDR length", term, at + rest.rindex("/"))
    return _spec(term, at + 1, rest[1:])


def _target_and_cidr(term: str, kind: str, rest: str, at: int) -> tuple[DomainSpec | None, int, int]:
    spec_text = ""
    if rest.startswith(":"):
        cidr = _DUAL_CIDR.search(rest, 1)
        assert cidr is not None  # the pattern matches the empty string at the end
        spec_text = rest[1 : cidr.start()]
        if not spec_text:
            raise SpfSyntaxError(f"'{kind}:' has an empty domain-spec", term, at + 1)
    else:
        cidr = _DUAL_CIDR.fullmatch(rest)
        if cidr is None:
            raise SpfSyntaxError(f"malformed CIDR length {rest!r}: use /N for IPv4 and //N for IPv6", term, at)
    cidr_at = at + cidr.start()
    cidr4 = _cidr(term, cidr.group(1), 32, cidr_at)
    cidr6 = _cidr(term, cidr.group(2), 128, cidr_at)
    domain = _spec(term, at + 1, spec_text) if spec_text else None
    return domain, cidr4, cidr6


def _cidr(term: str, digits: str | None, limit: int, at: int) -> int:
    if digits is None:
        return limit
    if not _DIGITS.fullmatch(digits):
        raise SpfSyntaxError(f"CIDR length {digits!r} has a leading zero", term, at)
    value = int(digits)
    if value > limit:
        raise SpfSyntaxError(f"CIDR length {value} is larger than {limit}", term, at)
    return value


def _network(term: str, kind: str, rest: str, at: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not rest.startswith(":") or len(rest) == 1:
        raise SpfSyntaxError(f"'{kind}' needs ':' and an address", term, at)
    address, slash, length = rest[1:].partition("/")
    limit = 32 if kind == "ip4" else 128
    cidr_at = at + 1 + len(address)
    if slash and not (length.isascii() and length.isdigit()):
        raise SpfSyntaxError(f"malformed CIDR length '/{length}' ('{kind}' takes one /N)", term, cidr_at)
    cidr = _cidr(term, length if slash else None, limit, cidr_at)
    try:
        if kind == "ip4":
            if not re.fullmatch(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}", address):
                raise ValueError(address)
            parsed: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(address)
        else:
            if "%" in address or not re.fullmatch(r"[0-9A-Fa-f:.]+", address):
                raise ValueError(address)
            parsed = ipaddress.IPv6Address(address)
    except ValueError:
        version = "IPv4" if kind == "ip4" else "IPv6"
        raise SpfSyntaxError(f"{address!r} is not a complete {version} address", term, at + 1) from None
    return ipaddress.ip_network(f"{parsed}/{cidr}", strict=False)


def _spec(term: str, at: int, text: str) -> DomainSpec:
    try:
        return parse_domain_spec(text)
    except SpfSyntaxError as exc:
        raise SpfSyntaxError(exc.problem, term, at + (exc.position or 0)) from None


def _macro(term: str, at: int, text: str, allowed: frozenset[str]) -> tuple[Token, ...]:
    try:
        return parse_macro_string(text, allowed=allowed)
    except SpfSyntaxError as exc:
        raise SpfSyntaxError(exc.problem, term, at + (exc.position or 0)) from None


def parse_domain_spec(text: str) -> DomainSpec:
    """Check a domain-spec: a macro string that ends in a macro or in ``.toplabel`` (section 7.1)."""
    if not text:
        raise SpfSyntaxError("empty domain-spec", text, 0)
    tokens = parse_macro_string(text, allowed=DOMAIN_LETTERS)
    last = tokens[-1]
    if isinstance(last, Literal):
        # domain-end = ( "." toplabel [ "." ] ) / macro-expand
        end = last.text[:-1] if last.text.endswith(".") else last.text
        dot = end.rfind(".")
        top = end[dot + 1 :]
        if dot < 0 or not _TOPLABEL.fullmatch(top):
            raise SpfSyntaxError(_toplabel_problem(text, top if dot >= 0 else ""), text, len(text) - len(last.text))
    return DomainSpec(text, tokens)


def _toplabel_problem(text: str, top: str) -> str:
    if re.fullmatch(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}\.?", text):
        return f"{text!r} is an IPv4 address, not a domain: use ip4:{text.rstrip('.')}"
    if not top:
        return f"domain-spec {text!r} does not end in a macro or in '.' and a top-level label"
    if top.isdigit():
        return f"top-level label {top!r} of {text!r} is all numeric"
    return f"top-level label {top!r} of {text!r} is not a valid label"
