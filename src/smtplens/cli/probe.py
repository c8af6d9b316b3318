"""``smtplens probe TARGET``: talk to a mail server like a sending MTA and show each step with its reply.

A thin shell over :func:`smtplens.diagnose.probe.probe`: it builds the resolver (``--dns HOST:PORT`` or the
system's), runs the probe and prints the one-line verdict, then every attempt step by step (command, reply,
time, and for a 4yz/5yz reply the classifier's reason and action), then the findings with their fixes.
Exit codes: 0 no problem, 3 problems found, 1 no host could be reached (or DNS gave no answer), 2 usage error.
"""

from __future__ import annotations

import asyncio

import click

from smtplens.cli.check import parse_dns_server
from smtplens.cli.findings import findings_lines
from smtplens.cli.output import emit_json
from smtplens.diagnose.dns import Answer, DnspythonResolver, DnsTempError
from smtplens.diagnose.probe import (
    Attempt,
    ProbeError,
    ProbeInputError,
    ProbeReport,
    Step,
    Timeouts,
    parse_target,
    probe,
)
from smtplens.diagnose.smtp_client import parse_ehlo
from smtplens.diagnose.tlsinfo import TlsInfo

__all__ = ["EXIT_PROBLEMS", "EXIT_UNREACHABLE", "probe_cmd", "render"]

EXIT_PROBLEMS = 3
EXIT_UNREACHABLE = 1
DNS_TIMEOUT = 5.0  # seconds per DNS question; a shorter --timeout shortens it too

_NAME_WIDTH = 12
_TIME_WIDTH = 9


class _LazyResolver:
    """Builds the dnspython resolver on first use, so an IP target works where no resolver is configured."""

    def __init__(self, server: tuple[str, int] | None, timeout: float) -> None:
        self._server = server
        self._timeout = timeout
        self._resolver: DnspythonResolver | None = None

    def _get(self) -> DnspythonResolver:
        if self._resolver is None:
            try:
                if self._server is None:
                    self._resolver = DnspythonResolver(timeout=self._timeout)
                else:
                    self._resolver = DnspythonResolver(self._server[0], self._server[1], timeout=self._timeout)
            except Exception as exc:  # dnspython's own errors (no resolv.conf): no DNS answer is possible
                raise DnsTempError(f"no DNS resolver could be set up: {exc}") from exc
        return self._resolver

    async def txt(self, name: str) -> Answer:
        return await self._get().txt(name)

    async def a(self, name: str) -> Answer:
        return await self._get().a(name)

    async def aaaa(self, name: str) -> Answer:
        return await self._get().aaaa(name)

    async def mx(self, name: str) -> Answer:
        return await self._get().mx(name)

    async def ptr(self, ip: str) -> Answer:
        return await self._get().ptr(ip)

    async def cname(self, name: str) -> Answer:
        return await self._get().cname(name)


