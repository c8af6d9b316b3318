"""The Authentication-Results header field (RFC 8601): one method result each, written as one folded field.

Pure formatting: the SPF, DKIM and DMARC parts produce :class:`MethodResult` values and
:func:`authentication_results` joins them under the server's ``authserv-id``, one clause a line
(continuation lines start with a tab)::

    Authentication-Results: mx.example.org;
        spf=pass smtp.mailfrom=example.com;
        dkim=pass header.d=example.com header.s=sel header.b=AbCdEfGh;
        dmarc=pass (p=reject) header.from=example.com

With no result at all the field says ``none`` (RFC 8601 section 2.2). Property values that are not a plain
token are written as a quoted string (section 2.2 allows ``value``, which is a token or a quoted-string).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MethodResult", "authentication_results", "dot_atom_or_quoted", "header_value", "quoted"]

_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")  # RFC 2045 token characters
_ADDRESS = re.compile(r"(?:[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+)?@[A-Za-z0-9.-]+")  # RFC 8601 pvalue: [local] "@" domain
_DOT_ATOM = re.compile(r"[!#$%&'*+\-/=?^_`{|}~0-9A-Za-z]+(?:\.[!#$%&'*+\-/=?^_`{|}~0-9A-Za-z]+)*")


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One ``method=result`` clause: ``reason`` is a comment, ``properties`` are ``ptype.property=value`` pairs."""

    method: str
    result: str
    properties: tuple[tuple[str, str], ...] = ()
    comment: str | None = None

    def clause(self) -> str:
        parts = [f"{self.method}={self.result}"]
        if self.comment:
            parts.append(f"({_comment(self.comment)})")
        parts.extend(f"{name}={header_value(value)}" for name, value in self.properties if value)
        return " ".join(parts)


def header_value(value: str) -> str:
    """``value`` as an RFC 8601 property value: itself when a token or an address, else a quoted string."""
    if _TOKEN.fullmatch(value) or _ADDRESS.fullmatch(value):
        return value
    return quoted(value)


def dot_atom_or_quoted(value: str) -> str:
    """``value`` as an RFC 7208 section 9.1 key-value-pair value: a dot-atom, else a quoted string."""
    return value if _DOT_ATOM.fullmatch(value) else quoted(value)


def quoted(value: str) -> str:
    """An RFC 5322 quoted-string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{_printable(escaped)}"'


def authentication_results(authserv_id: str, results: Iterable[MethodResult]) -> str:
    """The complete header field, folded one clause a line (no final line end)."""
    clauses = [result.clause() for result in results]
    body = ";\r\n\t".join(clauses) if clauses else "none"
    return f"Authentication-Results: {authserv_id};\r\n\t{body}"


def _comment(text: str) -> str:
    return _printable(text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)"))


def _printable(text: str) -> str:
    """No line breaks or control characters inside a header field."""
    return "".join(ch if ch >= " " and ch != "\x7f" else " " for ch in text)
