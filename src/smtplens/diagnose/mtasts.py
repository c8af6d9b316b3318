"""MTA-STS discovery records (RFC 8461 section 3.1): parse and check ``_mta-sts.<domain>``.

Only the DNS record is read here. The record merely announces that a policy exists and names its version
(``id``); the policy itself lives at ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` and is not fetched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from smtplens.diagnose import _versioned
from smtplens.diagnose import findings as f
from smtplens.diagnose._tags import EXT_NAME_RE, split_tags
from smtplens.diagnose.dns import Resolver
from smtplens.diagnose.findings import Finding, Severity

__all__ = ["MtaStsLookup", "MtaStsRecord", "MtaStsSelection", "lookup_mtasts", "parse_mtasts", "select_mtasts"]

_ID_RE = re.compile(r"[A-Za-z0-9]{1,32}")  # sts-id = %s"id=" 1*32(ALPHA / DIGIT)
_EXT_VALUE_RE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")  # sts-ext-value: no '=', ';', space or controls
_START_RE = re.compile(r"v=STSv1\s*(;|$)")


@dataclass(frozen=True, slots=True)
class MtaStsRecord:
    """A parsed ``_mta-sts`` TXT record: its version, policy ``id`` and any extension fields."""

    raw: str
    version: str | None
    id: str | None
    extensions: tuple[tuple[str, str], ...] = ()
    findings: tuple[Finding, ...] = field(default=())

    @property
    def valid(self) -> bool:
        return not any(item.severity is Severity.ERROR for item in self.findings)


@dataclass(frozen=True, slots=True)
class MtaStsSelection:
    """Discovery on the TXT strings of one ``_mta-sts`` name: the record if exactly one, the candidates."""

    record: MtaStsRecord | None
    candidates: tuple[str, ...]
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class MtaStsLookup:
    domain: str
    name: str
    record: MtaStsRecord | None
    candidates: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default=())


def parse_mtasts(text: str) -> MtaStsRecord:
    """Parse one MTA-STS TXT record (``v=STSv1; id=...;``) and check it; never raises."""
    out: list[Finding] = []
    tags = split_tags(text, EXT_NAME_RE)
    for problem in tags.problems:
        out.append(
            f.error(
                "mtasts.syntax",
                f"MTA-STS record syntax error: {problem}; senders ignore an invalid record (RFC 8461 section 3.1).",
                "Write the record as 'v=STSv1; id=<1 to 32 letters or digits>;'.",
            )
        )
    values = dict(tags.tags)
    version = values.get("v")
    if not tags.tags or tags.tags[0] != ("v", "STSv1"):
        out.append(
            f.error(
                "mtasts.version",
                "The record does not begin with 'v=STSv1'; senders do not see an MTA-STS policy.",
                "Begin the record with exactly 'v=STSv1;'.",
            )
        )
    policy_id = values.get("id")
    if policy_id is None:
        out.append(
            f.error(
                "mtasts.id_missing",
                "The required 'id' field is missing; senders ignore the record.",
                "Add 'id=' with a new value (for example a timestamp like 20250101T000000) each time the policy "
                "file changes.",
            )
        )
    elif not _ID_RE.fullmatch(policy_id):
        out.append(
            f.error(
                "mtasts.id_invalid",
                f"id={policy_id!r} is not 1 to 32 letters and digits (RFC 8461 section 3.1).",
                "Use only letters and digits in 'id', at most 32 (for example 20250101T000000Z without punctuation).",
            )
        )
    extensions: list[tuple[str, str]] = []
    for name, value in tags.tags:
        if name in ("v", "id"):
            continue
        extensions.append((name, value))
        if not _EXT_VALUE_RE.fullmatch(value):
            out.append(
                f.error(
                    "mtasts.syntax",
                    f"Extension field {name!r} has an invalid value {value!r}.",
                    "Remove the field or give it a value without spaces, '=' or ';'.",
                )
            )
        else:
            out.append(
                f.info(
                    "mtasts.extension",
                    f"Field {name!r} is not defined by RFC 8461; senders ignore it.",
                    "Remove the field unless a tool you use needs it.",
                )
            )
    return MtaStsRecord(text, version, policy_id, tuple(extensions), tuple(out))


def select_mtasts(txts: Sequence[str]) -> MtaStsSelection:
    """RFC 8461 section 3.1: records not beginning with ``v=STSv1;`` are discarded; exactly one must remain."""
    candidates = _versioned.candidates(txts, _START_RE)
    if not candidates:
        return MtaStsSelection(None, (), ())
    if len(candidates) > 1:
        finding = f.error(
            "mtasts.several_records",
            f"{len(candidates)} MTA-STS records are published; senders then assume there is no policy "
            "(RFC 8461 section 3.1).",
            "Delete all but one 'v=STSv1' TXT record.",
        )
        return MtaStsSelection(None, candidates, (finding,))
    return MtaStsSelection(parse_mtasts(candidates[0]), candidates, ())


async def lookup_mtasts(domain: str, resolver: Resolver) -> MtaStsLookup:
    """Query ``_mta-sts.<domain>`` TXT and check it. A DNS failure raises ``DnsTempError``."""
    domain = domain.strip().rstrip(".").lower()
    name = f"_mta-sts.{domain}"
    txts = (await resolver.txt(name)).records
    selection = select_mtasts(txts)
    extra = _versioned.absence(
        txts,
        selection.candidates,
        wrong_version=f.error(
            "mtasts.version",
            f"{name} has TXT records, but none begins with 'v=STSv1;'.",
            "Begin the record with exactly 'v=STSv1;'.",
        ),
        no_record=f.info(
            "mtasts.no_record",
            f"No MTA-STS record at {name}: senders may deliver to {domain} without verified TLS.",
            f"Publish a policy at https://mta-sts.{domain}/.well-known/mta-sts.txt and a TXT record "
            f"'v=STSv1; id=...' at {name}.",
        ),
    )
    record_findings = selection.record.findings if selection.record else ()
    return MtaStsLookup(
        domain, name, selection.record, selection.candidates, (*extra, *selection.findings, *record_findings)
    )
