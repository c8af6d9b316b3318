"""SPF at MAIL (RFC 7208): check the client address against the sender domain's policy and answer by result.

``SpfPolicy(resolver)`` runs the project's own check_host() (:func:`smtplens.diagnose.spf.check_host`, over the
injected :class:`~smtplens.diagnose.dns.Resolver`) for the MAIL FROM domain, or for the HELO name when the
reverse-path is null (RFC 7208 sections 2.3 and 2.4: ``postmaster@<helo>``). What each result does is
configurable with :func:`spf_actions` (``"accept"``, ``"reject"`` or ``"defer"`` per result) or any
:class:`~smtplens.server.decisions.Decision`. The defaults and their replies:

* ``fail`` → ``550 5.7.23 Message rejected due to: SPF fail - not authorized`` (the wording of the widely used
  Postfix policy daemon pypolicyd-spf, as Titan Email sends it, corpus reply r0216; 5.7.23 is RFC 7372's "SPF
  validation failed"), followed by the domain's ``exp=`` explanation when it has one (RFC 7208 section 6.2);
* ``temperror`` → ``451 4.4.3 SPF temporary error - DNS lookup failed, try again later`` (RFC 7208 section 8.6
  allows a deferral; X.4.3 is RFC 3463's directory server failure);
* ``permerror`` → accepted (RFC 7208 section 8.7 leaves it to local policy; ``"reject"`` gives ``550 5.7.24``,
  RFC 7372's "SPF validation error");
* ``softfail``, ``neutral``, ``none``, ``pass`` → accepted (``"defer"`` for softfail gives ``450 4.7.1``).

The result is kept in a bounded cache keyed by what it depends on (client address, HELO name, MAIL FROM), so
the end of data (:class:`~smtplens.server.policies.auth.AuthenticationPolicy`) reuses it for the
Authentication-Results and Received-SPF fields without a second check; a result pushed out of the cache is
computed again. Policies are shared by all sessions; the key makes that safe, because sessions with the same
three values get the same answer.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from smtplens.diagnose.dns import Resolver
from smtplens.diagnose.spf import SpfLimits, SpfOutcome, SpfResult, check_host, mail_from_identity
from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.policies.authres import MethodResult, dot_atom_or_quoted
from smtplens.server.session import Context, Envelope

__all__ = ["SPF_REPLIES", "SpfAction", "SpfCheck", "SpfPolicy", "received_spf", "spf_actions"]

SpfAction = Literal["accept", "reject", "defer"]

#: The reply of each (result, action); texts after pypolicyd-spf's "SPF <result> - <why>" (see module docstring).
SPF_REPLIES: dict[tuple[SpfOutcome, SpfAction], tuple[str, str, str]] = {
    (SpfOutcome.FAIL, "reject"): ("550", "5.7.23", "Message rejected due to: SPF fail - not authorized"),
    (SpfOutcome.FAIL, "defer"): ("450", "4.7.1", "Message deferred due to: SPF fail - not authorized"),
    (SpfOutcome.SOFTFAIL, "reject"): ("550", "5.7.23", "Message rejected due to: SPF softfail - not authorized"),
    (SpfOutcome.SOFTFAIL, "defer"): ("450", "4.7.1", "Message deferred due to: SPF softfail - try again later"),
    (SpfOutcome.TEMPERROR, "defer"): ("451", "4.4.3", "SPF temporary error - DNS lookup failed, try again later"),
    (SpfOutcome.TEMPERROR, "reject"): ("550", "5.7.24", "SPF temporary error - DNS lookup failed"),
    (SpfOutcome.PERMERROR, "reject"): ("550", "5.7.24", "SPF permanent error - the sender's SPF record is invalid"),
    (SpfOutcome.PERMERROR, "defer"): ("451", "4.7.24", "SPF permanent error - the sender's SPF record is invalid"),
    (SpfOutcome.NEUTRAL, "reject"): ("550", "5.7.23", "Message rejected due to: SPF neutral - not authorized"),
    (SpfOutcome.NEUTRAL, "defer"): ("450", "4.7.1", "Message deferred due to: SPF neutral - try again later"),
    (SpfOutcome.NONE, "reject"): ("550", "5.7.23", "Message rejected due to: SPF none - no SPF record"),
    (SpfOutcome.NONE, "defer"): ("450", "4.7.1", "Message deferred due to: SPF none - no SPF record"),
}


def spf_actions(
    *,
    fail: SpfAction = "reject",
    softfail: SpfAction = "accept",
    neutral: SpfAction = "accept",
    none: SpfAction = "accept",
    temperror: SpfAction = "defer",
    permerror: SpfAction = "accept",
) -> dict[SpfOutcome, Decision | None]:
    """The decision per SPF result from one word each; ``pass`` is always accepted."""
    chosen = {
        SpfOutcome.FAIL: fail,
        SpfOutcome.SOFTFAIL: softfail,
        SpfOutcome.NEUTRAL: neutral,
        SpfOutcome.NONE: none,
        SpfOutcome.TEMPERROR: temperror,
        SpfOutcome.PERMERROR: permerror,
    }
    out: dict[SpfOutcome, Decision | None] = {SpfOutcome.PASS: None}
    for outcome, action in chosen.items():
        if action == "accept":
            out[outcome] = None
            continue
        code, enhanced, text = SPF_REPLIES[(outcome, action)]
        maker = Decision.reject if action == "reject" else Decision.defer
        out[outcome] = maker(code=code, enhanced=enhanced, text=text)
    return out


@dataclass(frozen=True, slots=True)
class SpfCheck:
    """One check_host() result with what was checked: ``identity`` is ``mailfrom`` or ``helo`` (RFC 7208 9.1)."""

    client_ip: str
    helo: str
    mail_from: str
    sender: str
    domain: str
    result: SpfResult

    @property
    def identity(self) -> str:
        return "mailfrom" if self.mail_from else "helo"

    @property
    def outcome(self) -> SpfOutcome:
        return self.result.result

    def method_result(self) -> MethodResult:
        """The ``spf=`` clause of Authentication-Results (RFC 8601 section 2.7.2)."""
        prop = ("smtp.mailfrom", self.sender) if self.mail_from else ("smtp.helo", self.helo)
        return MethodResult("spf", self.outcome.value, (prop,))


def received_spf(check: SpfCheck, receiver: str) -> str:
    """The Received-SPF header field of RFC 7208 section 9.1 (no final line end)."""
    comments = {
        SpfOutcome.PASS: f"domain of {check.sender} designates {check.client_ip} as permitted sender",
        SpfOutcome.FAIL: f"domain of {check.sender} does not designate {check.client_ip} as permitted sender",
        SpfOutcome.SOFTFAIL: f"domain of transitioning {check.sender} does not designate {check.client_ip} "
        "as permitted sender",
        SpfOutcome.NEUTRAL: f"{check.client_ip} is neither permitted nor denied by domain of {check.sender}",
        SpfOutcome.NONE: f"domain of {check.sender} does not provide an SPF record",
        SpfOutcome.TEMPERROR: f"error in processing during lookup of {check.sender}: DNS failure",
        SpfOutcome.PERMERROR: f"error in processing the SPF record of {check.domain}",
    }
    comment = comments[check.outcome].replace("(", "[").replace(")", "]")
    pairs = [
        ("client-ip", check.client_ip),
        ("envelope-from", check.mail_from or "<>"),
        ("helo", check.helo),
        ("receiver", receiver),
        ("identity", check.identity),
    ]
    if check.result.mechanism is not None:
        pairs.append(("mechanism", check.result.mechanism.text))
    keys = "; ".join(f"{key}={dot_atom_or_quoted(value)}" for key, value in pairs)
    return f"Received-SPF: {check.outcome.value} ({receiver}: {comment})\r\n\t{keys};"


class SpfPolicy:
    """See the module docstring. ``receiver`` names this host in ``%{r}`` and in Received-SPF."""

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.MAIL})

    def __init__(
        self,
        resolver: Resolver,
        *,
        actions: Mapping[SpfOutcome, Decision | None] | None = None,
        receiver: str = "localhost",
        limits: SpfLimits = SpfLimits(),  # noqa: B008 - frozen value
        cache_size: int = 4096,
        timeout: float | None = None,
        name: str = "spf",
    ) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.name = name
        self.timeout = timeout  # the pipeline's budget for this policy; None: the pipeline's own
        self.resolver = resolver
        self.actions = dict(spf_actions() if actions is None else actions)
        self.receiver = receiver
        self.limits = limits
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str, str], SpfCheck] = OrderedDict()

    async def evaluate(self, envelope: Envelope) -> SpfCheck | None:
        """The SPF check for this envelope (cached); None when the client address is not an IP address."""
        ip = envelope.client_address
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return None
        helo = envelope.helo or ""
        mail_from = envelope.mail_from or ""
        key = (ip, helo.lower(), mail_from.lower())
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        sender, domain = mail_from_identity(mail_from, helo)
        result = await check_host(
            ip, domain, sender, helo=helo, resolver=self.resolver, receiver=self.receiver, limits=self.limits
        )
        check = SpfCheck(ip, helo, mail_from, sender, domain, result)
        self._cache[key] = check
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return check

    def decide(self, check: SpfCheck) -> Decision | None:
        """The configured decision for a result, with the domain's explanation added to a refusal."""
        decision = self.actions.get(check.outcome)
        if decision is None:
            return None
        text = decision.text
        if check.result.explanation and text:
            text = f"{text}: {check.result.explanation}"
        return dataclasses.replace(decision, text=text, policy=decision.policy or self.name)

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        if stage is not Stage.MAIL:
            return None
        result = await self.evaluate(context.envelope)
        return None if result is None else self.decide(result)
