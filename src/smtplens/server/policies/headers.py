"""The header section of a received message, read tolerantly, and its author (RFC 5322 section 3.6.2).

Pure helpers shared by the content, DKIM and DMARC policies. The stdlib parser in its ``compat32`` mode never
raises on bad input: a line that is not a header field ends the header section, as in mail clients. The author
is the one address of the one From field; :func:`author` says why there is none when that is not the case
(RFC 7489 section 6.6.1 leaves such messages to local policy).
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import re
from dataclasses import dataclass
from email.message import Message

__all__ = ["Author", "author", "header_fields"]

_DOMAIN = re.compile(r"[^\s\x00-\x1f\x7f()<>@,;:\\\"\[\]]+")  # no space, control or RFC 5322 special


def header_fields(message: bytes) -> Message:
    """The header fields of ``message`` (its body is not parsed)."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    return parser.parsebytes(message)


@dataclass(frozen=True, slots=True)
class Author:
    """The author's address and domain (lower case), or ``problem`` saying why there is no single author."""

    address: str | None
    domain: str | None
    problem: str | None = None


def author(headers: Message) -> Author:
    """The single From address of the header fields, or the problem with them."""
    fields = headers.get_all("From") or []
    if not fields:
        return Author(None, None, "the message has no From header field")
    if len(fields) > 1:
        return Author(None, None, f"the message has {len(fields)} From header fields")
    addresses = [address for _, address in email.utils.getaddresses([str(fields[0])]) if address]
    if len(addresses) != 1:
        return Author(None, None, f"the From header field holds {len(addresses) or 'no'} addresses, not one")
    address = addresses[0]
    local, at, domain = address.rpartition("@")
    domain = domain.strip().rstrip(".").lower()
    if not at or not local or not _DOMAIN.fullmatch(domain) or "." not in domain:
        return Author(None, None, f"the From address {address!r} has no valid domain")
    return Author(address, domain)
