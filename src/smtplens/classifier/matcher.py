"""One compiled matcher over every phrase table and provider marker: an Aho-Corasick automaton.

Every phrase's first piece is a key of one automaton (pyahocorasick, in C); a reply is scanned once, in time
linear in its length whatever the number of phrases, and each key found yields the phrases that start with it.
A phrase may contain ``*`` gaps ("mailbox * full"): the later pieces are then looked for after the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

__all__ = ["Matcher", "Pattern", "normalise"]


# Word characters for the word-start rule. Only ASCII: scripts written without spaces (Japanese, Chinese) have
# no word starts, so their phrases match anywhere.
_ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def normalise(text: str) -> str:
    """Lower case with runs of white space collapsed: the form phrases are matched against."""
    return " ".join(text.lower().split())


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "specificity", sum(len(p) for p in self.parts))


class Matcher:
    """Finds every pattern that occurs in a normalised text, in one pass."""

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        by_head: dict[str, list[Pattern]] = {}
        for p in patterns:
            by_head.setdefault(p.parts[0], []).append(p)
        self._automaton = ahocorasick.Automaton()
        for head, group in by_head.items():
            self._automaton.add_word(head, (len(head), tuple(group)))
        self.size = sum(len(g) for g in by_head.values())
        if by_head:
            self._automaton.make_automaton()

    def find(self, text: str) -> tuple[list[Pattern], list[Pattern]]:
        """The phrases and the provider markers that occur in ``text``."""
        phrases: list[Pattern] = []
        markers: list[Pattern] = []
        if self.size == 0:
            return phrases, markers
        word = _ASCII_WORD
        for end, (length, group) in self._automaton.iter(text):
            start = end - length + 1
            if start and text[start - 1] in word and text[start] in word:
                continue  # a phrase starts at a word start: "ip" is not found inside "recipient"
            for p in group:
                if len(p.parts) > 1:
                    pos = end + 1
                    for part in p.parts[1:]:
                        found = text.find(part, pos)
                        if found < 0:
                            break
                        pos = found + len(part)
                    else:
                        (phrases if p.kind == "phrase" else markers).append(p)
                    continue
                (phrases if p.kind == "phrase" else markers).append(p)
        return phrases, markers
