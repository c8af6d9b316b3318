"""check_host() of RFC 7208 section 4 over an injected :class:`~smtplens.diagnose.dns.Resolver`.

Every lookup goes through the resolver; nothing else touches the network. A DNS timeout or server failure is a
temperror (section 4.4, 5), except where the RFC says to carry on: the ``ptr`` mechanism and ``%{p}`` skip
names that fail (5.5, 7.3) and ``exp`` is ignored (6.2). Errors found deep inside an ``include`` or a
``redirect`` end the whole check, so they travel as :class:`_AbortError` and become the result at the top.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from smtplens.diagnose.dns import Answer, DnsError, DnsTempError, Resolver
from smtplens.diagnose.spf.errors import SpfError, SpfSyntaxError
from smtplens.diagnose.spf.macro import expand, letters, parse_macro_string
from smtplens.diagnose.spf.names import ClientIp, client_ip, identity_problem, ip_macro, name_problem, truncate
from smtplens.diagnose.spf.record import DomainSpec, Mechanism, SpfRecord, parse_record, spf_records
from smtplens.diagnose.spf.result import SpfLimits, SpfOutcome, SpfResult

__all__ = ["check_host", "mail_from_identity"]

_RecordType = Literal["txt", "a", "aaaa", "mx"]


def mail_from_identity(mail_from: str, helo: str) -> tuple[str, str]:
    """``(sender, domain)`` to check for a MAIL FROM: the null reverse-path checks ``postmaster@`` HELO (2.4)."""
    address = mail_from.strip().removeprefix("<").removesuffix(">")
    if not address:
        return f"postmaster@{helo}", helo
    return address, address.rpartition("@")[2]


async def check_host(
    ip: str | ClientIp,
    domain: str,
    sender: str,
    *,
    helo: str,
    resolver: Resolver,
    receiver: str = "smtplens.invalid",
    limits: SpfLimits = SpfLimits(),  # noqa: B008 - frozen value
) -> SpfResult:
    """Evaluate the SPF policy of ``domain`` for a message from ``ip`` with MAIL FROM ``sender``.

    ``sender`` without a local-part gets ``postmaster`` (section 4.3); ``helo`` feeds ``%{h}``, ``receiver``
    feeds ``%{r}`` in explanations. Raises :class:`SpfError` only when ``ip`` is not an IP address.
    """
    try:
        address = client_ip(ip)
    except ValueError as exc:
        raise SpfError(f"not an IP address: {ip!r}") from exc
    local, at, sender_domain = sender.rpartition("@")
    if not at:
        sender_domain = sender
    sender_domain = sender_domain or domain
    local = local or "postmaster"
    check = _Check(resolver, address, local, sender_domain, helo, receiver, limits)
    problem = identity_problem(domain)
    if problem:
        return SpfResult(SpfOutcome.NONE, problems=(problem,))
    try:
        async with asyncio.timeout(limits.timeout):
            verdict = await check.evaluate(domain.removesuffix("."), explain=True)
    except _AbortError as abort:
        check.problems.append(abort.message)
        verdict = _Verdict(abort.outcome)
    except TimeoutError:
        check.problems.append(f"the check took longer than {limits.timeout} seconds (RFC 7208 section 4.6.4)")
        verdict = _Verdict(SpfOutcome.TEMPERROR)
    return SpfResult(
        verdict.outcome, verdict.explanation, verdict.mechanism, check.lookups, check.voids, tuple(check.problems)
    )


class _AbortError(Exception):
    """A permerror or temperror that ends the whole check (includes and redirects pass it up unchanged)."""

    def __init__(self, outcome: SpfOutcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


@dataclass(frozen=True, slots=True)
class _Verdict:
    outcome: SpfOutcome
    explanation: str | None = None
    mechanism: Mechanism | None = None


@dataclass
class _Check:
    """The state of one check_host() call: its inputs, the counters of section 4.6.4 and caches."""

    resolver: Resolver
    ip: ClientIp
    local: str
    sender_domain: str
    helo: str
    receiver: str
    limits: SpfLimits
    lookups: int = 0
    voids: int = 0
    problems: list[str] = field(default_factory=list)
    _ptr: Answer | None = None
    _ptr_failed: bool = False
    _validated: dict[str, bool] = field(default_factory=dict)
    _p_counted: bool = False

    # -- records --------------------------------------------------------------------------------------------

    async def evaluate(self, domain: str, *, explain: bool) -> _Verdict:
        """check_host() for ``domain``: none, neutral, pass, fail or softfail; errors raise :class:`_AbortError`."""
        answer = await self._lookup("txt", domain)
        records = spf_records(answer.records)
        if not records:
            why = "does not exist" if answer.nxdomain else "has no SPF record"
            self.problems.append(f"{domain} {why}")
            return _Verdict(SpfOutcome.NONE)
        if len(records) > 1:
            raise _AbortError(SpfOutcome.PERMERROR, f"{domain} has {len(records)} SPF records; one is allowed (4.5)")
        try:
            record = parse_record(records[0])
        except SpfSyntaxError as exc:
            raise _AbortError(SpfOutcome.PERMERROR, f"{domain}: {exc}") from None
        for mechanism in record.mechanisms:
            if await self._matches(mechanism, domain):
                outcome = SpfOutcome.of(mechanism.qualifier)
                explanation = None
                if explain and outcome is SpfOutcome.FAIL:
                    explanation = await self._explain(record, domain)
                return _Verdict(outcome, explanation, mechanism)
        if record.redirect is not None:
            return await self._redirect(record.redirect, domain, explain=explain)
        return _Verdict(SpfOutcome.NEUTRAL)

    async def _redirect(self, spec: DomainSpec, domain: str, *, explain: bool) -> _Verdict:
        # Section 6.1: only when no mechanism matched; the target's result is the result, a target without
        # an SPF record (or a malformed one) is a permerror; the redirecting record's exp is not used.
        term = f"redirect={spec.text}"
        self._count(term)
        target = await self._target(spec, domain)
        problem = name_problem(target)
        if problem:
            raise _AbortError(SpfOutcome.PERMERROR, f"{term}: {problem}")
        verdict = await self.evaluate(target, explain=explain)
        if verdict.outcome is SpfOutcome.NONE:
            raise _AbortError(SpfOutcome.PERMERROR, f"{term}: {target} has no SPF record (6.1)")
        return verdict

    # -- mechanisms -----------------------------------------------------------------------------------------

    async def _matches(self, mechanism: Mechanism, domain: str) -> bool:
        kind = mechanism.kind
        if kind == "all":
            return True
        if kind in ("ip4", "ip6"):
            assert mechanism.network is not None
            return mechanism.network.version == self.ip.version and self.ip in mechanism.network
        self._count(mechanism.text)
        target = await self._target(mechanism.domain, domain)
        problem = name_problem(target)
        if kind == "include":
            if problem:
                raise _AbortError(SpfOutcome.PERMERROR, f"{mechanism}: {problem}")
            return await self._include(mechanism, target)
        if problem:
            # Sections 4.3 and 4.8: a name that cannot exist matches nothing.
            self.problems.append(f"{mechanism}: {problem}; it does not match")
            return False
        if kind == "ptr":
            return await self._ptr_matches(mechanism, target)
        if kind == "exists":
            # Section 5.7: an A query whatever the IP version; any answer matches.
            answer = await self._lookup("a", target)
            self._void(mechanism, answer)
            return not answer.void
        if kind == "a":
            answer = await self._lookup(self._address_type, target)
            self._void(mechanism, answer)
            return self._any_within(answer.records, mechanism, target)
        return await self._mx_matches(mechanism, target)

    async def _include(self, mechanism: Mechanism, target: str) -> bool:
        # Section 5.2: pass matches; fail, softfail and neutral do not; none is a permerror; the errors
        # already travel as _AbortError. The included record's exp is never used.
        verdict = await self.evaluate(target, explain=False)
        if verdict.outcome is SpfOutcome.NONE:
            raise _AbortError(SpfOutcome.PERMERROR, f"{mechanism}: {target} has no SPF record (5.2)")
        return verdict.outcome is SpfOutcome.PASS

    async def _mx_matches(self, mechanism: Mechanism, target: str) -> bool:
        answer = await self._lookup("mx", target)
        self._void(mechanism, answer)
        hosts = _mx_hosts(answer.records)
        if len(hosts) > self.limits.mx_names:
            self.problems.append(f"{mechanism}: {target} has {len(hosts)} MX hosts; at most 10 are checked")
        for index, host in enumerate(hosts):
            if index >= self.limits.mx_names:
                # Section 4.6.4 ¶2: more than 10 address lookups for one mx is a permerror.
                raise _AbortError(SpfOutcome.PERMERROR, f"{mechanism}: more than {self.limits.mx_names} MX hosts")
            if name_problem(host):
                continue
            addresses = await self._lookup(self._address_type, host)
            if self._any_within(addresses.records, mechanism, host):
                return True
        return False

    async def _ptr_matches(self, mechanism: Mechanism, target: str) -> bool:
        # Section 5.5: validated names (their A/AAAA holds the IP) equal to the target or under it match.
        answer = await self._ptr_answer()
        if answer is None:
            return False
        self._void(mechanism, answer)
        suffix = "." + target.lower()
        for name in self._ptr_names(answer, mechanism.text):
            lowered = name.lower()
            if (lowered == target.lower() or lowered.endswith(suffix)) and await self._is_validated(name):
                return True
        return False

    # -- target names and macros ----------------------------------------------------------------------------

    async def _target(self, spec: DomainSpec | None, domain: str, *, explanation: bool = False) -> str:
        """The target-name of a term: the current domain, or the domain-spec expanded (section 4.8, 7)."""
        if spec is None:
            return domain
        values = await self._values(spec.letters, domain, explanation=explanation)
        return truncate(expand(spec.tokens, values).removesuffix("."))

    async def _values(self, wanted: Iterable[str], domain: str, *, explanation: bool) -> dict[str, str]:
        values: dict[str, str] = {}
        for letter in wanted:
            if letter == "p":
                values[letter] = await self._validated_name(domain, counted=not explanation)
            else:
                values[letter] = self._value(letter, domain)
        return values

    def _value(self, letter: str, domain: str) -> str:
        """The value of a macro letter other than p (section 7.2)."""
        ip = self.ip
        if letter == "s":
            return f"{self.local}@{self.sender_domain}"
        if letter == "i":
            return ip_macro(ip)
        if letter == "v":
            return "in-addr" if ip.version == 4 else "ip6"
        if letter == "t":
            return str(int(time.time()))
        plain = {"l": self.local, "o": self.sender_domain, "d": domain, "h": self.helo, "c": str(ip)}
        return plain.get(letter, self.receiver)

    async def _validated_name(self, domain: str, *, counted: bool) -> str:
        """``%{p}`` (section 7.3): the domain itself, else a subdomain of it, else any validated name."""
        if counted and not self._p_counted:
            # Section 4.6.4 ¶3: the PTR query of %{p} counts against the limit (not in exp text).
            self._p_counted = True
            self._count("%{p}")
        answer = await self._ptr_answer()
        if answer is None:
            return "unknown"
        names = self._ptr_names(answer, "%{p}")
        bare = domain.lower()

        def rank(name: str) -> int:
            lowered = name.lower()
            return 0 if lowered == bare else 1 if lowered.endswith("." + bare) else 2

        for name in sorted(names, key=rank):
            if await self._is_validated(name):
                return name
        return "unknown"

    async def _ptr_answer(self) -> Answer | None:
        """The PTR names of the IP, asked once; None when the lookup failed (no match, not an error)."""
        if self._ptr is None and not self._ptr_failed:
            try:
                self._ptr = await self.resolver.ptr(str(self.ip))
            except DnsError as exc:
                self._ptr_failed = True
                self.problems.append(f"PTR lookup for {self.ip} failed ({exc}); ptr and %{{p}} find no name")
        return self._ptr

    def _ptr_names(self, answer: Answer, term: str) -> list[str]:
        names = [n.removesuffix(".") for n in answer.records]
        limit = self.limits.ptr_names
        if len(names) > limit:
            self.problems.append(f"{term}: {self.ip} has {len(names)} PTR names; only the first {limit} count")
        return names[:limit]

    async def _is_validated(self, name: str) -> bool:
        key = name.lower()
        if key not in self._validated:
            valid = False
            if not name_problem(name):
                try:
                    answer = await getattr(self.resolver, self._address_type)(name)
                    valid = any(_parse_ip(a) == self.ip for a in answer.records)
                except DnsError:
                    # Section 5.5: a DNS error on one name skips that name.
                    valid = False
            self._validated[key] = valid
        return self._validated[key]

    # -- explanation ----------------------------------------------------------------------------------------

    async def _explain(self, record: SpfRecord, domain: str) -> str | None:
        """The expanded ``exp`` text, or None: any problem means "as if there were no exp" (section 6.2)."""
        if record.exp is None:
            return None
        target = await self._target(record.exp, domain, explanation=True)
        problem = name_problem(target)
        if problem:
            self.problems.append(f"explanation ignored: exp={record.exp.text}: {problem}")
            return None
        try:
            answer = await self._lookup("txt", target)
        except _AbortError as abort:
            self.problems.append(f"explanation ignored: {abort.message}")
            return None
        if len(answer.records) != 1:
            self.problems.append(f"explanation ignored: {target} has {len(answer.records)} TXT records, not 1")
            return None
        text = answer.records[0]
        if not text.isascii():
            self.problems.append(f"explanation ignored: the TXT record of {target} is not 7-bit ASCII")
            return None
        try:
            tokens = parse_macro_string(text, explanation=True)
        except SpfSyntaxError as exc:
            self.problems.append(f"explanation ignored: {exc}")
            return None
        return expand(tokens, await self._values(letters(tokens), domain, explanation=True))

    # -- DNS and limits -------------------------------------------------------------------------------------

    @property
    def _address_type(self) -> Literal["a", "aaaa"]:
        return "a" if self.ip.version == 4 else "aaaa"

    async def _lookup(self, rtype: _RecordType, name: str) -> Answer:
        try:
            answer: Answer = await getattr(self.resolver, rtype)(name)
        except DnsTempError as exc:
            raise _AbortError(SpfOutcome.TEMPERROR, f"DNS {rtype.upper()} lookup of {name} failed: {exc}") from None
        except DnsError as exc:
            self.problems.append(f"DNS {rtype.upper()} lookup of {name}: {exc}; treated as non-existent")
            return Answer((), nxdomain=True)
        return answer

    def _count(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > self.limits.dns_terms:
            raise _AbortError(
                SpfOutcome.PERMERROR,
                f"more than {self.limits.dns_terms} DNS-querying terms (RFC 7208 section 4.6.4), at {term!r}",
            )

    def _void(self, mechanism: Mechanism, answer: Answer) -> None:
        if not answer.void:
            return
        self.voids += 1
        if self.voids > self.limits.void_lookups:
            raise _AbortError(
                SpfOutcome.PERMERROR,
                f"more than {self.limits.void_lookups} void lookups (RFC 7208 section 4.6.4), at {mechanism.text!r}",
            )

    def _any_within(self, records: Iterable[str], mechanism: Mechanism, name: str) -> bool:
        length = mechanism.cidr4 if self.ip.version == 4 else mechanism.cidr6
        for text in records:
            address = _parse_ip(text)
            if address is None or address.version != self.ip.version:
                self.problems.append(f"{mechanism}: {name} has an unusable address record {text!r}")
                continue
            if self.ip in ipaddress.ip_network(f"{address}/{length}", strict=False):
                return True
        return False


def _parse_ip(text: str) -> ClientIp | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _mx_hosts(records: Iterable[str]) -> list[str]:
    """Exchange names by preference; the null MX (RFC 7505, exchange ".") names no host."""
    hosts: list[tuple[int, int, str]] = []
    for index, record in enumerate(records):
        preference, _, exchange = record.strip().partition(" ")
        host = exchange.strip().removesuffix(".")
        if host:
            hosts.append((int(preference) if preference.isdigit() else 65536, index, host))
    return [host for _, _, host in sorted(hosts)]
