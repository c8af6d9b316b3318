"""DMARC at end of data (RFC 7489): the From domain's policy applied to the SPF and DKIM results.

Three steps, the first two pure:

1. :func:`~smtplens.server.policies.headers.author` takes the one address of the one From field (section
   6.6.1); a message without exactly one is refused by ``bad_from`` (default ``"reject"``: Gmail's
   ``550 5.7.1 Messages missing a valid address in the From: header, or having no From: header, are not
   accepted``, corpus reply r0470; ``"malformed"``: Gmail's ``554 5.6.0 Mail message is malformed. Not
   accepted``, r0476; ``"ignore"``: no DMARC result).
2. :func:`discover` looks for the record at ``_dmarc.<From domain>``, then at ``_dmarc.<organizational
   domain>`` (section 6.6.3, public suffix list in :mod:`~smtplens.server.policies.orgdomain`), selecting with
   the project's :func:`smtplens.diagnose.dmarc.select_dmarc`. (``lookup_dmarc`` is not used: its fallback is one
   label up, which is not the organizational domain for names under ``co.uk`` and the like.)
3. :func:`evaluate` aligns (section 3.1): SPF is aligned when it passed for a domain equal to the From domain
   (``aspf=s``) or with the same organizational domain (``aspf=r``, the default); DKIM likewise for a passing
   signature's ``d=`` (``adkim``). Either aligned is a pass. A fail gets ``p`` (``sp`` when the record was
   found at the organizational domain); ``pct`` below 100 and DMARCbis ``t=y`` apply the next milder policy to
   the messages outside the sample (section 6.6.4: reject → quarantine → none).

``DmarcPolicy.decide`` turns the verdict into a reply: ``p=reject`` → ``550 5.7.1 Unauthenticated email from
<domain> is not accepted due to domain's DMARC policy`` (Gmail's text, corpus reply r0085);
``quarantine="accept"`` (default) accepts with ``quarantine_header`` added, ``quarantine="reject"`` answers
``550 5.7.1 Email rejected per DMARC policy for <domain>`` (Zoho's and Rackspace's text, r0106 and r0119); a
DNS failure defers with ``451 4.4.3 Temporary DMARC DNS lookup failure`` (Rackspace's words, r0035), or accepts
with ``on_temperror="accept"``. The policy needs the SPF and DKIM results, so it runs inside
:class:`~smtplens.server.policies.auth.AuthenticationPolicy`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from smtplens.diagnose.dmarc import DmarcRecord, select_dmarc
from smtplens.diagnose.dns import DnsError, Resolver
from smtplens.diagnose.spf import SpfOutcome
from smtplens.server.decisions import Decision
from smtplens.server.policies.authres import MethodResult
from smtplens.server.policies.dkim import DkimOutcome, DkimSignature
from smtplens.server.policies.headers import Author
from smtplens.server.policies.orgdomain import organizational_domain
from smtplens.server.policies.spf import SpfCheck

__all__ = ["Discovery", "DmarcOutcome", "DmarcPolicy", "DmarcVerdict", "aligned", "discover", "evaluate"]

BadFrom = Literal["reject", "malformed", "ignore"]


class DmarcOutcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


_MILDER = {"reject": "quarantine", "quarantine": "none", "none": "none"}


@dataclass(frozen=True, slots=True)
class Discovery:
    """Where the policy was found: ``record`` (None: no policy), at the organizational domain or not."""

    domain: str
    organizational: str
    record: DmarcRecord | None
    inherited: bool = False


@dataclass(frozen=True, slots=True)
class DmarcVerdict:
    """The DMARC result for one message: ``policy`` is the published one that applies, ``disposition`` what
    the sampling left of it (``none``, ``quarantine`` or ``reject``)."""

    result: DmarcOutcome
    domain: str | None
    policy: str = "none"
    disposition: str = "none"
    spf_aligned: bool = False
    dkim_aligned: bool = False
    reason: str | None = None

    def method_result(self) -> MethodResult:
        """The ``dmarc=`` clause (RFC 7489 section 11.2), with policy and disposition as a comment."""
        comment = self.reason
        if self.result in (DmarcOutcome.PASS, DmarcOutcome.FAIL):
            comment = f"p={self.policy} dis={self.disposition}"
        props = (("header.from", self.domain),) if self.domain else ()
        return MethodResult("dmarc", self.result.value, props, comment)


def aligned(identifier: str, author_domain: str, mode: str) -> bool:
    """Identifier alignment of RFC 7489 section 3.1: strict is equality, relaxed the same organizational domain."""
    a, b = identifier.rstrip(".").lower(), author_domain.rstrip(".").lower()
    if mode == "s":
        return a == b
    return a == b or organizational_domain(a) == organizational_domain(b)


async def discover(domain: str, resolver: Resolver) -> Discovery:
    """Policy discovery (section 6.6.3); a DNS failure raises :class:`~smtplens.diagnose.dns.DnsError`."""
    organizational = organizational_domain(domain)
    selection = select_dmarc((await resolver.txt(f"_dmarc.{domain}")).records)
    if selection.candidates or organizational == domain:
        return Discovery(domain, organizational, selection.record)
    parent = select_dmarc((await resolver.txt(f"_dmarc.{organizational}")).records)
    return Discovery(domain, organizational, parent.record, inherited=parent.record is not None)


def evaluate(
    discovery: Discovery, spf: SpfCheck | None, signatures: Sequence[DkimSignature], sample: float = 0.0
) -> DmarcVerdict:
    """The verdict for the author domain of ``discovery``; ``sample`` in [0, 1) is compared with ``pct``."""
    record = discovery.record
    domain = discovery.domain
    if record is None:
        return DmarcVerdict(DmarcOutcome.NONE, domain, reason="no DMARC record")
    spf_ok = bool(spf and spf.outcome is SpfOutcome.PASS and aligned(spf.domain, domain, record.aspf))
    dkim_ok = any(s.result is DkimOutcome.PASS and aligned(s.domain, domain, record.adkim) for s in signatures)
    published = (record.effective_subdomain_policy if discovery.inherited else record.policy) or "none"
    if spf_ok or dkim_ok:
        return DmarcVerdict(DmarcOutcome.PASS, domain, published, "none", spf_ok, dkim_ok)
    disposition = published
    if record.testing or sample * 100 >= record.pct:
        disposition = _MILDER[published]
    return DmarcVerdict(DmarcOutcome.FAIL, domain, published, disposition)


_REJECT = ("550", "5.7.1", "Unauthenticated email from {domain} is not accepted due to domain's DMARC policy")
_QUARANTINE_REJECT = ("550", "5.7.1", "Email rejected per DMARC policy for {domain}")
_TEMPERROR = ("451", "4.4.3", "Temporary DMARC DNS lookup failure")
_BAD_FROM = {
    "reject": (
        "550",
        "5.7.1",
        "Messages missing a valid address in the From: header, or having no From: header, are not accepted",
    ),
    "malformed": ("554", "5.6.0", "Mail message is malformed. Not accepted"),
}


class DmarcPolicy:
    """See the module docstring; ``sample`` draws the number compared with ``pct`` (injectable for tests)."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        quarantine: Literal["accept", "reject"] = "accept",
        quarantine_header: str = "X-Quarantine: DMARC policy of {domain} is quarantine",
        on_temperror: Literal["defer", "accept"] = "defer",
        bad_from: BadFrom = "reject",
        sample: Callable[[], float] = random.random,
        name: str = "dmarc",
    ) -> None:
        self.name = name
        self.resolver = resolver
        self.quarantine = quarantine
        self.quarantine_header = quarantine_header
        self.on_temperror = on_temperror
        self.bad_from = bad_from
        self.sample = sample

    async def verdict(self, author: Author, spf: SpfCheck | None, signatures: Sequence[DkimSignature]) -> DmarcVerdict:
        if author.domain is None:
            return DmarcVerdict(DmarcOutcome.PERMERROR, None, reason=author.problem)
        try:
            discovery = await discover(author.domain, self.resolver)
        except DnsError:
            return DmarcVerdict(DmarcOutcome.TEMPERROR, author.domain, reason="DNS lookup failed")
        return evaluate(discovery, spf, signatures, self.sample())

    def decide(self, verdict: DmarcVerdict) -> Decision | None:
        """A refusal, a deferral, an acceptance with the quarantine header, or None (nothing to say)."""
        reply: tuple[str, str, str] | None = None
        if verdict.result is DmarcOutcome.PERMERROR and verdict.domain is None:
            reply = _BAD_FROM.get(self.bad_from)
        elif verdict.result is DmarcOutcome.TEMPERROR and self.on_temperror == "defer":
            reply = _TEMPERROR
        elif verdict.result is DmarcOutcome.FAIL and verdict.disposition == "reject":
            reply = _REJECT
        elif verdict.result is DmarcOutcome.FAIL and verdict.disposition == "quarantine":
            if self.quarantine == "reject":
                reply = _QUARANTINE_REJECT
            else:
                header = self.quarantine_header.format(domain=verdict.domain)
                return Decision.accept(headers=(header,), policy=self.name)
        if reply is None:
            return None
        code, enhanced, text = reply
        maker = Decision.defer if code.startswith("4") else Decision.reject
        return maker(code=code, enhanced=enhanced, text=text.format(domain=verdict.domain), policy=self.name)
