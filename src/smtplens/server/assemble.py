"""Turn :class:`~smtplens.server.config.ServeSettings` into what ``smtplens serve`` runs.

:func:`session_config` and :func:`server_config` give the SMTP side, :func:`build_policies` the policy list
in its fixed order (docs/server-config.md): scenarios first (a test scenario decides before anything else;
always present, so that scenarios can be added at run time), then relay (never an open relay: an acceptance
never overrides a later refusal), access lists, rate limits, DNSBL, greylisting and the message checks.
Policies that look things up in the DNS share one resolver, made once by ``resolver_factory``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from smtplens.diagnose.dns import DnspythonResolver, Resolver
from smtplens.model import Stage
from smtplens.server.config import AccessRuleSettings, AccessSettings, ServeSettings
from smtplens.server.config_checks import CheckSettings
from smtplens.server.net import ServerConfig
from smtplens.server.pipeline import Pipeline, Policy
from smtplens.server.policies import (
    AccessPolicy,
    AccessRule,
    AuthenticationPolicy,
    ContentPolicy,
    DkimPolicy,
    DmarcPolicy,
    DnsblPolicy,
    GreylistPolicy,
    RateLimitPolicy,
    RelayPolicy,
    RspamdClient,
    SpamdClient,
    SpamPolicy,
    SpfPolicy,
    spf_actions,
)
from smtplens.server.policies.spamfilter import SpamFilter
from smtplens.server.protocol import SessionConfig
from smtplens.server.scenarios import ScenarioBook, ScenarioPolicy

__all__ = ["Assembly", "assemble", "build_policies", "server_config", "session_config"]

ResolverFactory = Callable[[tuple[str, int] | None], Resolver]

_STAGES = {"connect": Stage.CONNECT, "helo": Stage.HELO, "mail": Stage.MAIL, "rcpt": Stage.RCPT}


def default_resolver(server: tuple[str, int] | None) -> Resolver:
    """dnspython's resolver, at ``server`` when one is configured."""
    return DnspythonResolver(*server) if server else DnspythonResolver()


def session_config(settings: ServeSettings) -> SessionConfig:
    smtp = settings.smtp
    return SessionConfig(
        hostname=smtp.hostname,
        banner=smtp.banner,
        limits=smtp.limits,
        tls_available=smtp.certificate is not None,
        credentials=_password_check(smtp.users) if smtp.users else None,
        auth_without_tls=smtp.auth_without_tls,
        require_tls=smtp.require_tls,
        require_auth=smtp.require_auth,
        chunking=smtp.chunking,
        reject_bare_lf=smtp.reject_bare_lf,
        idle_timeout=smtp.idle_timeout,
        data_timeout=smtp.data_timeout,
    )


def server_config(settings: ServeSettings) -> ServerConfig:
    smtp = settings.smtp
    return ServerConfig(
        session=session_config(settings),
        accepted_domains=smtp.accept_domains,
        accepted_recipients=smtp.accept_recipients,
        max_connections=smtp.max_connections,
        max_per_ip=smtp.max_per_ip,
        maintenance=smtp.maintenance,
        decision_timeout=smtp.decision_timeout,
        certificate=smtp.certificate,
        private_key=smtp.private_key,
    )


@dataclass(frozen=True, slots=True)
class Assembly:
    """The parts ``serve`` starts: the SMTP configuration, the pipeline (with its policies) and the scenario
    book the pipeline plays (the HTTP API changes it at run time)."""

    config: ServerConfig
    pipeline: Pipeline
    scenarios: ScenarioBook


def assemble(settings: ServeSettings, resolver_factory: ResolverFactory = default_resolver) -> Assembly:
    config = server_config(settings)
    book = ScenarioBook(settings.scenarios)
    policies = build_policies(settings, resolver_factory, scenarios=book)
    pipeline = Pipeline(policies, hostname=config.session.hostname, timeout=config.decision_timeout)
    return Assembly(config, pipeline, book)


