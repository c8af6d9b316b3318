"""Message content checks at end of data: malformed messages → ``554 5.6.0``, too big → ``552 5.3.4``.

The split with the session (docs/server-policies.md): :class:`~smtplens.server.session.Session` itself refuses
what it must see while reading, always a message over the size limit (``552 5.3.4 Error: message file too
big``) and a text line over 1000 octets (``554 5.6.0 Error: message line too long``, RFC 5321 section
4.5.3.1.6), and bare LF when ``SessionConfig.reject_bare_lf`` is set. ``ContentPolicy`` covers the rest, from
the received bytes' :class:`~smtplens.server.protocol.BodyFacts` and the header fields (stdlib parser, tolerant):

========================  ==========================================================================
check (switch)            refused when
========================  ==========================================================================
``size``                  over ``max_size`` or over ``domain_sizes[<recipient domain>]``
``nul``                   a NUL octet (RFC 5322 section 2.3 does not allow it in a message)
``bare_lf``               LF without CR (RFC 5321 section 2.3.8; Postfix 3.9's smtpd_forbid_bare_newline)
``bare_cr``               CR without LF (RFC 5322 section 2.3)
``eight_bit``             octets above 127 without ``BODY=8BITMIME``/``BINARYMIME`` or SMTPUTF8 (RFC 6152)
``line_length``           a line longer than ``max_line`` octets (when set; RFC 5322 section 2.1.1: 998)
``missing_from``          no From field (RFC 5322 section 3.6: From and Date are required)
``missing_date``          no Date field
``duplicates``            a field that may occur once occurs twice (RFC 5322 section 3.6's table)
``from_without_sender``   From with several addresses but no Sender (RFC 5322 section 3.6.2)
========================  ==========================================================================

Every check is on by default and switched off by name: ``ContentPolicy(disable={"bare_cr"})``. The replies
are in :data:`CONTENT_REPLIES`, each with its source; the first failing check answers.
"""

from __future__ import annotations

import email.utils
from collections.abc import Collection, Iterable, Mapping
from typing import ClassVar, NamedTuple

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.policies.headers import header_fields
from smtplens.server.protocol import BodyFacts, BodyType
from smtplens.server.session import Context, Envelope

__all__ = ["CHECKS", "CONTENT_REPLIES", "SINGLE_FIELDS", "ContentPolicy", "ContentReply", "content_problem"]


class ContentReply(NamedTuple):
    code: str
    enhanced: str
    text: str
    source: str


#: The reply of each check; ``{…}`` parts are filled in. Postfix's wording where Postfix has the check.
CONTENT_REPLIES: dict[str, ContentReply] = {
    "size": ContentReply("552", "5.3.4", "Error: message file too big", "Postfix smtpd, message_size_limit"),
    "size_domain": ContentReply(
        "552", "5.3.4", "Error: message file too big for {domain}", "Postfix's text, per recipient domain"
    ),
    "nul": ContentReply("554", "5.6.0", "Error: NUL character in message", "RFC 5322 section 2.3"),
    "bare_lf": ContentReply("554", "5.6.0", "Error: bare <LF> received", "Postfix 3.9 smtpd_forbid_bare_newline"),
    "bare_cr": ContentReply("554", "5.6.0", "Error: bare <CR> received", "RFC 5322 section 2.3, Postfix's shape"),
    "eight_bit": ContentReply(
        "554", "5.6.0", "Error: 8-bit data without BODY=8BITMIME", "RFC 6152 section 3; sendmail's 5.6.x, r0846"
    ),
    "line_length": ContentReply("554", "5.6.0", "Error: message line too long", "Postfix's text; RFC 5322 2.1.1"),
    "missing_from": ContentReply(
        "554", "5.6.0", "Error: message has no From: header field (RFC 5322 section 3.6)", "RFC 5322 section 3.6"
    ),
    "missing_date": ContentReply(
        "554", "5.6.0", "Error: message has no Date: header field (RFC 5322 section 3.6)", "RFC 5322 section 3.6"
    ),
    "duplicates": ContentReply(
        "554",
        "5.6.0",
        "Error: message has {count} {field}: header fields, RFC 5322 section 3.6 allows one",
        "RFC 5322 section 3.6; Gmail refuses the same (corpus reply r1015)",
    ),
    "from_without_sender": ContentReply(
        "554",
        "5.6.0",
        "Error: From: holds several addresses but there is no Sender: header field (RFC 5322 section 3.6.2)",
        "RFC 5322 section 3.6.2",
    ),
}

