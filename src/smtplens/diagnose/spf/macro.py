"""SPF macros (RFC 7208 section 7): parse a macro string into tokens, expand tokens from a table of values.

Parsing is strict and separate from expansion, so a record's syntax is checked in full before anything is
looked up (section 4.6), and expansion is a pure function of the tokens and the values of the macro letters.

* ``%{s}`` sender, ``%{l}`` its local-part, ``%{o}`` its domain, ``%{d}`` the current domain, ``%{i}`` the IP
  (dotted quad or dot-separated nibbles), ``%{p}`` the validated name of the IP, ``%{v}`` ``in-addr`` or
  ``ip6``, ``%{h}`` the HELO/EHLO name; in explanation text only: ``%{c}`` the readable IP, ``%{r}`` the
  receiving host, ``%{t}`` the time in seconds since the epoch (section 7.2).
* Transformers: a non-zero number keeps that many right-hand parts, ``r`` reverses the parts first; delimiters
  ``. - + , / _ =`` split the value (default ``.``); parts are joined again with ``.`` (section 7.3).
* An upper-case letter URL-escapes the expansion (all but the unreserved characters of RFC 3986).
* ``%%`` is ``%``, ``%_`` a space and ``%-`` the URL-encoded space ``%20``; any other ``%`` is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from smtplens.diagnose.spf.errors import SpfSyntaxError

__all__ = [
    "DOMAIN_LETTERS",
    "EXPLAIN_LETTERS",
    "Escape",
    "Literal",
    "MacroRef",
    "Token",
    "expand",
    "letters",
    "parse_macro_string",
]

DOMAIN_LETTERS = frozenset("slodiphv")
"""Macro letters allowed everywhere (RFC 7208 section 7.2)."""
EXPLAIN_LETTERS = DOMAIN_LETTERS | frozenset("crt")
"""Macro letters allowed in the explanation text fetched by ``exp`` (section 7.2: c, r, t only there)."""

_DELIMITERS = ".-+,/_="
_ESCAPES = {"%": "%", "_": " ", "-": "%20"}
_BODY = re.compile(r"([A-Za-z])([0-9]*)([rR]?)([" + re.escape(_DELIMITERS) + r"]*)")


@dataclass(frozen=True, slots=True)
class Literal:
    """Text copied as it is."""

    text: str


@dataclass(frozen=True, slots=True)
class Escape:
    """``%%``, ``%_`` or ``%-``; ``text`` is what it stands for."""

    text: str


@dataclass(frozen=True, slots=True)
class MacroRef:
    """``%{letter digits r delimiters}``. ``letter`` is lower case; ``upper`` asks for URL escaping."""

    letter: str
    upper: bool = False
    keep: int | None = None
    reverse: bool = False
    delimiters: str = ""


Token = Literal | Escape | MacroRef


def parse_macro_string(
    text: str, *, explanation: bool = False, allowed: frozenset[str] | None = None
) -> tuple[Token, ...]:
    """Tokens of a macro string; ``explanation=True`` parses explanation text (spaces and ``c r t`` allowed).

    ``allowed`` overrides the set of allowed letters. Raises :class:`SpfSyntaxError` with the offset of the error.
    """
    allowed = allowed if allowed is not None else (EXPLAIN_LETTERS if explanation else DOMAIN_LETTERS)
    tokens: list[Token] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "%":
            if not _literal_ok(ch, explanation):
                raise SpfSyntaxError(f"character {ch!r} is not allowed in a macro string", text, i)
            literal.append(ch)
            i += 1
            continue
        if literal:
            tokens.append(Literal("".join(literal)))
            literal = []
        nxt = text[i + 1 : i + 2]
        if nxt in _ESCAPES:
            tokens.append(Escape(_ESCAPES[nxt]))
            i += 2
            continue
        if nxt != "{":
            raise SpfSyntaxError("'%' must be followed by '{', '%', '_' or '-'", text, i)
        end = text.find("}", i + 2)
        if end < 0:
            raise SpfSyntaxError("macro '%{' is not closed by '}'", text, i)
        tokens.append(_macro_ref(text, i, text[i + 2 : end], allowed))
        i = end + 1
    if literal:
        tokens.append(Literal("".join(literal)))
    return tuple(tokens)


def _literal_ok(ch: str, explanation: bool) -> bool:
    # macro-literal = %x21-24 / %x26-7E (visible ASCII but '%'); explain-string adds SP (section 7.1).
    code = ord(ch)
    return 0x21 <= code <= 0x7E or (explanation and code == 0x20)


def _macro_ref(text: str, start: int, body: str, allowed: frozenset[str]) -> MacroRef:
    match = _BODY.fullmatch(body)
    if match is None:
        raise SpfSyntaxError(f"malformed macro '%{{{body}}}'", text, start)
    letter, digits, reverse, delimiters = match.groups()
    if letter.lower() not in allowed:
        if letter.lower() in EXPLAIN_LETTERS:
            problem = f"macro letter {letter!r} is allowed only in explanation text"
        else:
            problem = f"unknown macro letter {letter!r}"
        raise SpfSyntaxError(problem, text, start)
    keep = None
    if digits:
        keep = int(digits)
        if keep == 0:
            # RFC 7208 section 7.1: "If a DIGIT is specified, the value MUST be nonzero."
            raise SpfSyntaxError(f"macro '%{{{body}}}' keeps zero parts", text, start)
    return MacroRef(letter.lower(), letter.isupper(), keep, bool(reverse), delimiters)


def letters(tokens: tuple[Token, ...]) -> frozenset[str]:
    """The macro letters the tokens use."""
    return frozenset(t.letter for t in tokens if isinstance(t, MacroRef))


def expand(tokens: tuple[Token, ...], values: Mapping[str, str]) -> str:
    """The expansion of ``tokens`` with ``values`` (letter → value) for every letter the tokens use."""
    out: list[str] = []
    for token in tokens:
        if isinstance(token, MacroRef):
            out.append(_expand_ref(token, values[token.letter]))
        else:
            out.append(token.text)
    return "".join(out)


def _expand_ref(ref: MacroRef, value: str) -> str:
    splitter = "[" + re.escape(ref.delimiters or ".") + "]"
    parts = re.split(splitter, value)
    if ref.reverse:
        parts.reverse()
    if ref.keep is not None and ref.keep < len(parts):
        parts = parts[len(parts) - ref.keep :]
    joined = ".".join(parts)
    # Upper-case letters are URL-escaped: everything but RFC 3986's unreserved characters (section 7.3).
    return quote(joined, safe="-._~") if ref.upper else joined
