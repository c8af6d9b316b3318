"""What a record check reports: one :class:`Finding` per problem or notable fact, with a one-sentence fix."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Finding", "Severity"]


class Severity(StrEnum):
    """How bad a finding is: ``error`` breaks the mechanism, ``warning`` weakens it, ``info`` is worth knowing."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of a check.

    ``code`` is a short stable id such as ``"dmarc.p_none"`` (mechanism, dot, problem) that tools and tests can
    match on; ``message`` says what was found and ``fix`` says, in one sentence, how to fix it (empty when there is
    nothing to do).
    """

    severity: Severity
    code: str
    message: str
    fix: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def error(code: str, message: str, fix: str = "") -> Finding:
    return Finding(Severity.ERROR, code, message, fix)


def warning(code: str, message: str, fix: str = "") -> Finding:
    return Finding(Severity.WARNING, code, message, fix)


def info(code: str, message: str, fix: str = "") -> Finding:
    return Finding(Severity.INFO, code, message, fix)
