"""SPF, DKIM and DMARC together, and the one Authentication-Results field they produce (RFC 8601).

``AuthenticationPolicy(authserv_id, spf=SpfPolicy(...), dkim=DkimPolicy(...), dmarc=DmarcPolicy(...))`` (each
part optional) answers at MAIL with the SPF policy's decision and at end of data:

1. the SPF result of the transaction (from the SPF policy's cache: computed at MAIL, keyed by client address,
   HELO and MAIL FROM, so concurrent sessions never see each other's results);
2. every DKIM signature verified; the DKIM policy's requirement may refuse;
3. DMARC evaluated with both; its policy may refuse, defer or quarantine.

The first refusal or deferral wins (DKIM before DMARC). Otherwise the message is accepted with, prepended in
this order, ``Authentication-Results: <authserv_id>; spf=…; dkim=…; dmarc=…`` (the DMARC quarantine field, if
any, and ``Received-SPF`` of RFC 7208 section 9.1 when ``received_spf`` is true follow it).
"""

from __future__ import annotations

from typing import ClassVar

from smtplens.model import Stage
from smtplens.server.decisions import Decision, Outcome
from smtplens.server.policies.authres import MethodResult, authentication_results
from smtplens.server.policies.dkim import DkimPolicy, DkimSignature, dkim_results
from smtplens.server.policies.dmarc import DmarcPolicy
from smtplens.server.policies.headers import author, header_fields
from smtplens.server.policies.spf import SpfPolicy, received_spf
from smtplens.server.session import Context

__all__ = ["AuthenticationPolicy"]


class AuthenticationPolicy:
    """See the module docstring."""

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.MAIL, Stage.END_OF_DATA})

    def __init__(
        self,
        authserv_id: str,
        *,
        spf: SpfPolicy | None = None,
        dkim: DkimPolicy | None = None,
        dmarc: DmarcPolicy | None = None,
        received_spf: bool = True,
        timeout: float | None = None,
        name: str = "auth",
    ) -> None:
        self.name = name
        self.timeout = timeout  # the pipeline's budget for this policy; None: the pipeline's own
        self.authserv_id = authserv_id
        self.spf = spf
        self.dkim = dkim
        self.dmarc = dmarc
        self.received_spf = received_spf

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        if stage is Stage.MAIL:
            return None if self.spf is None else await self.spf.check(stage, context)
        if stage is not Stage.END_OF_DATA or context.message is None:
            return None
        return await self._end_of_data(context, context.message)

    async def _end_of_data(self, context: Context, message: bytes) -> Decision:
        spf = await self.spf.evaluate(context.envelope) if self.spf is not None else None
        signatures: tuple[DkimSignature, ...] = ()
        clauses: list[MethodResult] = []
        if spf is not None:
            clauses.append(spf.method_result())
        the_author = author(header_fields(message))
        if self.dkim is not None:
            signatures = await self.dkim.verify(message)
            clauses.extend(dkim_results(signatures))
            refusal = self.dkim.decide(signatures, the_author.domain)
            if refusal is not None:
                return refusal
        extra: tuple[str, ...] = ()
        if self.dmarc is not None:
            verdict = await self.dmarc.verdict(the_author, spf, signatures)
            decision = self.dmarc.decide(verdict)
            if decision is not None and decision.outcome is not Outcome.ACCEPT:
                return decision
            clauses.append(verdict.method_result())
            extra = decision.headers if decision is not None else ()
        headers = (authentication_results(self.authserv_id, clauses), *extra)
        if spf is not None and self.received_spf:
            headers += (received_spf(spf, self.authserv_id),)
        return Decision.accept(headers=headers, policy=self.name)
