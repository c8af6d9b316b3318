"""One compiled matcher over every phrase table: an index from anchor words to phrases.

A reply is lower-cased and split into words once; the set of its words is intersected with the set of anchor
words (a C-speed set operation), and only the phrases whose anchor occurs are checked with plain substring
search. Cost grows with the words of the reply, not with the number of phrases.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Matcher", "Pattern", "normalise", "words"]

# A phrase may contain "*" gaps: "mailbox * full" matches both words in that order anywhere in the reply.

_WORD = re.compile(r"\w+")
# ASCII punctuation becomes a space; str.translate has a fast path for such ASCII-only tables.
_PUNCTUATION = str.maketrans({chr(c): " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")})


def normalise(text: str) -> str:
    """Lower case with runs of white space collapsed: the form phrases are matched against."""
    return " ".join(text.lower().split())


def words(normalised: str) -> set[str]:
    """The set of words of a normalised text (runs of letters, digits and underscores)."""
    if normalised.isascii():
        return set(normalised.translate(_PUNCTUATION).split())
    return set(_WORD.findall(normalised))


@dataclass(frozen=True, slots=True)
class Pattern:
    """One phrase of a table. ``parts`` are the pieces between `` * `` gaps, matched in order."""

    reason: str
    phrase: str
    parts: tuple[str, ...]
    provider: str | None
    source: str
    table: str
    priority: int = 0

    def matches(self, text: str) -> bool:
        pos = 0
        for part in self.parts:
            found = text.find(part, pos)
            if found < 0:
                return False
            pos = found + len(part)
        return True

    @property
    def specificity(self) -> int:
        return sum(len(p) for p in self.parts)


class Matcher:
    """Finds every pattern that occurs in a normalised text."""

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        patterns = list(patterns)
        freq: Counter[str] = Counter()
        for p in patterns:
            freq.update(set(_WORD.findall(p.phrase)))
        self._index: dict[str, list[Pattern]] = {}
        self._anywhere: list[Pattern] = []  # phrases without a word character (rare)
        for p in patterns:
            tokens = _WORD.findall(" ".join(p.parts))
            if not tokens or not all(t.isascii() for t in tokens):
                # no word, or a script written without spaces (Japanese, Chinese): always checked
                self._anywhere.append(p)
                continue
            # the rarest word of the phrase (the longest on ties) keeps candidate lists short
            anchor = min(tokens, key=lambda t: (freq[t], -len(t)))
            self._index.setdefault(anchor, []).append(p)
        self._anchors = frozenset(self._index)
        self.size = len(patterns)

    def find(self, text: str, text_words: set[str]) -> list[Pattern]:
        hits = [p for p in self._anywhere if p.matches(text)]
        for anchor in text_words & self._anchors:
            hits.extend(p for p in self._index[anchor] if p.matches(text))
        return hits
