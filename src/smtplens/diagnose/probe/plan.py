"""Where to connect: the target's MX hosts in preference order (RFC 5321 section 5.1), the domain itself when it
has no MX (the implicit MX), nothing for a null MX (RFC 7505), and the addresses of each host."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from smtplens.diagnose import findings as f
from smtplens.diagnose.dns import DnsError, Resolver
from smtplens.diagnose.findings import Finding
from smtplens.diagnose.probe.target import Target
from smtplens.errors import SmtplensError

__all__ = ["Plan", "ProbeError", "make_plan"]


class ProbeError(SmtplensError):
    """The probe could not run at all (no DNS answer for the target)."""


@dataclass(frozen=True, slots=True)
class Plan:
    mx: tuple[tuple[int, str], ...] = ()
    null_mx: bool = False
    implicit_mx: bool = False
    hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    findings: tuple[Finding, ...] = ()


async def make_plan(target: Target, resolver: Resolver, families: tuple[int, ...]) -> Plan:
    """The hosts to try with their addresses (of the given IP versions); :class:`ProbeError` without DNS."""
    if target.kind == "ip":
        return Plan(hosts=((target.host, (target.host,)),))
    try:
        if target.kind == "host":
            return Plan(hosts=((target.host, await _addresses(resolver, target.host, families)),))
        answer = await resolver.mx(target.host)
    except DnsError as exc:
        raise ProbeError(f"could not look up {target.host}: {exc}") from exc
    domain = target.host
    if answer.nxdomain:
        return Plan(
            findings=(
                f.error(
                    "probe.nxdomain",
                    f"the domain {domain} does not exist (NXDOMAIN)",
                    "Check the spelling of the domain.",
                ),
            )
        )
    mx = _parse_mx(answer.records)
    findings: list[Finding] = []
    if mx and all(host == "" for _, host in mx):
        return Plan(mx=tuple(mx), null_mx=True)
    if any(host == "" for _, host in mx):
        findings.append(
            f.warning(
                "probe.null_mx_mixed",
                f"{domain} publishes a null MX beside other MX records",
                "A null MX (RFC 7505) must be the only MX record; remove it or the others.",
            )
        )
        mx = [item for item in mx if item[1]]
    implicit = not mx
    names = [domain] if implicit else list(dict.fromkeys(host for _, host in mx))
    results = await asyncio.gather(*(_addresses(resolver, name, families) for name in names), return_exceptions=True)
    hosts: list[tuple[str, tuple[str, ...]]] = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, DnsError):
            findings.append(
                f.warning(
                    "probe.mx_lookup_failed",
                    f"the addresses of {name} could not be looked up: {result}",
                    "Retry later; if it persists, check the DNS servers of that name.",
                )
            )
        elif isinstance(result, BaseException):
            raise result
        elif not result:
            if not implicit:
                findings.append(
                    f.warning(
                        "probe.mx_no_address",
                        f"the MX host {name} has no usable address",
                        "Give the MX host an A or AAAA record, or remove the MX record.",
                    )
                )
        else:
            hosts.append((name, result))
    return Plan(mx=tuple(mx), implicit_mx=implicit, hosts=tuple(hosts), findings=tuple(findings))


async def _addresses(resolver: Resolver, host: str, families: tuple[int, ...]) -> tuple[str, ...]:
    """IPv4 addresses, then IPv6, of ``host``; DnsError passes through."""
    found: list[str] = []
    if 4 in families:
        found += (await resolver.a(host)).records
    if 6 in families:
        found += (await resolver.aaaa(host)).records
    return tuple(found)


def _parse_mx(records: Sequence[str]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for record in records:
        parts = record.split()
        if parts and parts[0].isdigit():
            out.append((int(parts[0]), parts[1].rstrip(".").lower() if len(parts) > 1 else ""))
    return sorted(out, key=lambda item: item[0])  # stable: equal preferences keep the answer's order
