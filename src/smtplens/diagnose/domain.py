"""``check domain``: can a domain receive mail, and is the mail it sends authenticated properly?

:func:`diagnose_domain` looks at the MX records (and the hosts they name), the SPF record with its whole
include/redirect tree, optionally the SPF result for one sending address, DMARC, DKIM keys of given selectors,
MTA-STS and TLS-RPT. Independent lookups run concurrently over the injected resolver. The record checks of
:mod:`~smtplens.diagnose.dmarc`, :mod:`~smtplens.diagnose.dkim`, :mod:`~smtplens.diagnose.mtasts` and
:mod:`~smtplens.diagnose.tlsrpt` supply their own findings; this module adds MX and SPF findings and the verdict.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from smtplens.diagnose import findings as f
from smtplens.diagnose.dkim import DkimLookup, lookup_dkim
from smtplens.diagnose.dmarc import DmarcLookup, lookup_dmarc
from smtplens.diagnose.dns import Answer, DnsError, DnsTempError, Resolver
from smtplens.diagnose.findings import Finding, Severity
from smtplens.diagnose.mtasts import MtaStsLookup, lookup_mtasts
from smtplens.diagnose.report import Report
from smtplens.diagnose.spf import Qualifier, SpfOutcome, SpfRecord, SpfResult, check_host
from smtplens.diagnose.spf.names import identity_problem
from smtplens.diagnose.spf.tree import NodeStatus, SpfTree, spf_tree
from smtplens.diagnose.tlsrpt import TlsRptLookup, lookup_tlsrpt

__all__ = ["CnameResolver", "DomainReport", "MxHost", "diagnose_domain"]

_T = TypeVar("_T")


@runtime_checkable
class CnameResolver(Protocol):
    """An optional extra of a resolver: the CNAME target of a name. With it, MX hosts that are aliases are found."""

    async def cname(self, name: str) -> Answer: ...


@dataclass(frozen=True, slots=True)
class MxHost:
    """One MX host as found: its addresses (A and AAAA) and the CNAME target when the name is an alias."""

    preference: int
    host: str
    addresses: tuple[str, ...] = ()
    cname: str | None = None


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
        _attempt(_mx(name, resolver)),
        spf_tree(name, resolver),
        _attempt(lookup_dmarc(name, resolver)),
        _attempt(lookup_mtasts(name, resolver)),
        _attempt(lookup_tlsrpt(name, resolver)),
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
    found += mx.findings if isinstance(mx, _MxPart) else [_failed("mx", f"the MX records of {name}", mx)]
    found += _spf_findings(name, tree)
    if address is not None and spf_result is not None:
        found += _spf_result_findings(name, address, spf_result)
    found += _record_findings("dmarc", f"_dmarc.{name}", dmarc)
    for selector, item in zip(dkim_selectors, dkim, strict=True):
        found += _record_findings("dkim", f"{selector}._domainkey.{name}", item)
    found += _record_findings("mtasts", f"_mta-sts.{name}", mta_sts)
    found += _record_findings("tlsrpt", f"_smtp._tls.{name}", tls_rpt)

    mx_part = mx if isinstance(mx, _MxPart) else _MxPart()
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


async def _attempt(job: Awaitable[_T]) -> _T | DnsError:
    try:
        return await job
    except DnsError as exc:
        return exc


async def _dkim(domain: str, selector: str, resolver: Resolver) -> DkimLookup | DnsError | ValueError:
    try:
        return await lookup_dkim(domain, selector, resolver)
    except (DnsError, ValueError) as exc:
        return exc


async def _spf_result(ip: str | None, domain: str, resolver: Resolver) -> SpfResult | None:
    if ip is None:
        return None
    return await check_host(ip, domain, f"postmaster@{domain}", helo=domain, resolver=resolver)


def _failed(kind: str, what: str, exc: DnsError) -> Finding:
    return f.warning(
        f"{kind}.lookup_failed",
        f"Could not look up {what}: {exc}.",
        "Check that the domain's name servers answer (and your resolver, with --dns), then run the check again.",
    )


def _record_findings(
    kind: str, where: str, item: DmarcLookup | DkimLookup | MtaStsLookup | TlsRptLookup | DnsError
) -> list[Finding]:
    if isinstance(item, DnsError):
        return [_failed(kind, where, item)]
    out = list(item.findings)
    if kind == "dmarc":
        # A missing DMARC record weakens the domain's protection; it does not stop mail (warning, not error).
        out = [dataclasses.replace(x, severity=Severity.WARNING) if x.code == "dmarc.no_record" else x for x in out]
    return out


# --- MX --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _MxPart:
    records: tuple[tuple[int, str], ...] = ()
    null_mx: bool = False
    hosts: tuple[MxHost, ...] = ()
    findings: tuple[Finding, ...] = ()


async def _mx(domain: str, resolver: Resolver) -> _MxPart:
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
        return _MxPart(findings=tuple(out))
    null = [item for item in records if not item[1]]
    if null:
        out += _null_mx_findings(domain, records)
        return _MxPart(records, True, findings=tuple(out))
    if not records:
        out += await _implicit_mx(domain, resolver)
        return _MxPart(findings=tuple(out))
    hosts = await asyncio.gather(*(_mx_host(preference, host, resolver) for preference, host in records))
    for _, problems in hosts:
        out += problems
    return _MxPart(records, False, tuple(host for host, _ in hosts), tuple(out))


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
    answers = await asyncio.gather(_attempt(resolver.a(domain)), _attempt(resolver.aaaa(domain)))
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
        return [_failed("mx", f"the addresses of {domain} (it has no MX)", _first_error(answers))]
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
    jobs = [_attempt(resolver.a(host)), _attempt(resolver.aaaa(host))]
    if isinstance(resolver, CnameResolver):
        jobs.append(_attempt(resolver.cname(host)))
    answers = await asyncio.gather(*jobs)
    addresses = tuple(r for answer in answers[:2] if isinstance(answer, Answer) for r in answer.records)
    cname = None
    if len(answers) > 2 and isinstance(answers[2], Answer) and answers[2].records:
        cname = answers[2].records[0].rstrip(".")
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
            out.append(_failed("mx", f"the addresses of MX host {host}", _first_error(answers[:2])))
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


# --- SPF -------------------------------------------------------------------------------------------------------


_SPF_EXAMPLE = "'v=spf1 mx -all' (or the include of your mail provider)"


def _spf_findings(domain: str, tree: SpfTree) -> list[Finding]:
    root = tree.root
    if root.status is NodeStatus.NO_RECORD:
        return [
            f.warning(
                "spf.missing",
                f"{domain} has no SPF record: receivers cannot tell which hosts may send its mail.",
                f"Publish a TXT record at {domain} such as {_SPF_EXAMPLE}.",
            )
        ]
    if root.status is NodeStatus.SEVERAL_RECORDS:
        return [
            f.error(
                "spf.several_records",
                f"{root.problem}; receivers treat SPF as a permanent error.",
                "Merge the records into one 'v=spf1' record.",
            )
        ]
    if root.status is NodeStatus.SYNTAX_ERROR:
        return [
            f.error(
                "spf.syntax",
                f"SPF syntax error: {root.problem}.",
                "Correct the term named in the message; one bad term makes the whole record a permanent error.",
            )
        ]
    if root.status is NodeStatus.DNS_ERROR:
        return [_failed("spf", f"the SPF record of {domain}", DnsError(root.problem or "no answer"))]
    return [*_limit_findings(tree), *_tree_findings(tree), *_root_findings(root.record)]


def _limit_findings(tree: SpfTree) -> list[Finding]:
    out: list[Finding] = []
    if tree.too_many_lookups:
        where = ", ".join(f"{node.domain} {node.lookups}" for node in tree.root.walk() if node.lookups)
        out.append(
            f.error(
                "spf.too_many_lookups",
                f"too many DNS lookups: {tree.lookups} (RFC 7208 section 4.6.4 allows {tree.limits.dns_terms}; "
                f"per record: {where}); receivers stop with a permanent error.",
                "Replace include/a/mx terms with ip4/ip6 ranges, or drop includes of services you no longer use, "
                f"until the whole tree needs {tree.limits.dns_terms} lookups or fewer.",
            )
        )
    if tree.too_many_void_lookups:
        terms = ", ".join(f"{term} ({node.domain})" for node in tree.root.walk() for term in node.void_terms)
        out.append(
            f.error(
                "spf.too_many_void_lookups",
                f"too many void lookups: {tree.void_lookups} terms find no DNS records ({terms}); RFC 7208 section "
                f"4.6.4 allows {tree.limits.void_lookups}, then the result is a permanent error.",
                "Remove the terms that point at names without records.",
            )
        )
    return out


def _tree_findings(tree: SpfTree) -> list[Finding]:
    out: list[Finding] = []
    for node in tree.root.walk():
        if node is not tree.root and node.status is not NodeStatus.OK:
            broken = node.status is not NodeStatus.DNS_ERROR
            out.append(
                (f.error if broken else f.warning)(
                    "spf.include_broken" if broken else "spf.include_lookup_failed",
                    f"{node.term}: {node.problem}; "
                    + ("the whole SPF check ends in a permanent error." if broken else "receivers get a temperror."),
                    f"Fix or remove '{node.term}' in the record that names it.",
                )
            )
        out += [
            f.warning("spf.term_problem", f"{node.domain}: {text}.", "Correct or remove the term.")
            for text in node.warnings
        ]
        if node.record is not None:
            out += [
                f.warning(
                    "spf.ptr",
                    f"{node.domain} uses '{m.text}': RFC 7208 section 5.5 says not to use ptr (slow, unreliable, "
                    "and some receivers skip it).",
                    "Replace the ptr mechanism with ip4/ip6, a or include terms.",
                )
                for m in node.record.mechanisms
                if m.kind == "ptr"
            ]
    return out


def _root_findings(record: SpfRecord | None) -> list[Finding]:
    if record is None:
        return []
    final = next((m for m in record.mechanisms if m.kind == "all"), None)
    if final is None:
        if record.redirect is not None:
            return []
        return [
            f.info(
                "spf.no_all",
                "The record ends without 'all' or a redirect: mail from any other host gets 'neutral'.",
                "End the record with '~all' (soft) or '-all' (strict).",
            )
        ]
    if final.qualifier is Qualifier.PASS:
        return [
            f.warning(
                "spf.pass_all",
                f"'{final.text}' lets every host on the internet pass SPF for this domain.",
                "End the record with '~all' or '-all' after listing your real senders.",
            )
        ]
    if final.qualifier is Qualifier.NEUTRAL:
        return [
            f.warning(
                "spf.neutral_all",
                f"'{final.text}' gives unlisted hosts 'neutral', so SPF protects nothing.",
                "End the record with '~all' or '-all' after listing your real senders.",
            )
        ]
    return []


def _spf_result_findings(domain: str, ip: str, result: SpfResult) -> list[Finding]:
    outcome = result.result
    decided = f"'{result.mechanism.text}' matches" if result.mechanism else "no mechanism matches"
    add = f"If {ip} sends mail for {domain}, list it (ip4:/ip6: or your provider's include) before "
    add += f"'{result.mechanism.text}'." if result.mechanism else "the end of the record."
    if outcome is SpfOutcome.FAIL:
        why = f" The domain explains: {result.explanation}" if result.explanation else ""
        return [f.error("spf.ip_fail", f"SPF fails for {ip}: {decided}; receivers may reject the mail.{why}", add)]
    if outcome is SpfOutcome.SOFTFAIL:
        return [f.warning("spf.ip_softfail", f"SPF soft-fails for {ip}: {decided}; mail may go to spam.", add)]
    if outcome is SpfOutcome.NEUTRAL:
        return [f.info("spf.ip_neutral", f"SPF gives 'neutral' for {ip}: {decided}.", add)]
    if outcome is SpfOutcome.PERMERROR:
        detail = result.problems[-1] if result.problems else "the record is broken"
        return [
            f.error(
                "spf.ip_permerror",
                f"SPF evaluation for {ip} ends in a permanent error: {detail}.",
                "Fix the SPF problems reported above; receivers treat a permerror like a failure or ignore SPF.",
            )
        ]
    if outcome is SpfOutcome.TEMPERROR:
        detail = result.problems[-1] if result.problems else "a DNS lookup failed"
        return [
            f.warning(
                "spf.ip_temperror",
                f"SPF evaluation for {ip} ends in a temporary error: {detail}.",
                "Check that every name the SPF record uses answers quickly, then run the check again.",
            )
        ]
    return []


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
