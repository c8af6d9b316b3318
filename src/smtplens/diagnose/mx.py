"""The MX part of the domain check: the MX records (RFC 5321 section 5.1), the null MX (RFC 7505), the implicit MX
of a domain without MX records, and the hosts the records name (their addresses, and whether they are aliases)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from smtplens.diagnose import findings as f
from smtplens.diagnose._lookup import attempt, lookup_failed
from smtplens.diagnose.dns import Answer, DnsError, Resolver
from smtplens.diagnose.findings import Finding

__all__ = ["MxHost", "MxPart", "lookup_mx"]


@dataclass(frozen=True, slots=True)
class MxHost:
    """One MX host as found: its addresses (A and AAAA) and the CNAME target when the name is an alias."""

    preference: int
    host: str
    addresses: tuple[str, ...] = ()
    cname: str | None = None


@dataclass(frozen=True, slots=True)
class MxPart:
    """What the MX lookup found: the records by preference, the hosts they name, and the findings."""

    records: tuple[tuple[int, str], ...] = ()
    null_mx: bool = False
    hosts: tuple[MxHost, ...] = ()
    findings: tuple[Finding, ...] = ()


async def lookup_mx(domain: str, resolver: Resolver) -> MxPart:
    """The MX records of ``domain`` and their hosts; DnsError when the MX lookup itself fails."""
    answer = await resolver.mx(domain)
    records, bad = _parse_mx(answer.records)
    out = [
        f.warning(
            "mx.malformed",
            f"MX record {text!r} of {domain} could not be read.",
            "Publish MX records as 'PREFERENCE HOST'.",
        )
        for text in bad
    ]
    if answer.nxdomain:
        out.append(
            f.error(
                "domain.nxdomain",
                f"{domain} does not exist in DNS (NXDOMAIN): it can neither receive mail nor pass any check.",
                f"Check the spelling, or register {domain} and publish its records.",
            )
        )
        return MxPart(findings=tuple(out))
    null = [item for item in records if not item[1]]
    if null:
        out += _null_mx_findings(domain, records)
        return MxPart(records, True, findings=tuple(out))
    if not records:
        out += await _implicit_mx(domain, resolver)
        return MxPart(findings=tuple(out))
    hosts = await asyncio.gather(*(_mx_host(preference, host, resolver) for preference, host in records))
    for _, problems in hosts:
        out += problems
    return MxPart(records, False, tuple(host for host, _ in hosts), tuple(out))


def _parse_mx(texts: Sequence[str]) -> tuple[tuple[tuple[int, str], ...], list[str]]:
    """``(preference, host)`` sorted by preference; the null MX's host is ``""``. Also the unreadable records."""
    records: list[tuple[int, str]] = []
    bad: list[str] = []
    for text in texts:
        preference, _, host = text.strip().partition(" ")
        if not preference.isdigit():
            bad.append(text)
            continue
        records.append((int(preference), host.strip().rstrip(".").lower()))
    return tuple(sorted(records)), bad


def _null_mx_findings(domain: str, records: Sequence[tuple[int, str]]) -> list[Finding]:
    if len(records) > 1:
        return [
            f.error(
                "mx.null_mixed",
                f"{domain} publishes a null MX ('0 .') together with other MX records; RFC 7505 section 3 forbids "
                "this and senders cannot tell whether the domain accepts mail.",
                "Remove the null MX if the domain receives mail, or remove the other MX records if it does not.",
            )
        ]
    out = [
        f.info(
            "mx.null",
            f"{domain} publishes a null MX (RFC 7505): it accepts no mail, and senders fail at once with 556 "
            "(5.1.10) instead of retrying.",
            "If the domain should receive mail, replace the null MX with MX records naming your mail servers.",
        )
    ]
    if records[0][0] != 0:
        out.append(
            f.warning(
                "mx.null_preference",
                f"The null MX of {domain} has preference {records[0][0]}; RFC 7505 section 3 requires 0.",
                "Publish the null MX as '0 .'.",
            )
        )
    return out


async def _implicit_mx(domain: str, resolver: Resolver) -> list[Finding]:
    answers = await asyncio.gather(attempt(resolver.a(domain)), attempt(resolver.aaaa(domain)))
    addresses = [r for answer in answers if isinstance(answer, Answer) for r in answer.records]
    if addresses:
        return [
            f.info(
                "mx.implicit",
                f"{domain} has no MX record; senders deliver to its own address ({', '.join(addresses)}), the "
                "implicit MX of RFC 5321 section 5.1.",
                f"Publish an MX record for {domain} naming the mail server, or a null MX ('0 .') if it receives "
                "no mail.",
            )
        ]
    if all(isinstance(answer, DnsError) for answer in answers):
        return [lookup_failed("mx", f"the addresses of {domain} (it has no MX)", _first_error(answers))]
    return [
        f.error(
            "mx.none",
            f"{domain} has no MX record and no A/AAAA record: mail to it cannot be delivered.",
            f"Publish MX records naming your mail servers, or a null MX ('0 .') to say {domain} receives no mail.",
        )
    ]


async def _mx_host(preference: int, host: str, resolver: Resolver) -> tuple[MxHost, list[Finding]]:
    literal = _ip_literal(host)
    if literal is not None:
        problem = f.warning(
            "mx.ip_literal",
            f"The MX record '{preference} {host}' names an IP address, not a host name; an MX must name a host "
            "(RFC 5321 section 5.1) and many senders ignore it.",
            f"Give {literal} a host name (an A/AAAA record) and name that host in the MX record.",
        )
        return MxHost(preference, host), [problem]
    answers = await asyncio.gather(
        attempt(resolver.a(host)), attempt(resolver.aaaa(host)), attempt(resolver.cname(host))
    )
    addresses = tuple(r for answer in answers[:2] if isinstance(answer, Answer) for r in answer.records)
    alias = answers[2]
    cname = alias.records[0].rstrip(".") if isinstance(alias, Answer) and alias.records else None
    out: list[Finding] = []
    if cname:
        out.append(
            f.warning(
                "mx.cname",
                f"The MX host {host} is an alias (CNAME) of {cname}; an MX must name a host's own name "
                "(RFC 2181 section 10.3), and some senders refuse aliases.",
                f"Name {cname} in the MX record instead of {host}.",
            )
        )
    if not addresses:
        if all(isinstance(answer, DnsError) for answer in answers[:2]):
            out.append(lookup_failed("mx", f"the addresses of MX host {host}", _first_error(answers[:2])))
        else:
            out.append(
                f.error(
                    "mx.host_no_address",
                    f"The MX host {host} has no A or AAAA record; senders cannot deliver to it.",
                    f"Publish an A (and AAAA) record for {host}, or remove it from the MX records.",
                )
            )
    return MxHost(preference, host, addresses, cname), out


def _ip_literal(host: str) -> str | None:
    bare = host.strip("[]")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return None


def _first_error(answers: Sequence[Answer | DnsError]) -> DnsError:
    return next((item for item in answers if isinstance(item, DnsError)), DnsError("no answer"))