@click.command("probe")
@click.argument("target")
@click.option("--from", "mail_from", metavar="ADDRESS", help="MAIL FROM address (default: the null sender <>).")
@click.option("--to", "rcpt_to", multiple=True, metavar="ADDRESS", help="RCPT TO address (repeatable).")
@click.option("--helo", metavar="NAME", help="Name to give in EHLO/HELO (default: this host's name or address).")
@click.option("--starttls", is_flag=True, help="Require STARTTLS (it is used whenever offered anyway).")
@click.option("--source-ip", metavar="IP", help="Connect from this local address.")
@click.option("--send", is_flag=True, help="Also send DATA and a small test message to the accepted recipients.")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to connect to (default 25).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.01),
    metavar="SECONDS",
    help="Wait this long at every step instead of RFC 5321's timeouts (5 minutes for the greeting, MAIL, "
    "RCPT…); also caps the DNS wait (5 s).",
)
@click.option("--dns", metavar="HOST:PORT", help="Ask this resolver (an IP address and port) instead of the system's.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def probe_cmd(
    target: str,
    *,
    mail_from: str | None,
    rcpt_to: tuple[str, ...],
    helo: str | None,
    starttls: bool,
    source_ip: str | None,
    send: bool,
    port: int | None,
    timeout: float | None,
    dns: str | None,
    as_json: bool,
) -> None:
    """Probe the mail server of TARGET: HOST, HOST:PORT, [IPv6]:PORT or a mail DOMAIN (its MX hosts in order).

    Steps: connect, greeting, EHLO (HELO if refused), STARTTLS when offered, MAIL FROM, RCPT TO with --to,
    DATA with --send, QUIT.
    """
    try:
        parsed = parse_target(target)
    except ProbeInputError as exc:
        raise click.BadParameter(str(exc), param_hint="'TARGET'") from None
    if port is not None and parsed.port is not None and port != parsed.port:
        raise click.BadParameter(f"TARGET names port {parsed.port} but --port says {port}", param_hint="'--port'")
    server = None
    if dns is not None:
        try:
            server = parse_dns_server(dns)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--dns'") from None
    job = probe(
        target,
        resolver=_LazyResolver(server, min(timeout, DNS_TIMEOUT) if timeout is not None else DNS_TIMEOUT),
        port=port or 25,
        mail_from=mail_from,
        rcpt_to=rcpt_to,
        helo=helo,
        starttls=starttls,
        source_ip=source_ip,
        send=send,
        timeouts=Timeouts.uniform(timeout) if timeout is not None else None,
    )
    try:
        report = asyncio.run(job)
    except ProbeInputError as exc:
        raise click.UsageError(str(exc)) from None
    except ProbeError as exc:
        click.echo(f"smtplens: the probe could not run: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_UNREACHABLE) from None
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo("\n".join(render(report)))
    if report.reached is None and not report.null_mx:
        raise click.exceptions.Exit(EXIT_UNREACHABLE)
    if not report.ok:
        raise click.exceptions.Exit(EXIT_PROBLEMS)


# --- text rendering --------------------------------------------------------------------------------------------


def render(report: ProbeReport) -> list[str]:
    """The readable report: verdict, where the probe went, each attempt's steps, then the findings."""
    lines = [click.style(report.verdict, bold=True), ""]
    port = "" if report.target.endswith(f":{report.port}") else f", port {report.port}"
    lines.append(f"target: {report.target}{port}")
    if report.null_mx:
        lines.append("MX: null MX (0 .)")
    elif report.implicit_mx:
        lines.append("MX: none; the domain's own address is used (implicit MX, RFC 5321 section 5.1)")
    elif report.mx:
        lines.append("MX: " + ", ".join(f"{pref} {host}" for pref, host in report.mx))
    for number, attempt in enumerate(report.attempts, 1):
        lines += ["", click.style(f"attempt {number}: {_where(attempt)}", bold=True)]
        for step in attempt.steps:
            lines += _step_lines(step)
    lines += findings_lines(report)
    return lines


def _where(attempt: Attempt) -> str:
    host = attempt.host if attempt.host == attempt.address else f"{attempt.host} [{attempt.address}]"
    return f"{host} port {attempt.port}"


def _time(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def _step_lines(step: Step) -> list[str]:
    head = f"  {step.name.value:<{_NAME_WIDTH}}{_time(step.elapsed):>{_TIME_WIDTH}}  "
    indent = " " * len(head)
    sent = f"{step.command} → " if step.command else ""
    if step.error is not None:
        return [head + click.style(f"{sent}{step.error.value}: {step.detail}", fg="red")]
    if step.reply is None:
        return [head + "ok"]
    colour = "red" if step.failed else None
    reply_lines = step.reply.raw.split("\n")
    hello = step.name.value in ("ehlo", "helo") and not step.failed
    first = f"{step.reply.basic} {step.reply.text[0]}" if hello and step.reply.text else reply_lines[0]
    lines = [head + sent + click.style(first, fg=colour)]
    if hello:  # the keywords, parsed, instead of one line each
        keywords = parse_ehlo(step.reply.text).keywords
        if keywords:
            lines.append(indent + "capabilities: " + ", ".join(k if not v else f"{k} {v}" for k, v in keywords))
    else:
        lines += [indent + click.style(line, fg=colour) for line in reply_lines[1:]]
    if step.explanation is not None:
        verdict = step.explanation
        kind = "permanent" if verdict.permanent else "temporary"
        lines.append(f"{indent}reason: {verdict.reason_title} ({verdict.reason}, {kind})")
        lines.append(f"{indent}action: {verdict.action}")
    if step.tls is not None:
        lines += [indent + line for line in _tls_lines(step.tls)]
    return lines


def _tls_lines(tls: TlsInfo) -> list[str]:
    bits = f" ({tls.cipher_bits} bits)" if tls.cipher_bits else ""
    lines = [f"TLS: {tls.version}, {tls.cipher}{bits}"]
    if tls.problem:
        lines.append(f"certificate: {tls.problem}")
    else:
        lines.append(f"certificate: {tls.subject}, issued by {tls.issuer}, valid until {tls.not_after}")
        lines.append(f"names: {', '.join(tls.names) or 'none'}; name match: {'yes' if tls.name_match else 'no'}")
    verified = "yes" if tls.verified else f"no ({tls.verify_error})"
    lines.append(f"verified against the system CAs: {verified}")
    return lines
