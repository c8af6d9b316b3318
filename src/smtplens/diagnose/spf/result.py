"""The value check_host() returns, its seven results and the processing limits it applies."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from smtplens.diagnose.spf.record import Mechanism, Qualifier

__all__ = ["SpfLimits", "SpfOutcome", "SpfResult"]


class SpfOutcome(StrEnum):
    """The results of check_host() (RFC 7208 section 2.6)."""

    NONE = "none"
    NEUTRAL = "neutral"
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"

    @classmethod
    def of(cls, qualifier: Qualifier) -> SpfOutcome:
        """The result a matching mechanism gives with this qualifier (section 4.6.2)."""
        return _BY_QUALIFIER[qualifier]


_BY_QUALIFIER = {
    Qualifier.PASS: SpfOutcome.PASS,
    Qualifier.FAIL: SpfOutcome.FAIL,
    Qualifier.SOFTFAIL: SpfOutcome.SOFTFAIL,
    Qualifier.NEUTRAL: SpfOutcome.NEUTRAL,
}


@dataclass(frozen=True, slots=True)
class SpfLimits:
    """Processing limits of RFC 7208 section 4.6.4; the defaults are the RFC's."""

    dns_terms: int = 10
    """include, a, mx, ptr, exists and redirect evaluated in one check, included records counted (¶1)."""
    void_lookups: int = 2
    """Terms whose lookup gives NXDOMAIN or no records (¶7: "SHOULD limit ... to two")."""
    mx_names: int = 10
    """Address lookups per ``mx`` term; one more is a permerror (¶2)."""
    ptr_names: int = 10
    """PTR names looked at per ``ptr`` term or ``%{p}``; the rest are ignored (¶3)."""
    timeout: float | None = 20.0
    """Seconds for the whole check, then temperror (¶6: "SHOULD allow at least 20 seconds"); None: no limit."""


@dataclass(frozen=True, slots=True)
class SpfResult:
    """What check_host() found.

    ``explanation`` is the expanded ``exp`` text of a fail (None without ``exp`` or when it had to be ignored);
    ``mechanism`` is the term that decided the result (None for none, the default neutral and the errors);
    ``lookups`` counts the DNS-querying terms evaluated, ``void_lookups`` the ones that found nothing;
    ``problems`` explains errors, ignored parts and everything else worth telling the domain's operator.
    """

    result: SpfOutcome
    explanation: str | None = None
    mechanism: Mechanism | None = None
    lookups: int = 0
    void_lookups: int = 0
    problems: tuple[str, ...] = ()
