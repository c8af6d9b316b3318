"""DMARC policy records (RFC 7489, with the DMARCbis additions ``np``, ``psd`` and ``t``): parse and check.

:func:`parse_dmarc` reads one record and never raises; what is wrong or worth knowing comes back as
:class:`~smtplens.diagnose.findings.Finding` values on the record. :func:`select_dmarc` applies the discovery rule
of RFC 7489 section 6.6.3 to the TXT strings of a ``_dmarc`` name (zero or several DMARC records mean no policy),
and :func:`lookup_dmarc` asks an injected resolver.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from smtplens.diagnose import findings as f
from smtplens.diagnose._tags import split_tags, squeeze
from smtplens.diagnose.dns import Resolver
from smtplens.diagnose.findings import Finding, Severity

__all__ = [
    "DMARCBIS_TAGS",
    "RFC7489_TAGS",
    "DmarcLookup",
    "DmarcRecord",
    "DmarcSelection",
    "DmarcUri",
    "lookup_dmarc",
    "parse_dmarc",
    "select_dmarc",
]

#: Tags of RFC 7489 section 6.3.
RFC7489_TAGS = ("v", "p", "sp", "adkim", "aspf", "pct", "rua", "ruf", "fo", "rf", "ri")
#: Tags added by DMARCbis (draft-ietf-dmarc-dmarcbis): ``np`` policy for non-existent subdomains, ``psd`` public
#: suffix domain flag, ``t`` testing mode (which replaces ``pct``).
DMARCBIS_TAGS = ("np", "psd", "t")

POLICIES = ("none", "quarantine", "reject")
_FO_OPTIONS = ("0", "1", "d", "s")
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# RFC 7489 section 6.4: dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]
_URI_RE = re.compile(r"(?P<uri>[A-Za-z][A-Za-z0-9+.-]*:[^!\s]+)(?:!(?P<size>\d+)(?P<unit>[kmgtKMGT]?))?")
_MAILBOX_RE = re.compile(r"[^@\s<>(),;:\"]+@(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)")
_DMARC_START_RE = re.compile(r"\s*v\s*=\s*DMARC1\s*(;|$)", re.IGNORECASE)
_UINT32_MAX = 2**32 - 1


@dataclass(frozen=True, slots=True)
class DmarcUri:
    """One ``rua``/``ruf`` destination: the URI, its scheme, the mailbox of a ``mailto:`` URI and the size limit."""

    uri: str
    scheme: str
    address: str | None = None
    max_size: int | None = None


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """A parsed DMARC record. Values are as published; tags with an RFC default carry that default when absent.

    ``policy`` is ``None`` when ``p`` is missing or invalid. ``subdomain_policy`` and
    ``nonexistent_subdomain_policy`` are ``None`` when not published (see the ``effective_*`` properties).
    """

    raw: str
    version: str | None
    policy: str | None
    subdomain_policy: str | None = None
    nonexistent_subdomain_policy: str | None = None  # DMARCbis np
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    rua: tuple[DmarcUri, ...] = ()
    ruf: tuple[DmarcUri, ...] = ()
    fo: tuple[str, ...] = ("0",)
    rf: tuple[str, ...] = ("afrf",)
    ri: int = 86400
    psd: str | None = None  # DMARCbis psd: y / n / u
    testing: bool = False  # DMARCbis t=y
    tags: tuple[tuple[str, str], ...] = ()
    findings: tuple[Finding, ...] = field(default=())

    @property
    def valid(self) -> bool:
        """True when no finding is an error."""
        return not any(item.severity is Severity.ERROR for item in self.findings)

    @property
    def effective_subdomain_policy(self) -> str | None:
        return self.subdomain_policy or self.policy

    @property
    def effective_nonexistent_subdomain_policy(self) -> str | None:
        return self.nonexistent_subdomain_policy or self.effective_subdomain_policy


@dataclass(frozen=True, slots=True)
class DmarcSelection:
    """The outcome of policy discovery on the TXT strings of one ``_dmarc`` name."""

    record: DmarcRecord | None
    candidates: tuple[str, ...]
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class DmarcLookup:
    """What :func:`lookup_dmarc` found: where it looked, the record (if exactly one), every finding."""

    domain: str
    name: str
    record: DmarcRecord | None
    candidates: tuple[str, ...] = ()
    inherited: bool = False
    findings: tuple[Finding, ...] = field(default=())


def parse_dmarc(text: str) -> DmarcRecord:
    """Parse one DMARC record and check it; never raises."""
    out: list[Finding] = []
    tags = split_tags(text)
    for problem in tags.problems:
        out.append(
            f.error(
                "dmarc.syntax",
                f"DMARC syntax error: {problem}.",
                "Write the record as 'tag=value' pairs separated by ';', each tag once.",
            )
        )
    values = dict(tags.tags)

    version = values.get("v")
    if not tags.tags or tags.tags[0][0] != "v" or version != "DMARC1":
        out.append(
            f.error(
                "dmarc.version",
                "The record does not start with 'v=DMARC1'; receivers ignore it (RFC 7489 section 6.3).",
                "Begin the record with exactly 'v=DMARC1;'.",
            )
        )

    policy = _policy(values, "p", out)
    if "p" not in values:
        out.append(
            f.error(
                "dmarc.p_missing",
                "The required 'p' tag is missing; receivers treat the record as p=none at best "
                "(RFC 7489 section 6.6.3).",
                "Add 'p=none' to start monitoring, then move to 'p=quarantine' or 'p=reject'.",
            )
        )
    elif policy == "none":
        out.append(
            f.warning(
                "dmarc.p_none",
                "p=none only monitors: mail that fails DMARC is still delivered.",
                "Once the aggregate reports show all legitimate mail passing, move to 'p=quarantine' and then "
                "'p=reject'.",
            )
        )

    subdomain_policy = _policy(values, "sp", out)
    if subdomain_policy == "none" and policy in ("quarantine", "reject"):
        out.append(
            f.warning(
                "dmarc.sp_none",
                f"Subdomains are only monitored (sp=none) although the domain itself has p={policy}.",
                "Remove 'sp=none' unless a subdomain really still sends unauthenticated mail.",
            )
        )
    nonexistent_policy = _policy(values, "np", out)

    adkim = _alignment(values, "adkim", out)
    aspf = _alignment(values, "aspf", out)
    pct = _pct(values, out)
    rua = _uris(values, "rua", out)
    ruf = _uris(values, "ruf", out)
    if "rua" not in values:
        out.append(
            f.warning(
                "dmarc.no_rua",
                "No 'rua' tag: nobody receives aggregate reports, so failures stay invisible.",
                "Add 'rua=mailto:dmarc-reports@<your domain>' (or a report service's address).",
            )
        )
    fo = _colon_list(values, "fo", _FO_OPTIONS, ("0",), out)
    rf = _colon_list(values, "rf", ("afrf",), ("afrf",), out)
    ri = _ri(values, out)
    psd = _choice(values, "psd", ("y", "n", "u"), out)
    testing = _choice(values, "t", ("y", "n"), out) == "y"
    if testing:
        out.append(
            f.info(
                "dmarc.testing",
                "t=y (DMARCbis): the policy is in testing mode and receivers apply one step less strict.",
                "Remove 't=y' when the policy is meant to be enforced.",
            )
        )

    for name in tags.names:
        if name not in RFC7489_TAGS and name not in DMARCBIS_TAGS:
            out.append(
                f.warning(
                    "dmarc.unknown_tag",
                    f"Unknown tag {name!r}; receivers ignore it (RFC 7489 section 6.3).",
                    "Remove the tag or correct its spelling.",
                )
            )

    return DmarcRecord(
        raw=text,
        version=version,
        policy=policy,
        subdomain_policy=subdomain_policy,
        nonexistent_subdomain_policy=nonexistent_policy,
        adkim=adkim,
        aspf=aspf,
        pct=pct,
        rua=rua,
        ruf=ruf,
        fo=fo,
        rf=rf,
        ri=ri,
        psd=psd,
        testing=testing,
        tags=tags.tags,
        findings=tuple(out),
    )


def select_dmarc(txts: Sequence[str]) -> DmarcSelection:
    """Policy discovery on the TXT strings of one name (RFC 7489 section 6.6.3, steps 3 and 4).

    Strings that do not begin with ``v=DMARC1`` are not DMARC records and are skipped. Exactly one must remain;
    with several, receivers apply no policy at all.
    """
    candidates = tuple(txt for txt in txts if _DMARC_START_RE.match(txt))
    if not candidates:
        return DmarcSelection(None, (), ())
    if len(candidates) > 1:
        finding = f.error(
            "dmarc.several_records",
            f"{len(candidates)} DMARC records are published; receivers then apply no DMARC policy at all "
            "(RFC 7489 section 6.6.3).",
            "Delete all but one DMARC TXT record.",
        )
        return DmarcSelection(None, candidates, (finding,))
    return DmarcSelection(parse_dmarc(candidates[0]), candidates, ())


async def lookup_dmarc(domain: str, resolver: Resolver) -> DmarcLookup:
    """Find and check the DMARC record that applies to ``domain``.

    Queries ``_dmarc.<domain>``; when that name has no DMARC record and ``domain`` has more than two labels, it
    also queries ``_dmarc.<parent>``, one label up, whose subdomain policy then applies. Without the public
    suffix list this is an approximation of the organizational domain of RFC 7489 section 3.2: it is wrong for
    names like ``a.b.example.co.uk`` (one label up is not the organizational domain) and for DMARCbis tree walks.
    A DNS failure raises :class:`~smtplens.diagnose.dns.DnsTempError`.
    """
    domain = _normalise(domain)
    name = f"_dmarc.{domain}"
    selection = select_dmarc((await resolver.txt(name)).records)
    inherited = False
    extra: list[Finding] = []
    labels = domain.split(".")
    if not selection.candidates and len(labels) > 2:
        parent = ".".join(labels[1:])
        parent_name = f"_dmarc.{parent}"
        parent_selection = select_dmarc((await resolver.txt(parent_name)).records)
        if parent_selection.candidates:
            name, selection, inherited = parent_name, parent_selection, True
            extra.append(
                f.info(
                    "dmarc.inherited",
                    f"{domain} has no DMARC record of its own; the record of {parent} applies through its "
                    "subdomain policy (parent found one label up, without the public suffix list).",
                    f"Publish a record at _dmarc.{domain} if {domain} needs a policy of its own.",
                )
            )
    if not selection.candidates:
        extra.append(
            f.error(
                "dmarc.no_record",
                f"No DMARC record at _dmarc.{domain}"
                + (f" nor at _dmarc.{'.'.join(labels[1:])}" if len(labels) > 2 else "")
                + "; receivers apply no DMARC policy.",
                f"Publish a TXT record at _dmarc.{domain}, for example 'v=DMARC1; p=none; "
                f"rua=mailto:dmarc-reports@{domain}'.",
            )
        )
    record_findings = selection.record.findings if selection.record else ()
    return DmarcLookup(
        domain=domain,
        name=name,
        record=selection.record,
        candidates=selection.candidates,
        inherited=inherited,
        findings=(*extra, *selection.findings, *record_findings),
    )


def _normalise(domain: str) -> str:
    return domain.strip().rstrip(".").lower()


def _invalid(tag: str, value: str, expected: str) -> Finding:
    return f.error(
        "dmarc.tag_invalid",
        f"Invalid value {value!r} for '{tag}'; receivers ignore it and use the default.",
        f"Set '{tag}' to {expected}.",
    )


def _policy(values: dict[str, str], tag: str, out: list[Finding]) -> str | None:
    value = values.get(tag)
    if value is None:
        return None
    if value.lower() in POLICIES:
        return value.lower()
    if tag == "p":
        out.append(
            f.error(
                "dmarc.p_invalid",
                f"Invalid policy p={value!r}; it must be none, quarantine or reject.",
                "Set 'p' to none, quarantine or reject.",
            )
        )
    else:
        out.append(_invalid(tag, value, "none, quarantine or reject"))
    return None


def _alignment(values: dict[str, str], tag: str, out: list[Finding]) -> str:
    value = values.get(tag)
    if value is None:
        return "r"
    if value.lower() in ("r", "s"):
        return value.lower()
    out.append(_invalid(tag, value, "'r' (relaxed) or 's' (strict)"))
    return "r"


def _pct(values: dict[str, str], out: list[Finding]) -> int:
    value = values.get("pct")
    if value is None:
        return 100
    if not value.isdigit() or int(value) > 100:
        out.append(_invalid("pct", value, "a whole number from 0 to 100"))
        return 100
    pct = int(value)
    if pct < 100:
        out.append(
            f.warning(
                "dmarc.pct_partial",
                f"pct={pct}: the policy applies to only {pct}% of failing mail"
                + (" (none at all)" if pct == 0 else "")
                + "; the rest is treated one step less strictly.",
                "Raise pct to 100 (or drop the tag) once the reports show no legitimate failures.",
            )
        )
    return pct


def _uris(values: dict[str, str], tag: str, out: list[Finding]) -> tuple[DmarcUri, ...]:
    value = values.get(tag)
    if value is None:
        return ()
    uris: list[DmarcUri] = []
    for item in (part.strip() for part in value.split(",")):
        uri = _parse_uri(item)
        if uri is None:
            out.append(
                f.error(
                    "dmarc.uri_invalid",
                    f"Invalid {tag} URI {item!r}; reports cannot be sent there.",
                    f"Use 'mailto:address@example.com' URIs, separated by commas, in '{tag}'.",
                )
            )
            continue
        if uri.scheme != "mailto":
            out.append(
                f.warning(
                    "dmarc.uri_scheme",
                    f"{tag} URI {item!r} is not a mailto: URI; receivers are only required to send reports by "
                    "mail (RFC 7489 section 7.1).",
                    "Use a mailto: URI.",
                )
            )
        uris.append(uri)
    return tuple(uris)


def _parse_uri(text: str) -> DmarcUri | None:
    match = _URI_RE.fullmatch(text)
    if match is None:
        return None
    uri = match["uri"]
    scheme, _, rest = uri.partition(":")
    scheme = scheme.lower()
    size = int(match["size"]) * _SIZE_UNITS[match["unit"].lower()] if match["size"] else None
    if scheme == "mailto":
        mailbox = _MAILBOX_RE.fullmatch(rest.split("?", 1)[0])
        if mailbox is None or "." not in mailbox["domain"]:
            return None
        return DmarcUri(uri, scheme, mailbox.group(0), size)
    if scheme in ("http", "https") and not rest.startswith("//"):
        return None
    return DmarcUri(uri, scheme, None, size)


def _colon_list(
    values: dict[str, str], tag: str, allowed: tuple[str, ...], default: tuple[str, ...], out: list[Finding]
) -> tuple[str, ...]:
    value = values.get(tag)
    if value is None:
        return default
    items = tuple(item for item in squeeze(value).split(":") if item)
    good = tuple(item for item in items if item.lower() in allowed)
    if not items or len(good) != len(items):
        out.append(_invalid(tag, value, " or ".join(repr(item) for item in allowed) + " (separated by ':')"))
    return tuple(item.lower() for item in good) or default


def _ri(values: dict[str, str], out: list[Finding]) -> int:
    value = values.get("ri")
    if value is None:
        return 86400
    if not value.isdigit() or int(value) > _UINT32_MAX:
        out.append(_invalid("ri", value, "a number of seconds (86400 is one day)"))
        return 86400
    return int(value)


def _choice(values: dict[str, str], tag: str, allowed: tuple[str, ...], out: list[Finding]) -> str | None:
    value = values.get(tag)
    if value is None:
        return None
    if value.lower() in allowed:
        return value.lower()
    out.append(_invalid(tag, value, " or ".join(repr(item) for item in allowed)))
    return None
