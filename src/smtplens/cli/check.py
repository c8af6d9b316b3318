"""``smtplens check ip`` and ``smtplens check domain``: live DNS checks behind "how to fix".

The commands are a thin shell over :func:`smtplens.diagnose.ip.diagnose_ip` and
:func:`smtplens.diagnose.domain.diagnose_domain`: they build a resolver (``--dns HOST:PORT`` or the system's), run
the check and print the report — the one-line verdict first, then the findings grouped by severity, each with its
fix, then the details. Exit codes: 0 no problem, 3 problems found, 1 the check could not run, 2 usage error.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from smtplens.cli.findings import findings_lines
from smtplens.cli.output import emit_json
from smtplens.diagnose.dns import DnsError, DnspythonResolver
from smtplens.diagnose.domain import DomainReport, diagnose_domain
from smtplens.diagnose.ip import IpReport, diagnose_ip
from smtplens.diagnose.report import Report
from smtplens.diagnose.spf.tree import NodeStatus, SpfNode

__all__ = ["EXIT_CHECK_FAILED", "EXIT_PROBLEMS", "check_group", "parse_dns_server"]

EXIT_PROBLEMS = 3
EXIT_CHECK_FAILED = 1

_R = TypeVar("_R", bound=Report)


def parse_dns_server(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``, or an address alone for port 53) as ``(address, port)``; ``ValueError``."""
    value = text.strip()
    host, port = value, "53"
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"expected [IPv6]:PORT, got {text!r}")
        port = rest[1:] or "53"
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address (give the resolver as HOST:PORT, e.g. 127.0.0.1:53)") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{port!r} is not a port number")
    return address, int(port)


def _resolver(dns: str | None, timeout: float) -> DnspythonResolver:
    if dns is None:
        return DnspythonResolver(timeout=timeout)
    try:
        server, port = parse_dns_server(dns)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--dns'") from None
    return DnspythonResolver(server, port, timeout=timeout)


_dns_option = click.option(
    "--dns", metavar="HOST:PORT", help="Ask this resolver (an IP address and port) instead of the system's."
)
_timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds to wait for each DNS answer.",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")


@click.group("check")
def check_group() -> None:
    """Live DNS checks: is an IP blocklisted, is a domain set up to send and receive mail."""


@check_group.command("ip")
@click.argument("ip")
@click.option("--zone", "zones", multiple=True, metavar="ZONE", help="Ask only this DNSBL zone (repeatable).")
@_dns_option
@_timeout_option
@_json_option
def check_ip_cmd(ip: str, zones: tuple[str, ...], dns: str | None, timeout: float, as_json: bool) -> None:
    """Check IP against DNS blocklists and its reverse DNS (PTR, forward-confirmed, generic names)."""
    try:
        address = str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        raise click.BadParameter(f"{ip!r} is not an IP address", param_hint="'IP'") from None
    resolver = _resolver(dns, timeout)
    report = _run(diagnose_ip(address, resolver, zones=list(zones) or None))
    _finish(report, as_json, _ip_details)


@check_group.command("domain")
@click.argument("domain")
@click.option("--ip", help="Also evaluate SPF for mail from this address.")
@click.option(
    "--dkim-selector", "selectors", multiple=True, metavar="SELECTOR", help="Check this DKIM key (repeatable)."
)
@_dns_option
@_timeout_option
@_json_option
def check_domain_cmd(
    domain: str, *, ip: str | None, selectors: tuple[str, ...], dns: str | None, timeout: float, as_json: bool
) -> None:
    """Check DOMAIN: MX, SPF (with its lookup count), DMARC, DKIM selectors, MTA-STS and TLS-RPT."""
    if ip is not None:
        try:
            ipaddress.ip_address(ip.strip())
        except ValueError:
            raise click.BadParameter(f"{ip!r} is not an IP address", param_hint="'--ip'") from None
    resolver = _resolver(dns, timeout)
    try:
        coroutine = diagnose_domain(domain, resolver, ip=ip, dkim_selectors=selectors)
        report = _run(coroutine)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    _finish(report, as_json, _domain_details)


def _run(job: Coroutine[Any, Any, _R]) -> _R:
    try:
        return asyncio.run(job)
    except DnsError as exc:
        click.echo(f"smtplens: the check could not run: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_CHECK_FAILED) from None


def _finish(report: _R, as_json: bool, details: Callable[[_R], list[str]]) -> None:
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo("\n".join(_render(report, details(report))))
    if not report.ok:
        raise click.exceptions.Exit(EXIT_PROBLEMS)


# --- text rendering --------------------------------------------------------------------------------------------


def _render(report: Report, details: list[str]) -> list[str]:
    lines = [click.style(report.verdict, bold=True)]
    lines += findings_lines(report)
    if details:
        lines += ["", click.style("Details", bold=True), *(f"  {line}" for line in details)]
    return lines


def _ip_details(report: IpReport) -> list[str]:
    lines = [f"PTR: {', '.join(report.ptr) or 'none'}", f"forward-confirmed: {'yes' if report.fcrdns else 'no'}"]
    for item in report.listings:
        lines.append(f"{item.zone}: {item.status.value.replace('_', ' ')}")
    return lines


def _domain_details(report: DomainReport) -> list[str]:
    lines: list[str] = []
    if report.null_mx:
        lines.append("MX: null MX (0 .)")
    for host in report.mx_hosts:
        alias = f" (alias of {host.cname})" if host.cname else ""
        addresses = ", ".join(host.addresses) or ("an IP address, not a name" if _is_ip(host.host) else "no address")
        lines.append(f"MX {host.preference} {host.host}{alias}: {addresses}")
    if not report.mx and not report.null_mx:
        lines.append("MX: none")
    lines.append(f"SPF: {report.spf or 'none'}")
    if report.spf_tree is not None and report.spf_tree.root.record is not None:
        tree = report.spf_tree
        lines.append(
            f"SPF lookups: {tree.lookups} of {tree.limits.dns_terms}, void lookups: {tree.void_lookups} of "
            f"{tree.limits.void_lookups}"
        )
        lines += _tree_lines(tree.root, 1)
    if report.spf_result is not None:
        mechanism = report.spf_result.mechanism
        lines.append(f"SPF result: {report.spf_result.result.value}" + (f" ({mechanism.text})" if mechanism else ""))
    dmarc = report.dmarc
    lines.append(f"DMARC: {dmarc.record.raw if dmarc is not None and dmarc.record is not None else 'none'}")
    for key in report.dkim:
        bits = f", {key.key.key_bits}-bit {key.key.key_type}" if key.key is not None and key.key.key_bits else ""
        lines.append(f"DKIM {key.selector}: {'found' if key.key is not None else 'none'}{bits}")
    sts = report.mta_sts
    lines.append(f"MTA-STS: {sts.record.raw if sts is not None and sts.record is not None else 'none'}")
    rpt = report.tls_rpt
    lines.append(f"TLS-RPT: {rpt.record.raw if rpt is not None and rpt.record is not None else 'none'}")
    return lines


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _tree_lines(node: SpfNode, depth: int) -> list[str]:
    """One line per record of the SPF tree, indented by depth: where the lookups come from."""
    state = f"{node.lookups} lookups" if node.status is NodeStatus.OK else node.status.value.replace("_", " ")
    void = f", {node.void_lookups} void" if node.void_lookups else ""
    via = f"{node.term} → " if node.term else ""
    lines = [f"{'  ' * depth}{via}{node.domain}: {state}{void}"]
    for child in node.children:
        lines += _tree_lines(child, depth + 1)
    return lines
