"""Turn :class:`~smtplens.server.config.ServeSettings` into what ``smtplens serve`` runs.

:func:`session_config` and :func:`server_config` give the SMTP side, :func:`build_policies` the policy list
in its fixed order (docs/server-config.md): scenarios first (a test scenario decides before anything else),
then relay (never an open relay), access lists, rate limits, DNSBL, greylisting and the message checks.
Policies that look things up in the DNS share one resolver, made once by ``resolver_factory``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from smtplens.diagnose.dns import DnspythonResolver, Resolver
from smtplens.model import Stage
from smtplens.server.config import AccessRuleSettings, AccessSettings, ServeSettings
from smtplens.server.net import ServerConfig
from smtplens.server.pipeline import Pipeline, Policy
from smtplens.server.policies import (
    AccessPolicy,
    AccessRule,
    DnsblPolicy,
    GreylistPolicy,
    RateLimitPolicy,
    RelayPolicy,
)
from smtplens.server.protocol import SessionConfig

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
    """The parts ``serve`` starts: the SMTP configuration and the pipeline (with its policies)."""

    config: ServerConfig
    pipeline: Pipeline


def assemble(settings: ServeSettings, resolver_factory: ResolverFactory = default_resolver) -> Assembly:
    config = server_config(settings)
    policies = build_policies(settings, resolver_factory)
    pipeline = Pipeline(policies, hostname=config.session.hostname, timeout=config.decision_timeout)
    return Assembly(config, pipeline)


def build_policies(settings: ServeSettings, resolver_factory: ResolverFactory = default_resolver) -> list[Policy]:
    """The configured policies in the pipeline's order (see the module docstring)."""
    smtp = settings.smtp
    resolver: Resolver | None = None

    def shared_resolver() -> Resolver:
        nonlocal resolver
        if resolver is None:
            resolver = resolver_factory(settings.dns)
        return resolver

    policies: list[Policy] = [RelayPolicy(smtp.accept_domains, smtp.accept_recipients)]
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