def build_policies(
    settings: ServeSettings,
    resolver_factory: ResolverFactory = default_resolver,
    *,
    scenarios: ScenarioBook | None = None,
) -> list[Policy]:
    """The configured policies in the pipeline's order (see the module docstring); ``scenarios`` is the book the
    scenario policy plays (a new one with the configured scenarios when None)."""
    smtp = settings.smtp
    resolver: Resolver | None = None

    def shared_resolver() -> Resolver:
        nonlocal resolver
        if resolver is None:
            resolver = resolver_factory(settings.dns)
        return resolver

    book = scenarios if scenarios is not None else ScenarioBook(settings.scenarios)
    policies: list[Policy] = [
        ScenarioPolicy(book, hostname=smtp.hostname),
        RelayPolicy(smtp.accept_domains, smtp.accept_recipients),
    ]
    if settings.access is not None:
        policies.append(_access_policy(settings.access))
    if settings.rate_limits:
        policies.append(RateLimitPolicy(settings.rate_limits, hostname=smtp.hostname))
    if settings.dnsbl is not None:
        stage = Stage.CONNECT if settings.dnsbl.at == "greeting" else Stage.RCPT
        policies.append(DnsblPolicy(settings.dnsbl.zones, shared_resolver(), stage=stage))
    if settings.greylist is not None:
        grey = settings.greylist
        policies.append(GreylistPolicy(grey.delay, grey.retry_window, grey.lifetime))
    policies += _check_policies(settings.checks, smtp.hostname, shared_resolver)
    return policies


def _check_policies(checks: CheckSettings, hostname: str, resolver: Callable[[], Resolver]) -> list[Policy]:
    """Content first (a malformed message is refused before anything is looked up), then SPF/DKIM/DMARC, then
    spam."""
    policies: list[Policy] = []
    if checks.content is not None:
        content = checks.content
        policies.append(
            ContentPolicy(
                disable=content.disable,
                max_size=content.max_size,
                domain_sizes=content.domain_sizes,
                max_line=content.max_line,
            )
        )
    if checks.spf or checks.dkim or checks.dmarc:
        spf = dkim = dmarc = None
        if checks.spf is not None:
            choice = checks.spf
            actions = spf_actions(
                fail=choice.fail,
                softfail=choice.softfail,
                neutral=choice.neutral,
                none=choice.none,
                temperror=choice.temperror,
                permerror=choice.permerror,
            )
            spf = SpfPolicy(resolver(), actions=actions, receiver=hostname)
        if checks.dkim is not None:
            dkim = DkimPolicy(
                resolver(),
                require=checks.dkim.require,
                minkey=checks.dkim.minkey,
                max_signatures=checks.dkim.max_signatures,
            )
        if checks.dmarc is not None:
            dmarc = DmarcPolicy(
                resolver(),
                quarantine=checks.dmarc.quarantine,
                on_temperror=checks.dmarc.on_temperror,
                bad_from=checks.dmarc.bad_from,
            )
        received = checks.spf.received_spf if checks.spf is not None else False
        policies.append(AuthenticationPolicy(hostname, spf=spf, dkim=dkim, dmarc=dmarc, received_spf=received))
    if checks.spam is not None:
        spam = checks.spam
        spam_filter: SpamFilter | None = None
        if spam.filter is not None and spam.filter_address is not None:
            client = SpamdClient if spam.filter == "spamd" else RspamdClient
            spam_filter = client(*spam.filter_address, timeout=spam.filter_timeout)
        policies.append(
            SpamPolicy(
                spam.rules,
                threshold=spam.threshold,
                spam_filter=spam_filter,
                on_filter_error=spam.on_filter_error,
                add_status=spam.add_status,
            )
        )
    return policies


def _access_policy(access: AccessSettings) -> AccessPolicy:
    def rules(rows: tuple[AccessRuleSettings, ...]) -> list[AccessRule]:
        return [AccessRule(row.pattern, row.decision) for row in rows]

    return AccessPolicy(
        clients=rules(access.clients),
        senders=rules(access.senders),
        recipients=rules(access.recipients),
        client_stage=_STAGES[access.client_stage],
    )


def _password_check(users: Mapping[str, str]) -> Callable[[str, str], bool]:
    """AUTH PLAIN/LOGIN against the configured users (compared in constant time)."""
    table = {user: password.encode("utf-8") for user, password in users.items()}

    def check(username: str, password: str) -> bool:
        expected = table.get(username)
        return expected is not None and hmac.compare_digest(expected, password.encode("utf-8"))

    return check
