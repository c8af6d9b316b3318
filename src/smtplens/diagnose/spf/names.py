"""Domain names and IP addresses as SPF sees them (RFC 7208 sections 4.3, 5, 7.3 and 7.4)."""

from __future__ import annotations

import ipaddress

__all__ = ["ClientIp", "client_ip", "identity_problem", "ip_macro", "name_problem", "truncate"]

ClientIp = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_NAME = 253
"""The longest domain name in dotted text form, without the trailing dot."""
MAX_LABEL = 63


def client_ip(ip: str | ClientIp) -> ClientIp:
    """The address to check; an IPv4-mapped IPv6 address is its IPv4 address (section 5, last paragraph).

    Raises ValueError for text that is not an IP address.
    """
    address = ipaddress.ip_address(ip.strip() if isinstance(ip, str) else ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def name_problem(name: str) -> str | None:
    """Why a name cannot be queried (empty or over-long label, too long), or None (RFC 1035 limits)."""
    bare = name[:-1] if name.endswith(".") else name
    if not bare:
        return "the domain name is empty"
    if len(bare) > MAX_NAME:
        return f"{name!r} is longer than {MAX_NAME} characters"
    for label in bare.split("."):
        if not label:
            return f"{name!r} has an empty label"
        if len(label) > MAX_LABEL:
            return f"{name!r} has a label longer than {MAX_LABEL} characters"
    return None


def identity_problem(domain: str) -> str | None:
    """Why ``domain`` is not a domain check_host() can evaluate (section 4.3: the result is then none)."""
    bare = domain[:-1] if domain.endswith(".") else domain
    if bare.startswith("["):
        return f"{domain!r} is an address literal, not a domain name"
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in bare):
        return f"{domain!r} contains characters that are not allowed in a domain name"
    problem = name_problem(domain)
    if problem:
        return problem
    labels = bare.split(".")
    if len(labels) < 2:
        return f"{domain!r} is not a fully qualified (multi-label) domain name"
    if labels[-1].isdigit():
        return f"{domain!r} is an IP address, not a domain name"
    return None


def truncate(name: str) -> str:
    """Drop left-hand labels until the name fits in 253 characters (section 7.3, last paragraph)."""
    while len(name) > MAX_NAME and "." in name:
        name = name.split(".", 1)[1]
    return name


def ip_macro(ip: ClientIp) -> str:
    """``%{i}``: the dotted quad, or the 32 nibbles of an IPv6 address separated by dots (section 7.3)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))
