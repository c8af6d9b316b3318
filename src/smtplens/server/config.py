"""The TOML configuration of ``smtplens serve`` (docs/server-config.md), read into typed settings.

:func:`load_config` reads a file, :func:`parse_config` a parsed mapping; both return :class:`ServeSettings`
or raise :class:`ConfigError`, whose message names the file, the key (``smtp.limits.recipients``) and what is
wrong with it. Unknown keys are errors too (with the known keys listed), so a typo never silently does
nothing. Relative paths (TLS certificate, store directory) are relative to the configuration file.

This module only reads and checks; :mod:`smtplens.server.assemble` turns settings into a server, a store and
a policy pipeline. Command-line flags override the file: ``smtplens serve`` applies them with
:func:`dataclasses.replace` on the settings.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smtplens.server.config_checks import CheckSettings, parse_checks
from smtplens.server.config_table import ConfigError, Table, parse_address
from smtplens.server.decisions import Decision, DecisionError
from smtplens.server.policies.ratelimit import Per, RateLimit, What
from smtplens.server.protocol import Limits
from smtplens.server.scenarios import Scenario, ScenarioError, load_scenarios

__all__ = [
    "AccessSettings",
    "ConfigError",
    "DnsblSettings",
    "GreylistSettings",
    "HttpSettings",
    "ServeSettings",
    "SmtpSettings",
    "StoreSettings",
    "load_config",
    "parse_address",
    "parse_config",
    "parse_decision",
]

# ------------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    listen: tuple[str, int] = ("127.0.0.1", 2525)
    hostname: str = "localhost"
    banner: str = "ESMTP smtplens"
    max_connections: int = 1000
    max_per_ip: int = 100
    maintenance: bool = False
    accept_domains: frozenset[str] = frozenset()
    accept_recipients: frozenset[str] = frozenset()
    idle_timeout: float = 300.0
    data_timeout: float = 180.0
    decision_timeout: float = 30.0
    shutdown_grace: float = 30.0
    reject_bare_lf: bool = False
    chunking: bool = False
    require_tls: bool = False
    limits: Limits = field(default_factory=Limits)
    certificate: Path | None = None
    private_key: Path | None = None
    users: Mapping[str, str] = field(default_factory=dict)
    auth_without_tls: bool = False
    require_auth: bool = False


@dataclass(frozen=True, slots=True)
class HttpSettings:
    listen: tuple[str, int] | None = None  # None: no HTTP API


@dataclass(frozen=True, slots=True)
class StoreSettings:
    directory: Path | None = None  # None: $XDG_DATA_HOME/smtplens
    enabled: bool = True  # False: accept and discard (benchmarks); nothing is durable then
    retention_count: int | None = None
    retention_seconds: float | None = None
    purge_interval: float = 60.0  # how often the retention limits are applied while serving


@dataclass(frozen=True, slots=True)
class GreylistSettings:
    delay: float = 300.0
    retry_window: float = 25 * 3600.0
    lifetime: float = 35 * 86400.0


@dataclass(frozen=True, slots=True)
class DnsblSettings:
    zones: tuple[str, ...] = ()
    at: str = "greeting"  # or "rcpt"


@dataclass(frozen=True, slots=True)
class AccessRuleSettings:
    pattern: str
    decision: Decision | None = None


@dataclass(frozen=True, slots=True)
class AccessSettings:
    clients: tuple[AccessRuleSettings, ...] = ()
    senders: tuple[AccessRuleSettings, ...] = ()
    recipients: tuple[AccessRuleSettings, ...] = ()
    client_stage: str = "connect"


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """Everything ``smtplens serve`` can be told; the defaults are what it does with no file and no flag."""

    smtp: SmtpSettings = SmtpSettings()
    http: HttpSettings = HttpSettings()
    store: StoreSettings = StoreSettings()
    dns: tuple[str, int] | None = None  # None: the system's resolver
    rate_limits: tuple[RateLimit, ...] = ()
    greylist: GreylistSettings | None = None
    dnsbl: DnsblSettings | None = None
    access: AccessSettings | None = None
    checks: CheckSettings = field(default_factory=CheckSettings)  # [spf] [dkim] [dmarc] [content] [spam]
    scenarios: tuple[Scenario, ...] = ()  # the [[scenario]] tables (docs/scenarios.md)


# ------------------------------------------------------------------------------------------------- reading


def load_config(path: str | Path) -> ServeSettings:
    """Read and check a TOML configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read the file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"not UTF-8 text: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from exc
    return parse_config(data, base=path.parent, source=str(path))


