"""One compiled matcher over every phrase table and provider marker: an Aho-Corasick automaton.

Every phrase's first piece is a key of one automaton (ahocorasick_rs, in Rust); a reply is scanned once, in time
linear in its length whatever the number of phrases, and each key found yields the phrases that start with it.
A phrase may contain ``*`` gaps ("mailbox * full"): the later pieces are then looked for after the first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import ahocorasick_rs

from smtplens._accel import install as install_accelerator
from smtplens.classifier.verdict import Evidence

__all__ = ["Matcher", "Pattern", "normalise"]


# Word characters for the word-start rule. Only ASCII: scripts written without spaces (Japanese, Chinese) have
# no word starts, so their phrases match anywhere.
_ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")

# The automaton works on UTF-8, which cannot hold a lone surrogate: such code points are replaced one for one
# (so that offsets stay the same) by a character no phrase contains.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_STAND_IN = "\ufffd"


def normalise(text: str) -> str:
    """Lower case with runs of white space collapsed: the form phrases are matched against."""
    lower = text.lower()
    # Speed: most replies are printable ASCII with single spaces; for them the lower-cased text is already normal
    # (no tab, line break or other control character; no leading, trailing or double space), and proving that is
    # cheaper than splitting the text into words and joining them again.
    if lower.isascii() and lower.isprintable() and "  " not in lower and lower[:1] != " " and lower[-1:] != " ":
        return lower
    return " ".join(lower.split())


@dataclass(frozen=True, slots=True)
class Pattern:
    """One phrase of a table (or a provider marker when ``kind`` is ``"marker"``; ``reason`` is then the provider
    id). ``parts`` are the pieces between ``*`` gaps, matched in order."""

    reason: str
    phrase: str
    parts: tuple[str, ...]
    provider: str | None
    source: str
    table: str
    priority: int = 0
    kind: str = "phrase"
    specificity: int = 0  # characters matched: longer phrases are more specific
    evidence: Evidence = field(init=False, compare=False, repr=False)  # the verdict's line when this phrase decides
    rank: int = field(init=False, compare=False, repr=False)  # (priority, specificity) as one number, see below

    # Speed: choosing among the phrases found compares one int per phrase instead of building a key tuple.
    # rank = priority * 2**21 + specificity, and a phrase of the recognised provider gets OWN_PROVIDER on top;
    # this orders like the key (priority, own provider, specificity) while specificity < 2**20.
    OWN_PROVIDER: ClassVar[int] = 1 << 20
    RANK_FLOOR: ClassVar[int] = -99 << 21  # the key (-99, False, 0): below any phrase's priority

    def __post_init__(self) -> None:
        specificity = sum(len(p) for p in self.parts)
        if specificity >= self.OWN_PROVIDER:
            raise ValueError(f"phrase too long for its rank: {self.phrase[:40]!r}…")
        object.__setattr__(self, "specificity", specificity)
        object.__setattr__(self, "rank", (self.priority << 21) + specificity)
        # Built once here rather than for every verdict.
        object.__setattr__(self, "evidence", Evidence("phrase", self.phrase, self.reason, self.table, self.source))


class _Entry(NamedTuple):
    number: int  # the pattern's place in ``Matcher._patterns``
    second: str  # the piece after the first ``*`` gap, "" for a phrase of one piece
    more: tuple[str, ...]  # the pieces after further gaps, to be found in order after ``second``


class _Head(NamedTuple):
    """What one key of the automaton stands for (precomputed so that a hit costs few operations)."""

    word_start: bool  # the key begins with a word character, so it must begin a word of the text
    plain: bool  # all patterns of the key are one-piece phrases: found whenever the key is
    entries: tuple[_Entry, ...]  # the patterns whose first piece is the key, in table order
    phrases: tuple[Pattern, ...]  # the same patterns


class Matcher:
    """Finds every pattern that occurs in a normalised text, in one pass."""

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        by_head: dict[str, list[Pattern]] = {}
        for p in patterns:
            by_head.setdefault(p.parts[0], []).append(p)
        if any(_SURROGATE_STAND_IN in head for head in by_head):
            raise ValueError(f"a phrase contains {_SURROGATE_STAND_IN!r}, the stand-in for surrogates")
        self._patterns = [p for group in by_head.values() for p in group]
        numbers = {id(p): i for i, p in enumerate(self._patterns)}
        self._heads = [_head(key, tuple(group), numbers) for key, group in by_head.items()]
        self._automaton = ahocorasick_rs.AhoCorasick(list(by_head)) if by_head else None
        self.size = sum(len(g) for g in by_head.values())

    def find(self, text: str) -> tuple[list[Pattern], list[Pattern]]:
        """The phrases and the provider markers that occur in ``text``, in the order of their ends in the text."""
        return self.expand(self.scan(text))

    def scan(self, text: str) -> tuple[int, ...]:
        """What occurs in ``text`` as a small hashable key (see :meth:`expand`): the index of each key of the
        automaton found whose patterns all are one-piece phrases, ``~i`` for the ``i``-th pattern of another key
        found with its later pieces. Texts with the same key hold the same patterns in the same order, so what
        is decided from the patterns alone may be remembered by key."""
        if self._automaton is None:
            return ()
        try:
            hits = self._automaton.find_matches_as_indexes(text, overlapping=True)
        except UnicodeEncodeError:
            hits = self._automaton.find_matches_as_indexes(_SURROGATE.sub(_SURROGATE_STAND_IN, text), True)
        if not hits:
            return ()
        heads, word = self._heads, _ASCII_WORD
        found: list[int] = []
        for index, start, end in hits:
            word_start, plain, entries, _ = heads[index]
            if start and word_start and text[start - 1] in word:
                continue  # a phrase starts at a word start: "ip" is not found inside "recipient"
            if plain:
                found.append(index)
                continue
            for number, second, more in entries:
                if second:  # most phrases with gaps have two pieces: this test is written out for them
                    at = text.find(second, end)
                    if at < 0 or (more and not _pieces_follow(text, more, at + len(second))):
                        continue
                found.append(~number)
        return tuple(found)

    def expand(self, found: tuple[int, ...]) -> tuple[list[Pattern], list[Pattern]]:
        """The phrases and the provider markers a key of :meth:`scan` stands for, in its order."""
        phrases: list[Pattern] = []
        markers: list[Pattern] = []
        heads, patterns = self._heads, self._patterns
        for item in found:
            if item >= 0:
                phrases += heads[item].phrases
            else:
                pattern = patterns[~item]
                (phrases if pattern.kind == "phrase" else markers).append(pattern)
        return phrases, markers


def _head(key: str, group: tuple[Pattern, ...], numbers: dict[int, int]) -> _Head:
    plain = all(len(p.parts) == 1 and p.kind == "phrase" for p in group)
    entries = tuple(_Entry(numbers[id(p)], p.parts[1] if len(p.parts) > 1 else "", p.parts[2:]) for p in group)
    return _Head(key[0] in _ASCII_WORD, plain, entries, group)


def _pieces_follow(text: str, pieces: tuple[str, ...], pos: int) -> bool:
    """Whether ``pieces`` occur in ``text`` in order from ``pos`` on (the ``*`` gaps of a phrase)."""
    for part in pieces:
        found = text.find(part, pos)
        if found < 0:
            return False
        pos = found + len(part)
    return True


# The compiled accelerator (smtplens._accel): a Cython build of this very file replaces these entry points when it
# was built from this file as it is now; the interpreted ones stay reachable (tests compare both).
# The tables build their Matcher from this module, so the compiled class scans; Pattern stays this module's.
_PureMatcher, _pure_normalise = Matcher, normalise
install_accelerator("matcher", globals(), ("Matcher", "normalise"))
