"""``check domain``: can a domain receive mail, and is the mail it sends authenticated properly?

:func:`diagnose_domain` looks at the MX records (and the hosts they name), the SPF record with its whole
include/redirect tree, optionally the SPF result for one sending address, DMARC, DKIM keys of given selectors,
MTA-STS and TLS-RPT. Independent lookups run concurrently over the injected resolver. The record checks of
:mod:`~smtplens.diagnose.dmarc`, :mod:`~smtplens.diagnose.dkim`, :mod:`~smtplens.diagnose.mtasts` and
:mod:`~smtplens.diagnose.tlsrpt` supply their own findings, as do :mod:`~smtplens.diagnose.mx` and
:mod:`~smtplens.diagnose.spf.findings` for MX and SPF; this module gathers them and gives the verdict.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from smtplens.diagnose._lookup import attempt, lookup_failed
from smtplens.diagnose.dkim import DkimLookup, lookup_dkim
from smtplens.diagnose.dmarc import DmarcLookup, lookup_dmarc
from smtplens.diagnose.dns import DnsError, DnsTempError, Resolver
from smtplens.diagnose.findings import Finding, Severity
from smtplens.diagnose.mtasts import MtaStsLookup, lookup_mtasts
from smtplens.diagnose.mx import MxHost, MxPart, lookup_mx
from smtplens.diagnose.report import Report
from smtplens.diagnose.spf import SpfResult, check_host
from smtplens.diagnose.spf.findings import spf_findings, spf_result_findings
from smtplens.diagnose.spf.names import identity_problem
from smtplens.diagnose.spf.tree import NodeStatus, SpfTree, spf_tree
from smtplens.diagnose.tlsrpt import TlsRptLookup, lookup_tlsrpt

__all__ = ["DomainReport", "MxHost", "diagnose_domain"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainReport(Report):
    """The domain check; ``spf_tree`` holds the per-record details behind ``spf_lookups``/``spf_void_lookups``."""

    domain: str
    mx: tuple[tuple[int, str], ...] = ()
    null_mx: bool = False
    mx_hosts: tuple[MxHost, ...] = ()
    spf: str | None = None
    spf_lookups: int = 0
    spf_void_lookups: int = 0
    spf_tree: SpfTree | None = None
    spf_result: SpfResult | None = None
    dmarc: DmarcLookup | None = None
    dkim: tuple[DkimLookup, ...] = ()
    mta_sts: MtaStsLookup | None = None
    tls_rpt: TlsRptLookup | None = None

    def to_dict(self) -> dict[str, object]:
        out = Report.to_dict(self)
        result = self.spf_result
        out["spf_result"] = None
        if result is not None:
            out["spf_result"] = {
                "result": result.result.value,
                "mechanism": result.mechanism.text if result.mechanism else None,
                "explanation": result.explanation,
                "lookups": result.lookups,
                "void_lookups": result.void_lookups,
                "problems": list(result.problems),
            }
        return out


async def diagnose_domain(
    domain: str, resolver: Resolver, *, ip: str | None = None, dkim_selectors: Sequence[str] = ()
) -> DomainReport:
    """Check ``domain``; with ``ip``, also the SPF result for mail from that address; DKIM for each selector.

    ``ValueError`` for a domain, address or selector that is not one; :class:`~smtplens.diagnose.dns.DnsTempError`
    when no lookup got an answer at all (the check could not run).
    """
    name = domain.strip().rstrip(".").lower()
    problem = identity_problem(name) if name else "the domain is empty"
    if problem:
        raise ValueError(f"not a domain name: {problem}")
    address: str | None = None
    if ip is not None:
        try:
            address = str(ipaddress.ip_address(ip.strip()))
        except ValueError:
            raise ValueError(f"not an IP address: {ip!r}") from None

    mx, tree, dmarc, mta_sts, tls_rpt, spf_result = await asyncio.gather(
        attempt(lookup_mx(name, resolver)),
        spf_tree(name, resolver),
        attempt(lookup_dmarc(name, resolver)),
        attempt(lookup_mtasts(name, resolver)),
        attempt(lookup_tlsrpt(name, resolver)),
        _spf_result(address, name, resolver),
    )
    dkim_results = await asyncio.gather(*(_dkim(name, selector, resolver) for selector in dkim_selectors))
    dkim: list[DkimLookup | DnsError] = []
    for item in dkim_results:
        if isinstance(item, ValueError):
            raise item
        dkim.append(item)
    parts = (mx, dmarc, mta_sts, tls_rpt, *dkim)
    if tree.root.status is NodeStatus.DNS_ERROR and all(isinstance(part, DnsError) for part in parts):
        raise DnsTempError(f"no DNS answer at all for {name}: {tree.root.problem}")

    found: list[Finding] = []
    found += mx.findings if isinstance(mx, MxPart) else [lookup_failed("mx", f"the MX records of {name}", mx)]
    found += spf_findings(name, tree)
    if address is not None and spf_result is not None:
        found += spf_result_findings(name, address, spf_result)
    found += _record_findings("dmarc", f"_dmarc.{name}", dmarc)
    for selector, item in zip(dkim_selectors, dkim, strict=True):
        found += _record_findings("dkim", f"{selector}._domainkey.{name}", item)
    found += _record_findings("mtasts", f"_mta-sts.{name}", mta_sts)
    found += _record_findings("tlsrpt", f"_smtp._tls.{name}", tls_rpt)

    mx_part = mx if isinstance(mx, MxPart) else MxPart()
    report = DomainReport(
        verdict="",
        findings=tuple(found),
        domain=name,
        mx=mx_part.records,
        null_mx=mx_part.null_mx,
        mx_hosts=mx_part.hosts,
        spf=tree.root.text if tree.root.status is not NodeStatus.DNS_ERROR else None,
        spf_lookups=tree.lookups,
        spf_void_lookups=tree.void_lookups,
        spf_tree=tree,
        spf_result=spf_result,
        dmarc=dmarc if isinstance(dmarc, DmarcLookup) else None,
        dkim=tuple(item for item in dkim if isinstance(item, DkimLookup)),
        mta_sts=mta_sts if isinstance(mta_sts, MtaStsLookup) else None,
        tls_rpt=tls_rpt if isinstance(tls_rpt, TlsRptLookup) else None,
    )
    return dataclasses.replace(report, verdict=_verdict(report, address))


async def _dkim(domain: str, selector: str, resolver: Resolver) -> DkimLookup | DnsError | ValueError:
    try:
        return await lookup_dkim(domain, selector, resolver)
    except (DnsError, ValueError) as exc:
        return exc


async def _spf_result(ip: str | None, domain: str, resolver: Resolver) -> SpfResult | None:
    if ip is None:
        return None
    return await check_host(ip, domain, f"postmaster@{domain}", helo=domain, resolver=resolver)


def _record_findings(
    kind: str, where: str, item: DmarcLookup | DkimLookup | MtaStsLookup | TlsRptLookup | DnsError
) -> list[Finding]:
    if isinstance(item, DnsError):
        return [lookup_failed(kind, where, item)]
    out = list(item.findings)
    if kind == "dmarc":
        # A missing DMARC record weakens the domain's protection; it does not stop mail (warning, not error).
        out = [dataclasses.replace(x, severity=Severity.WARNING) if x.code == "dmarc.no_record" else x for x in out]
    return out


# --- verdict ---------------------------------------------------------------------------------------------------


def _verdict(report: DomainReport, ip: str | None) -> str:
    errors = len(report.by_severity(Severity.ERROR))
    warnings = len(report.by_severity(Severity.WARNING))
    if errors or warnings:
        counts = ", ".join(
            f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((errors, "error"), (warnings, "warning")) if n
        )
    else:
        counts = "no problems found"
    parts = [f"{report.domain}: {counts}", f"MX {_mx_summary(report)}", f"SPF {_spf_summary(report)}"]
    dmarc = report.dmarc
    policy = dmarc.record.policy if dmarc is not None and dmarc.record is not None else None
    parts.append(f"DMARC p={policy}" if policy else "DMARC none")
    if ip is not None and report.spf_result is not None:
        parts.append(f"SPF for {ip}: {report.spf_result.result.value}")
    return "; ".join(parts)


def _mx_summary(report: DomainReport) -> str:
    if report.null_mx:
        return "null (accepts no mail)"
    if not report.mx:
        return "none"
    hosts = [host for _, host in report.mx]
    return ", ".join(hosts[:3]) + (f" and {len(hosts) - 3} more" if len(hosts) > 3 else "")


def _spf_summary(report: DomainReport) -> str:
    tree = report.spf_tree
    if tree is None or tree.root.status is NodeStatus.NO_RECORD:
        return "none"
    if tree.root.status is not NodeStatus.OK:
        return tree.root.status.value.replace("_", " ")
    record = tree.root.record
    final = next((m.text for m in record.mechanisms if m.kind == "all"), None) if record else None
    ending = final or (f"redirect={record.redirect.text}" if record and record.redirect else "no all")
    return f"{ending}, {tree.lookups}/{tree.limits.dns_terms} lookups"