def parse_config(data: Mapping[str, Any], *, base: Path | None = None, source: str = "config") -> ServeSettings:
    """Check a parsed configuration; relative paths are taken from ``base`` (the current directory if None)."""
    top = Table(data, "", source, base or Path.cwd())
    smtp = _smtp(top.table("smtp"))
    http_table = top.table("http")
    http = HttpSettings(listen=http_table.address("listen", None))
    http_table.done()
    store_table = top.table("store")
    store = StoreSettings(
        directory=store_table.path("directory", None),
        enabled=store_table.get("enabled", bool, True),
        retention_count=store_table.number("retention_count", int, None, minimum=0),
        retention_seconds=store_table.number("retention_seconds", float, None, minimum=0),
        purge_interval=store_table.number("purge_interval", float, 60.0, minimum=0.01),
    )
    store_table.done()
    dns_table = top.table("dns")
    dns = dns_table.address("server", None)
    dns_table.done()
    settings = ServeSettings(
        smtp=smtp,
        http=http,
        store=store,
        dns=dns,
        rate_limits=tuple(_rate_limit(row) for row in top.tables("rate_limit")),
        greylist=_greylist(top.table("greylist")) if "greylist" in data else None,
        dnsbl=_dnsbl(top.table("dnsbl")) if "dnsbl" in data else None,
        access=_access(top.table("access")) if "access" in data else None,
        checks=parse_checks(top),
        scenarios=_scenarios(top, source),
    )
    top.done()
    return settings


def parse_decision(spec: Mapping[str, Any]) -> Decision:
    """A reply given as ``{action = "reject"|"defer"|"accept", code, enhanced, text, disconnect}``."""
    action = spec.get("action", "reject")
    if action not in ("accept", "reject", "defer"):
        raise ValueError(f"action must be accept, reject or defer, not {action!r}")
    if action == "accept":
        return Decision.accept(text=_optional_str(spec, "text"))
    disconnect = spec.get("disconnect", False)
    if not isinstance(disconnect, bool):
        raise ValueError("disconnect must be true or false")
    make = Decision.reject if action == "reject" else Decision.defer
    return make(
        code=_optional_str(spec, "code"),
        enhanced=_optional_str(spec, "enhanced"),
        text=_optional_str(spec, "text"),
        disconnect=disconnect,
    )


def _optional_str(spec: Mapping[str, Any], key: str) -> str | None:
    value = spec.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


# ----------------------------------------------------------------------------------------------- sections


