"""The message-check sections of the ``smtplens serve`` configuration: ``[spf]``, ``[dkim]``, ``[dmarc]``,
``[content]`` and ``[spam]`` (docs/server-config.md, docs/server-policies.md).

A section that is present switches its check on; its keys are the options of the policy it configures
(:mod:`smtplens.server.policies`). Reading is pure and checked like the rest of the configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from smtplens.server.config_table import ConfigError, Table
from smtplens.server.policies.content import CHECKS
from smtplens.server.policies.dkim import DkimRequirement
from smtplens.server.policies.dmarc import BadFrom
from smtplens.server.policies.spam import DEFAULT_RULES, SpamRule, Where
from smtplens.server.policies.spf import SpfAction

__all__ = [
    "ContentSettings",
    "DkimSettings",
    "DmarcSettings",
    "SpamSettings",
    "SpfSettings",
    "parse_checks",
]

_SPF_ACTIONS: tuple[SpfAction, ...] = ("accept", "reject", "defer")
_REQUIREMENTS: tuple[DkimRequirement, ...] = ("off", "signed", "pass", "author")
_QUARANTINE: tuple[Literal["accept", "reject"], ...] = ("accept", "reject")
_ON_ERROR: tuple[Literal["defer", "accept"], ...] = ("defer", "accept")
_BAD_FROM: tuple[BadFrom, ...] = ("reject", "malformed", "ignore")
_WHERE: tuple[Where, ...] = ("header", "body", "message")


@dataclass(frozen=True, slots=True)
class SpfSettings:
    """What each SPF result does at MAIL (``pass`` is always accepted)."""

    fail: SpfAction = "reject"
    softfail: SpfAction = "accept"
    neutral: SpfAction = "accept"
    none: SpfAction = "accept"
    temperror: SpfAction = "defer"
    permerror: SpfAction = "accept"
    received_spf: bool = True


@dataclass(frozen=True, slots=True)
class DkimSettings:
    require: DkimRequirement = "off"
    minkey: int = 1024
    max_signatures: int = 5


@dataclass(frozen=True, slots=True)
class DmarcSettings:
    quarantine: Literal["accept", "reject"] = "accept"  # accept with a header, or reject
    on_temperror: Literal["defer", "accept"] = "defer"
    bad_from: BadFrom = "reject"


@dataclass(frozen=True, slots=True)
class ContentSettings:
    disable: tuple[str, ...] = ()
    max_size: int | None = None
    domain_sizes: Mapping[str, int] = field(default_factory=dict)
    max_line: int | None = None


@dataclass(frozen=True, slots=True)
class SpamSettings:
    rules: tuple[SpamRule, ...] = DEFAULT_RULES
    threshold: float = 5.0
    add_status: bool = True
    on_filter_error: Literal["defer", "accept"] = "defer"
    filter: str | None = None  # spamd | rspamd
    filter_address: tuple[str, int] | None = None
    filter_timeout: float = 8.0


@dataclass(frozen=True, slots=True)
class CheckSettings:
    spf: SpfSettings | None = None
    dkim: DkimSettings | None = None
    dmarc: DmarcSettings | None = None
    content: ContentSettings | None = None
    spam: SpamSettings | None = None


def parse_checks(top: Table) -> CheckSettings:
    """The message-check sections of the top-level table (absent sections stay None)."""
    data = top.data
    return CheckSettings(
        spf=_spf(top.table("spf")) if "spf" in data else None,
        dkim=_dkim(top.table("dkim")) if "dkim" in data else None,
        dmarc=_dmarc(top.table("dmarc")) if "dmarc" in data else None,
        content=_content(top.table("content")) if "content" in data else None,
        spam=_spam(top.table("spam")) if "spam" in data else None,
    )


def _spf(table: Table) -> SpfSettings:
    default = SpfSettings()
    settings = SpfSettings(
        fail=table.choice("fail", _SPF_ACTIONS, default.fail),
        softfail=table.choice("softfail", _SPF_ACTIONS, default.softfail),
        neutral=table.choice("neutral", _SPF_ACTIONS, default.neutral),
        none=table.choice("none", _SPF_ACTIONS, default.none),
        temperror=table.choice("temperror", _SPF_ACTIONS, default.temperror),
        permerror=table.choice("permerror", _SPF_ACTIONS, default.permerror),
        received_spf=table.get("received_spf", bool, True),
    )
    table.done()
    return settings


def _dkim(table: Table) -> DkimSettings:
    settings = DkimSettings(
        require=table.choice("require", _REQUIREMENTS, "off"),
        minkey=table.number("minkey", int, 1024, minimum=512),
        max_signatures=table.number("max_signatures", int, 5, minimum=1),
    )
    table.done()
    return settings


def _dmarc(table: Table) -> DmarcSettings:
    settings = DmarcSettings(
        quarantine=table.choice("quarantine", _QUARANTINE, "accept"),
        on_temperror=table.choice("on_temperror", _ON_ERROR, "defer"),
        bad_from=table.choice("bad_from", _BAD_FROM, "reject"),
    )
    table.done()
    return settings


def _content(table: Table) -> ContentSettings:
    disable = table.strings("disable")
    unknown = sorted(set(disable) - set(CHECKS))
    if unknown:
        raise ConfigError(table.source, table.key("disable"), f"unknown checks {unknown}; known: {', '.join(CHECKS)}")
    sizes = table.get("domain_sizes", dict, {})
    for domain, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(table.source, table.key(f"domain_sizes.{domain}"), "must be a positive integer")
    settings = ContentSettings(
        disable=tuple(disable),
        max_size=table.number("max_size", int, None, minimum=1),
        domain_sizes=dict(sizes),
        max_line=table.number("max_line", int, None, minimum=3),
    )
    table.done()
    return settings


def _spam(table: Table) -> SpamSettings:
    rules = list(DEFAULT_RULES) if table.get("default_rules", bool, True) else []
    for row in table.tables("rule"):
        try:
            rules.append(
                SpamRule(
                    name=row.get("name", str, ""),
                    score=row.number("score", float, 1.0, minimum=-1e9),
                    pattern=row.get("pattern", str, ""),
                    where=row.choice("where", _WHERE, "body"),
                    header=row.text("header"),
                    regex=row.get("regex", bool, False),
                    source=row.get("source", str, ""),
                )
            )
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(row.source, row.path_name, str(exc)) from exc
        if not rules[-1].pattern:
            raise ConfigError(row.source, row.key("pattern"), "required")
        row.done()
    spam_filter = table.text("filter")
    if spam_filter is not None and spam_filter not in ("spamd", "rspamd"):
        raise ConfigError(table.source, table.key("filter"), f"must be spamd or rspamd, not {spam_filter!r}")
    address = table.address("filter_address", None)
    if spam_filter is not None and address is None:
        address = ("127.0.0.1", 783 if spam_filter == "spamd" else 11333)
    settings = SpamSettings(
        rules=tuple(rules),
        threshold=table.number("threshold", float, 5.0, minimum=-1e9),
        add_status=table.get("add_status", bool, True),
        on_filter_error=table.choice("on_filter_error", _ON_ERROR, "defer"),
        filter=spam_filter,
        filter_address=address,
        filter_timeout=table.number("filter_timeout", float, 8.0, minimum=0.001),
    )
    table.done()
    return settings
