"""SMTP TLS Reporting records (RFC 8460 section 3): parse and check ``_smtp._tls.<domain>``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from smtplens.diagnose import _versioned
from smtplens.diagnose import findings as f
from smtplens.diagnose._tags import EXT_NAME_RE, split_tags
from smtplens.diagnose.dns import Resolver
from smtplens.diagnose.findings import Finding, Severity

__all__ = ["TlsRptLookup", "TlsRptRecord", "TlsRptSelection", "lookup_tlsrpt", "parse_tlsrpt", "select_tlsrpt"]

_START_RE = re.compile(r"v=TLSRPTv1\s*(;|$)")
_MAILTO_RE = re.compile(r"mailto:[^@\s<>(),;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")
_HTTPS_RE = re.compile(r"https://[A-Za-z0-9.-]+\.[A-Za-z0-9-]+(?::\d+)?(?:/[^\s,;]*)?")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


@dataclass(frozen=True, slots=True)
class TlsRptRecord:
    """A parsed ``_smtp._tls`` record: version, report URIs (``mailto:`` or ``https:``) and extension fields."""

    raw: str
    version: str | None
    rua: tuple[str, ...] = ()
    extensions: tuple[tuple[str, str], ...] = ()
    findings: tuple[Finding, ...] = field(default=())

    @property
    def valid(self) -> bool:
        return not any(item.severity is Severity.ERROR for item in self.findings)


@dataclass(frozen=True, slots=True)
class TlsRptSelection:
    record: TlsRptRecord | None
    candidates: tuple[str, ...]
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class TlsRptLookup:
    domain: str
    name: str
    record: TlsRptRecord | None
    candidates: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default=())


def parse_tlsrpt(text: str) -> TlsRptRecord:
    """Parse one TLS-RPT record (``v=TLSRPTv1; rua=...``) and check it; never raises."""
    out: list[Finding] = []
    tags = split_tags(text, EXT_NAME_RE)
    for problem in tags.problems:
        out.append(
            f.error(
                "tlsrpt.syntax",
                f"TLS-RPT record syntax error: {problem}.",
                "Write the record as 'v=TLSRPTv1; rua=mailto:tls-reports@example.com'.",
            )
        )
    values = dict(tags.tags)
    if not tags.tags or tags.tags[0] != ("v", "TLSRPTv1"):
        out.append(
            f.error(
                "tlsrpt.version",
                "The record does not begin with 'v=TLSRPTv1'; senders send no TLS reports.",
                "Begin the record with exactly 'v=TLSRPTv1;'.",
            )
        )
    uris: list[str] = []
    rua = values.get("rua")
    if rua is None:
        out.append(
            f.error(
                "tlsrpt.rua_missing",
                "The required 'rua' field is missing: there is nowhere to send reports.",
                "Add 'rua=mailto:tls-reports@<your domain>' (or an https:// report endpoint).",
            )
        )
    else:
        for item in (part.strip(" \t") for part in rua.split(",")):
            if _MAILTO_RE.fullmatch(item) or _HTTPS_RE.fullmatch(item):
                uris.append(item)
                continue
            scheme = _SCHEME_RE.match(item)
            if scheme and scheme.group(1).lower() not in ("mailto", "https"):
                out.append(
                    f.error(
                        "tlsrpt.uri_scheme",
                        f"rua URI {item!r} uses {scheme.group(1)!r}; only mailto: and https: are defined "
                        "(RFC 8460 section 3).",
                        "Use a mailto: address or an https:// URL.",
                    )
                )
            else:
                out.append(
                    f.error(
                        "tlsrpt.uri_invalid",
                        f"Invalid rua URI {item!r}.",
                        "Use 'mailto:address@example.com' or 'https://host/path', separated by commas.",
                    )
                )
    extensions = tuple((name, value) for name, value in tags.tags if name not in ("v", "rua"))
    for name, _ in extensions:
        out.append(
            f.info(
                "tlsrpt.extension",
                f"Field {name!r} is not defined by RFC 8460; senders ignore it.",
                "Remove the field unless a tool you use needs it.",
            )
        )
    return TlsRptRecord(text, values.get("v"), tuple(uris), extensions, tuple(out))


def select_tlsrpt(txts: Sequence[str]) -> TlsRptSelection:
    """RFC 8460 section 3: records not beginning with ``v=TLSRPTv1`` are discarded; exactly one must remain."""
    candidates = _versioned.candidates(txts, _START_RE)
    if not candidates:
        return TlsRptSelection(None, (), ())
    if len(candidates) > 1:
        finding = f.error(
            "tlsrpt.several_records",
            f"{len(candidates)} TLS-RPT records are published; senders then send no reports (RFC 8460 section 3).",
            "Delete all but one 'v=TLSRPTv1' TXT record.",
        )
        return TlsRptSelection(None, candidates, (finding,))
    return TlsRptSelection(parse_tlsrpt(candidates[0]), candidates, ())


async def lookup_tlsrpt(domain: str, resolver: Resolver) -> TlsRptLookup:
    """Query ``_smtp._tls.<domain>`` TXT and check it. A DNS failure raises ``DnsTempError``."""
    domain = domain.strip().rstrip(".").lower()
    name = f"_smtp._tls.{domain}"
    txts = (await resolver.txt(name)).records
    selection = select_tlsrpt(txts)
    extra = _versioned.absence(
        txts,
        selection.candidates,
        wrong_version=f.error(
            "tlsrpt.version",
            f"{name} has TXT records, but none begins with 'v=TLSRPTv1'.",
            "Begin the record with exactly 'v=TLSRPTv1;'.",
        ),
        no_record=f.info(
            "tlsrpt.no_record",
            f"No TLS-RPT record at {name}: senders do not report TLS failures for {domain}.",
            f"Publish 'v=TLSRPTv1; rua=mailto:tls-reports@{domain}' at {name}.",
        ),
    )
    record_findings = selection.record.findings if selection.record else ()
    return TlsRptLookup(
        domain, name, selection.record, selection.candidates, (*extra, *selection.findings, *record_findings)
    )