def _smtp(table: Table) -> SmtpSettings:
    limits_table = table.table("limits")
    defaults = Limits()
    limits = Limits(
        command_line=limits_table.number("command_line", int, defaults.command_line, minimum=1),
        text_line=limits_table.number("text_line", int, defaults.text_line, minimum=1),
        message_size=limits_table.number("message_size", int, defaults.message_size, minimum=0),
        recipients=limits_table.number("recipients", int, defaults.recipients, minimum=1),
        errors=limits_table.number("errors", int, defaults.errors, minimum=1),
        transcript=limits_table.number("transcript", int, defaults.transcript, minimum=1),
    )
    limits_table.done()
    tls = table.table("tls")
    certificate = tls.path("certificate", None)
    private_key = tls.path("key", None)
    if private_key is not None and certificate is None:
        raise ConfigError(tls.source, tls.key("key"), "a key needs a certificate")
    tls.done()
    auth = table.table("auth")
    users = auth.get("users", dict, {})
    for user, password in users.items():
        if not isinstance(password, str):
            raise ConfigError(auth.source, auth.key(f"users.{user}"), "must be a string (the password)")
    auth_without_tls = auth.get("without_tls", bool, False)
    require_auth = auth.get("required", bool, False)
    auth.done()
    default = SmtpSettings()
    settings = SmtpSettings(
        listen=table.address("listen", default.listen) or default.listen,
        hostname=table.get("hostname", str, default.hostname),
        banner=table.get("banner", str, default.banner),
        max_connections=table.number("max_connections", int, default.max_connections, minimum=1),
        max_per_ip=table.number("max_per_ip", int, default.max_per_ip, minimum=1),
        maintenance=table.get("maintenance", bool, False),
        accept_domains=frozenset(d.lower() for d in table.strings("accept_domains")),
        accept_recipients=frozenset(r.lower() for r in table.strings("accept_recipients")),
        idle_timeout=table.number("idle_timeout", float, default.idle_timeout, minimum=0.001),
        data_timeout=table.number("data_timeout", float, default.data_timeout, minimum=0.001),
        decision_timeout=table.number("decision_timeout", float, default.decision_timeout, minimum=0.001),
        shutdown_grace=table.number("shutdown_grace", float, default.shutdown_grace, minimum=0),
        reject_bare_lf=table.get("reject_bare_lf", bool, False),
        chunking=table.get("chunking", bool, False),
        require_tls=table.get("require_tls", bool, False),
        limits=limits,
        certificate=certificate,
        private_key=private_key,
        users=dict(users),
        auth_without_tls=auth_without_tls,
        require_auth=require_auth,
    )
    table.done()
    return settings


def _scenarios(top: Table, source: str) -> tuple[Scenario, ...]:
    rows = [row.raw() for row in top.tables("scenario")]
    try:
        return tuple(load_scenarios({"scenario": rows}))
    except ScenarioError as exc:
        raise ConfigError(source, "scenario", str(exc)) from exc


_WHAT: tuple[What, ...] = ("connections", "messages", "recipients")
_PER: tuple[Per, ...] = ("client", "sender_domain", "recipient_domain")


def _rate_limit(table: Table) -> RateLimit:
    what = table.choice("what", _WHAT)
    per = table.choice("per", _PER, "client")
    count = table.number("count", int, None, minimum=1)
    window = table.number("window", float, None, minimum=0.001)
    if count is None or window is None:
        raise ConfigError(table.source, table.path_name, "a rate limit needs count and window")
    table.done()
    try:
        return RateLimit(what, per, count, window)
    except ValueError as exc:
        raise ConfigError(table.source, table.path_name, str(exc)) from exc


def _greylist(table: Table) -> GreylistSettings:
    default = GreylistSettings()
    settings = GreylistSettings(
        delay=table.number("delay", float, default.delay, minimum=0),
        retry_window=table.number("retry_window", float, default.retry_window, minimum=0.001),
        lifetime=table.number("lifetime", float, default.lifetime, minimum=0.001),
    )
    table.done()
    return settings


def _dnsbl(table: Table) -> DnsblSettings:
    zones = table.strings("zones")
    if not zones:
        raise ConfigError(table.source, table.key("zones"), "list at least one zone")
    settings = DnsblSettings(zones=tuple(zones), at=table.choice("at", ("greeting", "rcpt"), "greeting"))
    table.done()
    return settings


def _access(table: Table) -> AccessSettings:
    def rules(name: str) -> tuple[AccessRuleSettings, ...]:
        found = []
        for row in table.tables(name):
            pattern = row.get("pattern", str, "")
            if not pattern:
                raise ConfigError(row.source, row.key("pattern"), "required")
            spec = {key: row.get(key, object, None) for key in ("action", "code", "enhanced", "text", "disconnect")}
            decision = None
            if any(value is not None for value in spec.values()):
                try:
                    decision = parse_decision({k: v for k, v in spec.items() if v is not None})
                except (ValueError, DecisionError) as exc:
                    raise ConfigError(row.source, row.path_name, str(exc)) from exc
            row.done()
            found.append(AccessRuleSettings(pattern, decision))
        return tuple(found)

    settings = AccessSettings(
        clients=rules("client"),
        senders=rules("sender"),
        recipients=rules("recipient"),
        client_stage=table.choice("client_stage", ("connect", "helo", "mail", "rcpt"), "connect"),
    )
    table.done()
    return settings
