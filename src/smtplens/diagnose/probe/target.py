"""The probe's target: ``HOST``, ``HOST:PORT``, ``[IPv6]:PORT``, an IP address, a mail domain or ``user@domain``.

:func:`parse_target` turns the text into a :class:`Target` or raises :class:`ProbeInputError` saying what is
wrong with it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from smtplens.errors import SmtplensError

__all__ = ["ProbeInputError", "Target", "ip_or_none", "parse_target"]

_LABEL_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


class ProbeInputError(SmtplensError, ValueError):
    """A target, address or option given to :func:`probe` is not usable; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed target: ``kind`` is ``ip`` (an address), ``host`` (a name with a port: no MX lookup) or
    ``domain`` (a mail domain: MX lookup)."""

    text: str
    host: str
    port: int | None
    kind: str


def parse_target(text: str) -> Target:
    """Parse ``HOST``, ``HOST:PORT``, ``[IPv6]:PORT``, an IP address, a domain or ``user@domain``."""
    raw = text.strip()
    if not raw:
        raise ProbeInputError("the target is empty; give a host, HOST:PORT, [IPv6]:PORT or a mail domain")
    if raw.startswith("["):
        inner, sep, rest = raw[1:].partition("]")
        if not sep:
            raise ProbeInputError(f"{text!r}: a '[' without its closing ']'")
        if inner.lower().startswith("ipv6:"):  # the address literal form of RFC 5321 section 4.1.3
            inner = inner[5:]
        address = ip_or_none(inner)
        if address is None:
            raise ProbeInputError(f"{text!r}: {inner!r} in brackets is not an IP address")
        if rest and not rest.startswith(":"):
            raise ProbeInputError(f"{text!r}: expected ':PORT' after the ']'")
        return Target(raw, address, _port(rest[1:], text) if rest else None, "ip")
    address = ip_or_none(raw)
    if address is not None:
        return Target(raw, address, None, "ip")
    if raw.count(":") > 1:
        raise ProbeInputError(f"{text!r}: write an IPv6 address with a port in brackets, like [2001:db8::1]:25")
    if ":" in raw:
        host, _, port_text = raw.partition(":")
        port = _port(port_text, text)
        address = ip_or_none(host)
        if address is not None:
            return Target(raw, address, port, "ip")
        return Target(raw, _domain(host, text), port, "host")
    if "@" in raw:
        raw = raw.rsplit("@", 1)[1]
    return Target(text.strip(), _domain(raw, text), None, "domain")


def ip_or_none(text: str) -> str | None:
    """``text`` as a normalised IP address, or None when it is not one."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _port(text: str, target: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ProbeInputError(f"{target!r}: {text!r} is not a port number (1-65535)")
    return int(text)


def _domain(text: str, target: str) -> str:
    name = text.rstrip(".")
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError as exc:
        raise ProbeInputError(f"{target!r}: not a valid domain name ({exc})") from exc
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise ProbeInputError(f"{target!r}: not a valid host or domain name")
    return name.lower()
