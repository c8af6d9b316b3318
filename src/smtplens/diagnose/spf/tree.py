"""The include/redirect tree of a domain's SPF record, with the lookup counts of RFC 7208 section 4.6.4.

check_host() stops at the first matching mechanism, so the lookups it counts depend on the client's address. A
domain's operator needs the worst case instead: every DNS-querying term (``include``, ``a``, ``mx``, ``ptr``,
``exists`` and ``redirect``) of the record and of every record it includes or redirects to, and every such term
whose lookup finds nothing (a *void lookup*). :func:`spf_tree` walks the whole tree over an injected resolver,
querying independent terms concurrently, and keeps the details per record so a report can say where the lookups
come from.

What cannot be resolved without a client is counted but not looked up: ``ptr`` and terms whose domain-spec uses
macros other than ``%{d}`` (``exists:%{i}._spf.example.com``). Void lookups are counted, as in check_host(), for
``a`` (no A and no AAAA record), ``mx`` and ``exists``; an ``include`` or ``redirect`` of a name without an SPF
record is a broken branch instead (a permerror, sections 5.2 and 6.1).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from smtplens.diagnose.dns import Answer, DnsError, DnsTempError, Resolver
from smtplens.diagnose.spf.errors import SpfSyntaxError
from smtplens.diagnose.spf.macro import expand
from smtplens.diagnose.spf.names import name_problem, truncate
from smtplens.diagnose.spf.record import DomainSpec, Mechanism, SpfRecord, parse_record, spf_records
from smtplens.diagnose.spf.result import SpfLimits

__all__ = ["NodeStatus", "SpfNode", "SpfTree", "spf_tree"]

MAX_RECORDS = 40
"""Records fetched at most for one tree; far beyond the 10 terms a valid tree can hold (a guard, not a limit)."""


class NodeStatus(StrEnum):
    """Whether a record of the tree could be read; anything but ``ok`` ends check_host() in an error."""

    OK = "ok"
    NO_RECORD = "no_record"
    SEVERAL_RECORDS = "several_records"
    SYNTAX_ERROR = "syntax_error"
    DNS_ERROR = "dns_error"
    LOOP = "loop"
    NOT_FOLLOWED = "not_followed"


@dataclass(frozen=True, slots=True)
class SpfNode:
    """One record of the tree, reached from its parent through ``term`` (empty for the domain's own record).

    ``lookups`` counts this record's own DNS-querying terms, ``void_terms`` lists those whose lookup found
    nothing; ``problem`` says why the record is unusable (when ``status`` is not ``ok``); ``warnings`` lists
    what may break an evaluation; ``notes`` what could not be checked without a client.
    """

    domain: str
    term: str
    status: NodeStatus
    text: str | None = None
    record: SpfRecord | None = None
    lookups: int = 0
    void_terms: tuple[str, ...] = ()
    problem: str | None = None
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    children: tuple[SpfNode, ...] = ()

    @property
    def void_lookups(self) -> int:
        return len(self.void_terms)

    def walk(self) -> Iterator[SpfNode]:
        """This node and all below it, depth first, in record order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def to_dict(self) -> dict[str, object]:
        return {
            "domain": self.domain,
            "term": self.term,
            "status": self.status.value,
            "record": self.text,
            "lookups": self.lookups,
            "void_lookups": self.void_lookups,
            "void_terms": list(self.void_terms),
            "problem": self.problem,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "children": [child.to_dict() for child in self.children],
        }


@dataclass(frozen=True, slots=True)
class SpfTree:
    """The whole tree and its totals, to compare with ``limits`` (RFC 7208 section 4.6.4)."""

    root: SpfNode
    limits: SpfLimits = field(default_factory=SpfLimits)

    @property
    def lookups(self) -> int:
        return sum(node.lookups for node in self.root.walk())

    @property
    def void_lookups(self) -> int:
        return sum(node.void_lookups for node in self.root.walk())

    @property
    def too_many_lookups(self) -> bool:
        return self.lookups > self.limits.dns_terms

    @property
    def too_many_void_lookups(self) -> bool:
        return self.void_lookups > self.limits.void_lookups

    def nodes(self) -> tuple[SpfNode, ...]:
        return tuple(self.root.walk())

    def to_dict(self) -> dict[str, object]:
        return {
            "lookups": self.lookups,
            "void_lookups": self.void_lookups,
            "lookup_limit": self.limits.dns_terms,
            "void_lookup_limit": self.limits.void_lookups,
            "root": self.root.to_dict(),
        }


async def spf_tree(
    domain: str,
    resolver: Resolver,
    *,
    limits: SpfLimits = SpfLimits(),  # noqa: B008 - frozen value
    max_records: int = MAX_RECORDS,
) -> SpfTree:
    """Fetch ``domain``'s SPF record and everything it includes or redirects to; never raises for DNS trouble.

    A DNS failure of a record's TXT lookup marks that node ``dns_error``; a failed ``a``/``mx``/``exists``
    lookup becomes a warning of its record.
    """
    walker = _Walker(resolver, limits, max_records)
    root = await walker.node(domain.strip().rstrip(".").lower(), "", ())
    return SpfTree(root, limits)


@dataclass(frozen=True, slots=True)
class _Term:
    """What one term of a record contributed."""

    void: bool = False
    child: SpfNode | None = None
    warning: str | None = None
    note: str | None = None


class _Walker:
    def __init__(self, resolver: Resolver, limits: SpfLimits, max_records: int) -> None:
        self.resolver = resolver
        self.limits = limits
        self.budget = max_records
        self._queries: dict[tuple[str, str], asyncio.Task[Answer | DnsError]] = {}

    async def query(self, rtype: str, name: str) -> Answer:
        """Each (type, name) is asked once per tree, even when several branches need it at the same time."""
        key = (rtype, name.lower())
        if key not in self._queries:
            self._queries[key] = asyncio.create_task(self._ask(rtype, name))
        result = await self._queries[key]
        if isinstance(result, DnsError):
            raise result
        return result

    async def _ask(self, rtype: str, name: str) -> Answer | DnsError:
        # The task keeps the error as a value: a branch that stops listening leaves no unretrieved exception.
        try:
            answer: Answer = await getattr(self.resolver, rtype)(name)
        except DnsError as exc:
            return exc
        return answer

    async def node(self, domain: str, term: str, ancestors: tuple[str, ...]) -> SpfNode:
        if domain in ancestors:
            chain = " → ".join((*ancestors, domain))
            return SpfNode(domain, term, NodeStatus.LOOP, problem=f"{term} loops back to {domain} ({chain})")
        if self.budget <= 0:
            return SpfNode(
                domain, term, NodeStatus.NOT_FOLLOWED, problem=f"{term} not followed: the tree has too many records"
            )
        self.budget -= 1
        problem = name_problem(domain)
        if problem:
            return SpfNode(domain, term, NodeStatus.NO_RECORD, problem=problem)
        try:
            answer = await self.query("txt", domain)
        except DnsError as exc:
            return SpfNode(domain, term, NodeStatus.DNS_ERROR, problem=f"TXT lookup of {domain} failed: {exc}")
        records = spf_records(answer.records)
        if not records:
            why = "does not exist" if answer.nxdomain else "has no SPF record"
            return SpfNode(domain, term, NodeStatus.NO_RECORD, problem=f"{domain} {why}")
        if len(records) > 1:
            return SpfNode(
                domain,
                term,
                NodeStatus.SEVERAL_RECORDS,
                problem=f"{domain} publishes {len(records)} SPF records; exactly one is allowed (RFC 7208 section 4.5)",
            )
        try:
            record = parse_record(records[0])
        except SpfSyntaxError as exc:
            return SpfNode(domain, term, NodeStatus.SYNTAX_ERROR, text=records[0], problem=str(exc))
        return await self._record(domain, term, record, (*ancestors, domain))

    async def _record(self, domain: str, term: str, record: SpfRecord, ancestors: tuple[str, ...]) -> SpfNode:
        jobs = [self._mechanism(m, domain, ancestors) for m in record.mechanisms if m.queries_dns]
        lookups = len(jobs)
        ignored: list[str] = []
        if record.redirect is not None:
            if any(m.kind == "all" for m in record.mechanisms):
                # RFC 7208 section 6.1: a redirect is ignored when the record has an "all" mechanism.
                ignored.append(f"redirect={record.redirect.text} is ignored because the record has an 'all' mechanism")
            else:
                lookups += 1
                jobs.append(self._follow(f"redirect={record.redirect.text}", record.redirect, domain, ancestors))
        results = await asyncio.gather(*jobs)
        return SpfNode(
            domain,
            term,
            NodeStatus.OK,
            text=record.text,
            record=record,
            lookups=lookups,
            void_terms=tuple(text for text, result in zip(_terms(record), results, strict=True) if result.void),
            warnings=(*ignored, *(r.warning for r in results if r.warning)),
            notes=tuple(r.note for r in results if r.note),
            children=tuple(r.child for r in results if r.child is not None),
        )

    async def _mechanism(self, mechanism: Mechanism, domain: str, ancestors: tuple[str, ...]) -> _Term:
        if mechanism.kind == "include":
            assert mechanism.domain is not None
            return await self._follow(mechanism.text, mechanism.domain, domain, ancestors)
        if mechanism.kind == "ptr":
            return _Term(note=f"{mechanism.text}: depends on the client's address; not looked up")
        target = _static_target(mechanism.domain, domain)
        if target is None:
            return _Term(note=f"{mechanism.text}: depends on the sender (macros); not looked up")
        problem = name_problem(target)
        if problem:
            return _Term(warning=f"{mechanism.text}: {problem}; it never matches")
        try:
            if mechanism.kind == "a":
                answers = await asyncio.gather(self.query("a", target), self.query("aaaa", target))
                return _Term(void=all(answer.void for answer in answers))
            if mechanism.kind == "exists":
                return _Term(void=(await self.query("a", target)).void)
            answer = await self.query("mx", target)
        except DnsTempError as exc:
            return _Term(warning=f"{mechanism.text}: lookup failed ({exc}); check_host() would give temperror")
        except DnsError as exc:
            return _Term(warning=f"{mechanism.text}: {exc}")
        hosts = [record for record in answer.records if record.partition(" ")[2].strip(" .")]
        if len(hosts) > self.limits.mx_names:
            return _Term(
                warning=f"{mechanism.text}: {target} has {len(hosts)} MX hosts; more than {self.limits.mx_names} "
                "is a permerror when none of the first ones matches (RFC 7208 section 4.6.4)"
            )
        return _Term(void=answer.void)

    async def _follow(self, term: str, spec: DomainSpec, domain: str, ancestors: tuple[str, ...]) -> _Term:
        target = _static_target(spec, domain)
        if target is None:
            return _Term(note=f"{term}: depends on the sender (macros); not followed")
        return _Term(child=await self.node(target.lower(), term, ancestors))


def _static_target(spec: DomainSpec | None, domain: str) -> str | None:
    """The target name of a term when it does not depend on the client or sender (only ``%{d}`` macros)."""
    if spec is None:
        return domain
    if spec.letters - {"d"}:
        return None
    return truncate(expand(spec.tokens, {"d": domain}).removesuffix("."))


def _terms(record: SpfRecord) -> list[str]:
    """The texts of the DNS-querying terms in the order :meth:`_Walker._record` evaluates them."""
    texts = [m.text for m in record.mechanisms if m.queries_dns]
    if record.redirect is not None and not any(m.kind == "all" for m in record.mechanisms):
        texts.append(f"redirect={record.redirect.text}")
    return texts