CHECKS = (
    "size",
    "nul",
    "bare_lf",
    "bare_cr",
    "eight_bit",
    "line_length",
    "missing_from",
    "missing_date",
    "duplicates",
    "from_without_sender",
)

#: Fields RFC 5322 section 3.6 allows at most once.
SINGLE_FIELDS = (
    "Date",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Subject",
)


def _long_line(message: bytes, limit: int) -> bool:
    return any(len(line.rstrip(b"\r")) > limit for line in message.split(b"\n"))


def content_problem(
    envelope: Envelope,
    message: bytes,
    facts: BodyFacts,
    *,
    checks: Collection[str] = CHECKS,
    max_size: int | None = None,
    domain_sizes: Mapping[str, int] | None = None,
    max_line: int | None = None,
) -> tuple[str, dict[str, object]] | None:
    """The first failing check and the values for its text, or None. Pure."""
    if "size" in checks:
        if max_size is not None and facts.size > max_size:
            return "size", {}
        for recipient in envelope.recipients:
            domain = recipient.address.rpartition("@")[2].lower()
            limit = (domain_sizes or {}).get(domain)
            if limit is not None and facts.size > limit:
                return "size_domain", {"domain": domain}
    eight_bit_ok = envelope.body is not BodyType.SEVEN_BIT or envelope.smtputf8
    simple = {
        "nul": facts.nul,
        "bare_lf": facts.bare_lf,
        "bare_cr": facts.bare_cr,
        "eight_bit": facts.eight_bit and not eight_bit_ok,
        "line_length": max_line is not None and _long_line(message, max_line),
    }
    for name, failed in simple.items():
        if failed and name in checks:
            return name, {}
    headers = header_fields(message)
    if "missing_from" in checks and headers.get_all("From") is None:
        return "missing_from", {}
    if "missing_date" in checks and headers.get_all("Date") is None:
        return "missing_date", {}
    if "duplicates" in checks:
        for field in SINGLE_FIELDS:
            count = len(headers.get_all(field) or [])
            if count > 1:
                return "duplicates", {"count": count, "field": field}
    if "from_without_sender" in checks and headers.get_all("Sender") is None:
        addresses = email.utils.getaddresses([str(value) for value in headers.get_all("From") or []])
        if len([address for _, address in addresses if address]) > 1:
            return "from_without_sender", {}
    return None


class ContentPolicy:
    """See the module docstring."""

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.END_OF_DATA})

    def __init__(
        self,
        *,
        disable: Iterable[str] = (),
        max_size: int | None = None,
        domain_sizes: Mapping[str, int] | None = None,
        max_line: int | None = None,
        name: str = "content",
    ) -> None:
        disabled = frozenset(disable)
        unknown = disabled - set(CHECKS)
        if unknown:
            raise ValueError(f"unknown content checks: {', '.join(sorted(unknown))}; known: {', '.join(CHECKS)}")
        self.name = name
        self.checks = frozenset(CHECKS) - disabled
        self.max_size = max_size
        self.domain_sizes = {domain.lower().rstrip("."): size for domain, size in (domain_sizes or {}).items()}
        self.max_line = max_line

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        if stage is not Stage.END_OF_DATA or context.message is None or context.facts is None:
            return None
        found = content_problem(
            context.envelope,
            context.message,
            context.facts,
            checks=self.checks,
            max_size=self.max_size,
            domain_sizes=self.domain_sizes,
            max_line=self.max_line,
        )
        if found is None:
            return None
        name, values = found
        reply = CONTENT_REPLIES[name]
        return Decision.reject(
            code=reply.code, enhanced=reply.enhanced, text=reply.text.format(**values), policy=self.name
        )
