"""The one exception root of smtplens and its documented subclasses."""

from __future__ import annotations

__all__ = ["KnowledgeError", "ParseError", "SmtplensError", "UnknownCodeError", "UnknownLanguageError"]


class SmtplensError(Exception):
    """Root of every exception smtplens raises on purpose."""


class KnowledgeError(SmtplensError):
    """A knowledge data file is missing or broken; the message names the file, the entry and the field."""

    def __init__(self, file: str, field: str, problem: str, entry: str | None = None) -> None:
        self.file = file
        self.field = field
        self.entry = entry
        self.problem = problem
        where = f"{file}: {entry}: {field}" if entry else f"{file}: {field}"
        super().__init__(f"{where}: {problem}")


class ParseError(SmtplensError, ValueError):
    """A reply could not be parsed in strict mode; ``problems`` lists everything that was wrong."""

    def __init__(self, problems: list[str], text: str) -> None:
        self.problems = problems
        self.text = text
        super().__init__("; ".join(problems))


class UnknownCodeError(SmtplensError, LookupError):
    """A code is not in the knowledge base; ``suggestions`` holds close known codes."""

    def __init__(self, code: str, suggestions: list[str], hint: str | None = None) -> None:
        self.code = code
        self.suggestions = suggestions
        self.hint = hint
        msg = f"unknown code {code!r}"
        if hint:
            msg += f" ({hint})"
        if suggestions:
            msg += "; did you mean " + ", ".join(suggestions) + "?"
        super().__init__(msg)


class UnknownLanguageError(SmtplensError, LookupError):
    """A language has no data files."""

    def __init__(self, lang: str, available: list[str]) -> None:
        self.lang = lang
        self.available = available
        super().__init__(f"unknown language {lang!r}; available: {', '.join(available)}")
