"""DKIM verification at end of data (RFC 6376), keys fetched through the injected resolver.

:func:`verify_signatures` gives one :class:`DkimSignature` per DKIM-Signature field (the first
``max_signatures``). The key record at ``<s>._domainkey.<d>`` is looked up with OUR async
:class:`~smtplens.diagnose.dns.Resolver`; dkimpy (the ``dkim`` module) then checks the hashes and the signature
in a worker thread, given that prefetched record instead of its own DNS code. Results (RFC 8601 section 2.7.1):

* ``pass``: the signature verifies;
* ``fail``: the body hash or the signature does not match (the message was changed, or signed wrongly);
* ``permerror``: the signature field is malformed or expired, there is no key (NXDOMAIN / no TXT), the key is
  revoked or unusable, or shorter than ``minkey`` bits (RFC 8301: verifiers must refuse RSA keys under 1024);
* ``temperror``: the key lookup failed (timeout, SERVFAIL);
* a message without signatures has the single result ``none``.

``DkimPolicy(resolver, require=...)`` refuses at end of data with RFC 7372's codes and descriptions:
``"signed"`` refuses signed mail that has no passing signature and ``"pass"`` any mail without one
(``550 5.7.20 No passing DKIM signature found``); ``"author"`` wants a passing signature of the From domain
(``550 5.7.22 No valid author-matched DKIM signature found``); when only a key lookup failure stands in the
way the answer is ``451 4.4.3`` instead. The default ``"off"`` refuses nothing: the results still reach the
Authentication-Results field through :class:`~smtplens.server.policies.auth.AuthenticationPolicy`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Literal

from smtplens.diagnose.dns import DnsError, Resolver
from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.policies.authres import MethodResult
from smtplens.server.policies.headers import author, header_fields
from smtplens.server.session import Context

__all__ = ["DkimOutcome", "DkimPolicy", "DkimRequirement", "DkimSignature", "dkim_results", "verify_signatures"]

log = logging.getLogger("smtplens.server.dkim")

DkimRequirement = Literal["off", "signed", "pass", "author"]


class DkimOutcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NEUTRAL = "neutral"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class DkimSignature:
    """The verification result of one signature: its ``d=``, ``s=``, the start of ``b=`` and why."""

    result: DkimOutcome
    domain: str = ""
    selector: str = ""
    b: str = ""
    reason: str | None = None

    def method_result(self) -> MethodResult:
        """The ``dkim=`` clause (RFC 8601 section 2.7.1; ``header.b`` is RFC 6008's first 8 characters)."""
        props = (("header.d", self.domain), ("header.s", self.selector), ("header.b", self.b[:8]))
        return MethodResult("dkim", self.result.value, props, self.reason)


def dkim_results(signatures: tuple[DkimSignature, ...]) -> tuple[MethodResult, ...]:
    """The Authentication-Results clauses; ``dkim=none`` for an unsigned message."""
    if not signatures:
        return (MethodResult("dkim", DkimOutcome.NONE.value, (), "no signature"),)
    return tuple(signature.method_result() for signature in signatures)


def _tags(value: bytes) -> dict[bytes, bytes]:
    import dkim.util

    try:
        return dict(dkim.util.parse_tag_value(value))
    except Exception:  # dkimpy raises its own InvalidTagValueList and others on junk
        return {}


def _text(value: bytes | None) -> str:
    return b"".join((value or b"").split()).decode("ascii", "replace").lower()


async def verify_signatures(
    message: bytes, resolver: Resolver, *, minkey: int = 1024, max_signatures: int = 5
) -> tuple[DkimSignature, ...]:
    """Verify every DKIM-Signature field of ``message`` (up to ``max_signatures``), in order."""
    import dkim  # dkimpy is in the server extra: imported when used, so the core CLI starts without it

    try:
        parsed = dkim.DKIM(message).headers
    except dkim.DKIMException:  # a header section dkimpy cannot read has no signature it could check
        parsed = []
    fields = [value for name, value in parsed if name.lower() == b"dkim-signature"]
    results: list[DkimSignature] = []
    for index, value in enumerate(fields[:max_signatures]):
        tags = _tags(value)
        domain, selector = _text(tags.get(b"d")), _text(tags.get(b"s"))
        b = b"".join(tags.get(b"b", b"").split()).decode("ascii", "replace")
        if not domain or not selector:
            results.append(DkimSignature(DkimOutcome.PERMERROR, domain, selector, b, "signature without d= or s="))
            continue
        name = f"{selector}._domainkey.{domain}"
        try:
            answer = await resolver.txt(name)
        except DnsError as exc:
            results.append(DkimSignature(DkimOutcome.TEMPERROR, domain, selector, b, f"key lookup failed: {exc}"))
            continue
        if answer.void:
            results.append(DkimSignature(DkimOutcome.PERMERROR, domain, selector, b, f"no key at {name}"))
            continue
        outcome, reason = await asyncio.to_thread(_verify, message, index, name, answer.records[0], minkey)
        results.append(DkimSignature(outcome, domain, selector, b, reason))
    return tuple(results)


def _verify(message: bytes, index: int, name: str, record: str, minkey: int) -> tuple[DkimOutcome, str | None]:
    """dkimpy's verification of signature ``index`` with the prefetched key ``record`` (runs in a thread)."""
    import dkim

    key = record.encode("utf-8")

    def dnsfunc(_name: bytes, timeout: float = 5) -> bytes:
        return key

    verifier = dkim.DKIM(message, logger=log, minkey=minkey)
    try:
        verifier.verify_headerprep(index)
        dkim.evaluate_pk(name.encode("ascii", "replace"), key)
    except dkim.DKIMException as exc:
        return DkimOutcome.PERMERROR, str(exc) or type(exc).__name__
    except Exception as exc:  # dkimpy's key parsing raises plain errors on junk keys
        return DkimOutcome.PERMERROR, f"unusable key: {type(exc).__name__}"
    try:
        ok = verifier.verify(idx=index, dnsfunc=dnsfunc)
    except dkim.ValidationError as exc:
        return DkimOutcome.FAIL, str(exc).split(" (", 1)[0]
    except dkim.DKIMException as exc:
        return DkimOutcome.PERMERROR, str(exc) or type(exc).__name__
    return (DkimOutcome.PASS, None) if ok else (DkimOutcome.FAIL, "signature did not verify")


_REPLIES = {
    "pass": ("550", "5.7.20", "No passing DKIM signature found"),
    "author": ("550", "5.7.22", "No valid author-matched DKIM signature found"),
    "temporary": ("451", "4.4.3", "DKIM temporary error - key lookup failed, try again later"),
}


class DkimPolicy:
    """See the module docstring."""

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.END_OF_DATA})

    def __init__(
        self,
        resolver: Resolver,
        *,
        require: DkimRequirement = "off",
        minkey: int = 1024,
        max_signatures: int = 5,
        timeout: float | None = None,
        name: str = "dkim",
    ) -> None:
        self.name = name
        self.timeout = timeout  # the pipeline's budget for this policy; None: the pipeline's own
        self.resolver = resolver
        self.require = require
        self.minkey = minkey
        self.max_signatures = max_signatures

    async def verify(self, message: bytes) -> tuple[DkimSignature, ...]:
        return await verify_signatures(message, self.resolver, minkey=self.minkey, max_signatures=self.max_signatures)

    def decide(self, signatures: tuple[DkimSignature, ...], author_domain: str | None) -> Decision | None:
        """The refusal the requirement gives for these results, or None."""
        if self.require == "off" or (self.require == "signed" and not signatures):
            return None
        passing = [s for s in signatures if s.result is DkimOutcome.PASS]
        if self.require == "author":
            wanted = "author"
            passing = [s for s in passing if author_domain is not None and s.domain == author_domain]
        else:
            wanted = "pass"
        if passing:
            return None
        if any(s.result is DkimOutcome.TEMPERROR for s in signatures):
            wanted = "temporary"
        code, enhanced, text = _REPLIES[wanted]
        maker = Decision.defer if code.startswith("4") else Decision.reject
        return maker(code=code, enhanced=enhanced, text=text, policy=self.name)

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        if stage is not Stage.END_OF_DATA or context.message is None:
            return None
        signatures = await self.verify(context.message)
        return self.decide(signatures, author(header_fields(context.message)).domain)
