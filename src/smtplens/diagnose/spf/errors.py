"""The exceptions of the SPF evaluator: one root and the syntax error that says what is wrong and where."""

from __future__ import annotations

from smtplens.errors import SmtplensError

__all__ = ["SpfError", "SpfSyntaxError"]


class SpfError(SmtplensError):
    """Root of the SPF errors; also raised for a bad argument (an IP address that is not one)."""


class SpfSyntaxError(SpfError, ValueError):
    """An SPF record, a domain-spec or a macro string breaks the grammar of RFC 7208 (a *permerror*).

    ``problem`` says what is wrong; ``text`` is the string that was parsed (the whole record when known),
    ``term`` the term that holds the error and ``position`` the 0-based offset of the error in ``text``.
    """

    def __init__(self, problem: str, text: str, position: int | None = None, term: str | None = None) -> None:
        self.problem = problem
        self.text = text
        self.position = position
        self.term = term
        where = []
        if term is not None:
            where.append(f"in term {term!r}")
        if position is not None:
            where.append(f"at column {position + 1}")
        suffix = f" ({', '.join(where)} of {text!r})" if where else f" (in {text!r})"
        super().__init__(problem + suffix)
