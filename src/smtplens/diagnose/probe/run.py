"""The entry point: :func:`probe` parses the target, plans where to connect, tries each address in order until
one greets, and assesses what happened."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from smtplens.diagnose.dns import Resolver
from smtplens.diagnose.probe.model import Attempt, ProbeReport, StepName
from smtplens.diagnose.probe.options import Options, ip_versions, make_options
from smtplens.diagnose.probe.plan import Plan, make_plan
from smtplens.diagnose.probe.session import Session
from smtplens.diagnose.probe.target import parse_target
from smtplens.diagnose.probe.verdict import assess
from smtplens.diagnose.smtp_client import Failure, Timeouts

__all__ = ["MAX_ATTEMPTS", "probe"]

MAX_ATTEMPTS = 10
"""Addresses tried at most before giving up (Postfix tries 5 by default: ``smtp_mx_address_limit``)."""


async def probe(
    target: str,
    *,
    resolver: Resolver,
    port: int = 25,
    mail_from: str | None = None,
    rcpt_to: str | Sequence[str] | None = None,
    helo: str | None = None,
    starttls: bool = False,
    source_ip: str | None = None,
    send: bool = False,
    timeouts: Timeouts | None = None,
) -> ProbeReport:
    """Probe the mail server(s) of ``target`` and report each attempt step by step.

    ``port`` is used unless the target names one. ``mail_from`` defaults to the null reverse-path ``<>``;
    ``rcpt_to`` (one address or several) adds RCPT TO; ``send`` delivers a small test message to the accepted
    recipients. STARTTLS is used whenever the server offers it; ``starttls=True`` requires it (a server without it
    is a problem, and the session stops before MAIL). ``timeouts`` defaults to RFC 5321's. Raises
    :class:`ProbeInputError` for unusable input and :class:`ProbeError` when DNS gives no answer at all.
    """
    parsed = parse_target(target)
    options = make_options(
        parsed,
        port=port,
        mail_from=mail_from,
        rcpt_to=rcpt_to,
        helo=helo,
        starttls=starttls,
        source_ip=source_ip,
        send=send,
        timeouts=timeouts,
    )
    families = ip_versions(options.source_ip)
    plan = await make_plan(parsed, resolver, families)
    attempts: list[Attempt] = []
    if not plan.null_mx:
        attempts = await _try_hosts(plan, options, families)
    verdict, findings = assess(
        parsed, plan.findings, attempts, null_mx=plan.null_mx, starttls_required=starttls, mail_from=options.mail_from
    )
    return ProbeReport(
        verdict=verdict,
        findings=findings,
        target=parsed.text,
        port=options.port,
        mx=plan.mx,
        implicit_mx=plan.implicit_mx,
        null_mx=plan.null_mx,
        attempts=tuple(attempts),
    )


async def _try_hosts(plan: Plan, options: Options, families: tuple[int, ...]) -> list[Attempt]:
    """Connect to each address in order until one greets (any code); stop on a local bind failure."""
    attempts: list[Attempt] = []
    for host, addresses in plan.hosts:
        for address in addresses:
            if len(attempts) >= MAX_ATTEMPTS or ipaddress.ip_address(address).version not in families:
                continue
            attempt = await Session(host, address, options).run()
            attempts.append(attempt)
            connect = attempt.step(StepName.CONNECT)
            if attempt.greeted or (connect is not None and connect.error is Failure.BIND):
                return attempts
    return attempts
