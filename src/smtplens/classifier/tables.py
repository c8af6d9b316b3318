"""Loading the classifier's data tables: generic phrases per reason, one table per provider, code fallbacks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from smtplens.classifier.matcher import Matcher, Pattern, normalise
from smtplens.classifier.verdict import Decision, DecisionKey, Evidence
from smtplens.knowledge import schema
from smtplens.knowledge.reasons import ReasonInfo, ReasonTable, reason_table

__all__ = ["AfterData", "CodeRule", "Provider", "Tables", "load_tables", "tables"]

_CODE = re.compile(r"(?:[245X]\.\d{1,3}\.\d{1,3}|[2-5]\d\d)")


@dataclass(frozen=True, slots=True)
class CodeRule:
    """A code that signals a reason when no phrase decides: ``X.1.1``, ``5.7.606`` or ``421``."""

    code: str
    reason: str
    source: str
    table: str
    strong: bool  # a specific code (X.1.1) rather than a catch-all (X.0.0, 550)
    evidence: Evidence = field(init=False, compare=False, repr=False)  # the verdict's line when this code decides

    def __post_init__(self) -> None:
        # Built once here rather than for every verdict.
        object.__setattr__(self, "evidence", Evidence("code", self.code, self.reason, self.table, self.source))


@dataclass(frozen=True, slots=True)
class AfterData:
    """What a provider means by a recipient refusal that answers DATA or the end of the data: the address was
    accepted at RCPT TO, so words such as "unknown user" there stand for something else (a recipient's
    reception filter)."""

    reason: str  # what the words say
    means: str  # what the provider means by them after DATA
    source: str
    table: str
    evidence: Evidence = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        said, means = self.reason, self.means
        detail = f"in reply to DATA, after the address was accepted at RCPT TO: words that say {said} mean {means}"
        object.__setattr__(self, "evidence", Evidence("override", detail, self.means, self.table, self.source))


@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    name: str
    hosts: tuple[str, ...]  # remote host name suffixes, lower case
    markers: tuple[str, ...]  # substrings of the (normalised) reply text that name the provider
    codes: Mapping[str, CodeRule]
    after_data: Mapping[str, AfterData] = field(default_factory=dict)  # by the reason the words say


@dataclass(frozen=True)
class Tables:
    matcher: Matcher  # every phrase of every table and every provider marker (kind "marker")
    providers: tuple[Provider, ...]
    codes: Mapping[str, CodeRule]  # generic code fallbacks by code
    greeting: Mapping[str, CodeRule]  # class digit -> reason of a failure at the greeting
    host_index: Mapping[str, Provider]  # host suffix -> provider
    provider_index: Mapping[str, Provider]  # provider id -> provider
    provider_by_name: Mapping[str, Provider]  # provider name -> provider
    provider_evidence: Mapping[str, Evidence]  # provider id -> the evidence line naming it
    english: Mapping[str, ReasonInfo]  # reason id -> the reason with its English texts, looked up once
    # What the classifier decided per key of its decision (see classifier.engine.classify): filled as it runs.
    decisions: dict[DecisionKey, Decision] = field(default_factory=dict, compare=False, repr=False)

    def provider_codes(self, provider: Provider | None) -> Mapping[str, CodeRule]:
        return provider.codes if provider else {}


def _patterns(label: str, data: Mapping[str, object], reasons: ReasonTable, provider: str | None) -> list[Pattern]:
    out = []
    for i, rule in enumerate(schema.tables(schema.Where(label), data, "rule")):
        where = schema.Where(label, f"rule[{i}]")
        reason = schema.req_text(where, rule, "reason")
        if reason not in reasons.reasons:
            raise where.error("reason", f"unknown reason id {reason!r}")
        source = schema.text(where, rule, "source", required=False)
        sample = schema.text(where, rule, "sample", required=False)
        if not source and not sample:
            raise where.error("source", "every rule needs a source or a real sample")
        priority = rule.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise where.error("priority", "expected a whole number")
        for phrase in schema.req_list(where, rule, "phrases"):
            norm = normalise(phrase)
            parts = tuple(part.strip() for part in norm.split("*")) if "*" in norm else (norm,)
            if not all(parts):
                raise where.error("phrases", f"empty part in {phrase!r}")
            out.append(Pattern(reason, norm, parts, provider, source or f"sample: {sample}", label, priority))
    return out


def _codes(label: str, data: Mapping[str, object], reasons: ReasonTable) -> dict[str, CodeRule]:
    out = {}
    for i, row in enumerate(schema.tables(schema.Where(label), data, "code")):
        where = schema.Where(label, f"code[{i}]")
        code = schema.req_text(where, row, "code")
        if not _CODE.fullmatch(code):
            raise where.error("code", f"not a reply code or enhanced status code: {code!r}")
        reason = schema.req_text(where, row, "reason")
        if reason not in reasons.reasons:
            raise where.error("reason", f"unknown reason id {reason!r}")
        strong = row.get("strong", True)
        if not isinstance(strong, bool):
            raise where.error("strong", "expected true or false")
        out[code] = CodeRule(code, reason, schema.req_text(where, row, "source"), label, strong)
    return out


def _greeting(label: str, data: Mapping[str, object], reasons: ReasonTable) -> dict[str, CodeRule]:
    """``[[greeting]]`` rows: the reason of a failure at the greeting, by class digit."""
    out = {}
    for i, row in enumerate(schema.tables(schema.Where(label), data, "greeting")):
        where = schema.Where(label, f"greeting[{i}]")
        digit = schema.req_text(where, row, "class")
        if digit not in ("4", "5"):
            raise where.error("class", f"expected 4 or 5, not {digit!r}")
        reason = schema.req_text(where, row, "reason")
        if reason not in reasons.reasons:
            raise where.error("reason", f"unknown reason id {reason!r}")
        out[digit] = CodeRule(f"{digit}xx at the greeting", reason, schema.req_text(where, row, "source"), label, False)
    return out


def _after_data(label: str, data: Mapping[str, object], reasons: ReasonTable) -> dict[str, AfterData]:
    """``[[after_data]]`` rows of a provider table: ``reason`` (what the words say) → ``means`` (what the
    provider means by them in reply to DATA or to the end of the data)."""
    out = {}
    for i, row in enumerate(schema.tables(schema.Where(label), data, "after_data")):
        where = schema.Where(label, f"after_data[{i}]")
        reason, means = schema.req_text(where, row, "reason"), schema.req_text(where, row, "means")
        for name, value in (("reason", reason), ("means", means)):
            if value not in reasons.reasons:
                raise where.error(name, f"unknown reason id {value!r}")
        out[reason] = AfterData(reason, means, schema.req_text(where, row, "source"), label)
    return out


def load_tables(root: Traversable | None = None, reasons: ReasonTable | None = None) -> Tables:
    """Load every table under ``root`` (the package's ``classifier/rules`` folder by default)."""
    root = root or resources.files("smtplens.classifier") / "rules"
    reasons = reasons or reason_table()
    patterns = []
    generic = schema.read_toml(root / "generic.toml", "rules/generic.toml")
    patterns += _patterns("rules/generic.toml", generic, reasons, None)
    codes_data = schema.read_toml(root / "codes.toml", "rules/codes.toml")
    codes = _codes("rules/codes.toml", codes_data, reasons)
    greeting = _greeting("rules/codes.toml", codes_data, reasons)
    providers = []
    for node in sorted((root / "providers").iterdir(), key=lambda n: n.name):
        if not node.name.endswith(".toml"):
            continue
        label = f"rules/providers/{node.name}"
        data = schema.read_toml(node, label)
        where = schema.Where(label)
        name = schema.req_text(where, data, "provider")
        hosts = tuple(h.lower().lstrip(".") for h in schema.text_list(where, data, "hosts", required=False) or ())
        markers = tuple(normalise(m) for m in schema.text_list(where, data, "markers", required=False) or ())
        if not hosts and not markers:
            raise where.error("hosts", "a provider needs host suffixes or text markers to be recognised")
        patterns += _patterns(label, data, reasons, name)
        own_codes, after_data = _codes(label, data, reasons), _after_data(label, data, reasons)
        providers.append(Provider(node.name.removesuffix(".toml"), name, hosts, markers, own_codes, after_data))
    marker_patterns = [
        Pattern(p.id, m, tuple(part.strip() for part in m.split("*")), p.name, "marker", p.id, kind="marker")
        for p in providers
        for m in p.markers
    ]
    host_index: dict[str, Provider] = {}
    for p in providers:
        for suffix in p.hosts:
            host_index.setdefault(suffix, p)
    return Tables(
        matcher=Matcher(patterns + marker_patterns),
        providers=tuple(providers),
        codes=codes,
        greeting=greeting,
        host_index=host_index,
        provider_index={p.id: p for p in providers},
        provider_by_name={p.name: p for p in providers},
        provider_evidence={
            p.id: Evidence("provider", p.name, None, f"rules/providers/{p.id}.toml", ", ".join(p.hosts + p.markers))
            for p in providers
        },
        english={reason_id: reasons.info(reason_id) for reason_id in reasons.reasons},
    )


@cache
def tables() -> Tables:
    """The shipped tables, loaded and validated once per process."""
    return load_tables()
