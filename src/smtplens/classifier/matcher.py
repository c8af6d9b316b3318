"""One compiled matcher over every phrase table and provider marker: an Aho-Corasick automaton.

Every phrase's first piece is a key of one automaton (ahocorasick_rs, in Rust); a reply is scanned once, in time
linear in its length whatever the number of phrases, and each key found yields the phrases that start with it.
A phrase may contain ``*`` gaps ("mailbox * full"): the later pieces are then looked for after the first.

In the compiled build (smtplens._accel) an ASCII text is scanned instead by a loop over a table of the same
automaton's transitions (:class:`_Table`, a DFA over the keys made only of ASCII characters): no text to encode for
Rust, no list of matches to build there, a C loop here. Both find the same matches in the same order. The bounce
dispatcher's gate words are found by such a table too, one that folds ASCII case (:func:`key_table`).
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import ahocorasick_rs

from smtplens._accel import install as install_accelerator
from smtplens._accel import is_compiled
from smtplens.classifier.verdict import Evidence

__all__ = ["Matcher", "Pattern", "key_table", "normalise"]


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
    if _COMPILED:  # one loop over the characters (a C loop there) proves it
        if lower.isascii() and _normal_ascii(lower):
            return lower
    elif lower.isascii() and lower.isprintable() and "  " not in lower and lower[:1] != " " and lower[-1:] != " ":
        return lower
    return " ".join(lower.split())


def _normal_ascii(lower: str) -> bool:
    """Whether the ASCII text ``lower`` is printable (space to "~") with neither a leading, a trailing nor a
    double space: what :func:`normalise` tests, in one pass."""
    prev = " "  # a leading space counts as a double one
    for ch in lower:
        if ch < " " or ch > "~" or (ch == " " and prev == " "):
            return False
        prev = ch
    return prev != " "  # no trailing space (an empty text is normalised by the general way, to "")


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


_Step = tuple[bool, bool, tuple[tuple[int, str, tuple[str, ...]], ...]]  # a _Head's first three fields, unnamed


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
        # the same without names, for :meth:`_take`: a compiled loop unpacks a plain tuple fastest
        self._steps: list[_Step] = [
            (h.word_start, h.plain, tuple((n, second, more) for n, second, more in h.entries)) for h in self._heads
        ]
        self._automaton = ahocorasick_rs.AhoCorasick(list(by_head)) if by_head else None
        self.size = sum(len(g) for g in by_head.values())
        # the transition table pays only where its loop is compiled; interpreted, the Rust automaton is faster
        self._table = _Table.build(list(by_head)) if _COMPILED and by_head else None

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
        found: list[int] = []
        table = self._table
        if table is not None and text.isascii():  # table.matches(text), written out: no list of matches
            delta, classes, shift, final, outputs = table.delta, table.classes, table.shift, table.final, table.outputs
            state = 0
            for at, ch in enumerate(text):
                state = delta[(state << shift) + classes[ord(ch)]]
                if final[state]:
                    out = outputs[state]
                    for k in range(0, len(out), 2):
                        self._take(found, text, out[k], at + 1 - out[k + 1], at + 1)
            return tuple(found)
        try:
            hits = self._automaton.find_matches_as_indexes(text, overlapping=True)
        except UnicodeEncodeError:
            hits = self._automaton.find_matches_as_indexes(_SURROGATE.sub(_SURROGATE_STAND_IN, text), True)
        for index, start, end in hits:
            self._take(found, text, index, start, end)
        return tuple(found)

    def _take(self, found: list[int], text: str, index: int, start: int, end: int) -> None:
        """Add to ``found`` (see :meth:`scan`) what the match of the ``index``-th key from ``start`` to ``end``
        stands for."""
        place = index  # (compiled: a C integer, for a quick look-up in the list; ``index`` stays an int object)
        word_start, plain, entries = self._steps[place]
        if start and word_start and ("a" <= text[start - 1] <= "z" or "0" <= text[start - 1] <= "9"):
            return  # a phrase starts at a word start (_ASCII_WORD): "ip" is not found inside "recipient"
        if plain:
            found.append(index)
            return
        for number, second, more in entries:
            if second:  # most phrases with gaps have two pieces: this test is written out for them
                at = text.find(second, end)
                if at < 0 or (more and not _pieces_follow(text, more, at + len(second))):
                    continue
            found.append(~number)

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


class _Table:
    """The automaton of the keys made of ASCII characters as a table of transitions (a DFA): what
    ``ahocorasick_rs`` finds in an ASCII text (overlapping, every match, ordered by end, longer keys first at one
    end), found by one loop over the text. Keys with other characters never occur in ASCII text.

    A state is a row of ``delta``, ``2 ** shift`` cells wide, one per class of characters; ``delta`` holds, at
    ``(state << shift) + class``, the next state (two bytes a state: a small table stays in the caches).
    ``classes`` holds the class of each byte value (0: in no key; only ASCII characters have one, but in a table
    built with ``fold``); ``final`` is 1 for a state where keys end,
    ``outputs`` those keys, longest first, as one flat tuple (index, length, index, length …). States are numbered
    depth first: the rows of the states along one key lie one after the other, as a match walks them."""

    MAX_STATES = 1 << 16

    def __init__(  # noqa: PLR0917 (the table's parts, as build makes them)
        self, delta: array[int], classes: bytes, shift: int, final: bytes, outputs: list[_Outputs], longest: int
    ) -> None:
        self.delta, self.classes, self.shift, self.final, self.outputs = delta, classes, shift, final, outputs
        self.longest = longest  # the length of the longest key

    @classmethod
    def build(cls, keys: list[str], fold: bool = False) -> _Table | None:
        """The table of ``keys`` (their indexes are the match indexes); None when it would have too many states.

        With ``fold`` (for :meth:`seen`), the keys are in lower case, may hold any character up to U+00FF (the
        bytes of a text read as latin-1), and an upper-case ASCII letter of the text goes where its lower-case
        letter goes: what scanning ``text.encode("latin-1").lower()`` for the keys' bytes finds."""
        limit = 256 if fold else 128  # the characters a key may hold
        usable = [bool(key) and max(map(ord, key)) < limit for key in keys]
        alphabet = sorted({ch for key, ok in zip(keys, usable, strict=True) if ok for ch in key})
        shift = len(alphabet).bit_length()  # 2 ** shift > len(alphabet): class 0 and one for each character
        width = 1 << shift
        classes = bytearray(256)  # a class for every byte (ASCII text, or latin-1 text read as its bytes)
        for number, ch in enumerate(alphabet, start=1):
            classes[ord(ch)] = number
            if fold and "a" <= ch <= "z":
                classes[ord(ch.upper())] = number
        trie: list[dict[int, int]] = [{}]  # the keys' trie: children by class, in the order of insertion
        ends: list[int] = [-1]  # the key that ends in each node
        for index, key in enumerate(keys):
            if not usable[index]:
                continue
            node = 0
            for ch in key:
                kind = classes[ord(ch)]
                child = trie[node].get(kind)
                if child is None:
                    child = len(trie)
                    trie[node][kind] = child
                    trie.append({})
                    ends.append(-1)
                node = child
            ends[node] = index
        if len(trie) > cls.MAX_STATES:
            return None
        order = [0]  # the nodes breadth first: a state's failure state, nearer the root, is done before it
        for node in order:
            order += trie[node].values()
        state_of = _depth_first(trie)
        delta = array("H", bytes(2 * width * len(order)))
        final = bytearray(len(order))
        outputs: list[_Outputs] = [()] * len(order)
        fail = [0] * len(order)
        for node in order:
            state = state_of[node]
            mine = (ends[node], len(keys[ends[node]])) if ends[node] >= 0 else ()
            outputs[state] = mine + outputs[fail[state]] if state else mine
            final[state] = 1 if outputs[state] else 0
            row, fail_row = state << shift, fail[state] << shift
            if state:  # where the failure state goes, unless a child of this state goes on (the root: itself)
                delta[row : row + width] = delta[fail_row : fail_row + width]
            for kind, child in trie[node].items():
                nxt = state_of[child]
                if state:
                    fail[nxt] = delta[fail_row + kind]
                delta[row + kind] = nxt
        longest = max((len(key) for key, ok in zip(keys, usable, strict=True) if ok), default=0)
        return cls(delta, bytes(classes), shift, bytes(final), outputs, longest)

    def matches(self, text: str) -> list[tuple[int, int, int]]:
        """(key index, start, end) of every match in ``text`` (ASCII), as ``find_matches_as_indexes(text,
        overlapping=True)`` of ahocorasick_rs gives them."""
        delta, classes, shift, final = self.delta, self.classes, self.shift, self.final
        hits = []
        state = 0
        for at, ch in enumerate(text):
            state = delta[(state << shift) + classes[ord(ch)]]
            if final[state]:
                out = self.outputs[state]
                for k in range(0, len(out), 2):
                    hits.append((out[k], at + 1 - out[k + 1], at + 1))
        return hits

    def seen(self, text: str, start: int, stop: int) -> list[int]:
        """The indexes of the keys found in ``text[start:stop]``, each at least once: the keys of the matches that
        :meth:`matches` finds there, the text read as its latin-1 bytes (a character above U+00FF as "?").

        The two halves of the text are scanned at once, the first on past the middle by the longest key less one
        character, so that every match lies whole in one of them: each step of a scan waits for the load of the step
        before, and two scans keep the processor busy where one leaves it waiting."""
        delta, classes, shift, final, outputs = self.delta, self.classes, self.shift, self.final, self.outputs
        data = text[max(start, 0) : stop].encode("latin-1", errors="replace")
        chars = data  # (compiled: a pointer to its bytes)
        size = len(data)
        middle = size // 2
        first = min(size, middle + max(self.longest - 1, 0))  # the end of the first half's scan
        second = size - middle  # the length of the second half's
        found: list[int] = []
        stamps = bytearray(len(self.final))  # the states whose keys are in ``found`` already
        marked = stamps  # (compiled: a pointer to its bytes)
        one = two = 0  # the state of each scan
        both = min(first, second)
        for step in range(both):
            one = delta[(one << shift) + classes[chars[step]]]
            two = delta[(two << shift) + classes[chars[middle + step]]]
            if final[one] or final[two]:
                _report(one, marked, outputs, found)
                _report(two, marked, outputs, found)
        for step in range(both, first):
            one = delta[(one << shift) + classes[chars[step]]]
            if final[one]:
                _report(one, marked, outputs, found)
        for step in range(both, second):
            two = delta[(two << shift) + classes[chars[middle + step]]]
            if final[two]:
                _report(two, marked, outputs, found)
        return found


def _report(state: int, marked: bytearray, outputs: list[_Outputs], found: list[int]) -> None:
    """Add to ``found`` the keys that end in ``state`` (none in a state that is not final), unless ``marked`` says
    they were added before."""
    if not marked[state]:
        marked[state] = 1
        out = outputs[state]
        for k in range(0, len(out), 2):
            found.append(out[k])


def key_table(keys: list[str]) -> _Table | None:
    """The folding table of ``keys`` (see :meth:`_Table.build`) where its scan, :meth:`_Table.seen`, is compiled;
    None in the interpreted build, where ahocorasick_rs scans faster."""
    return _Table.build(keys, fold=True) if _COMPILED else None


def _depth_first(trie: list[dict[int, int]]) -> list[int]:
    """The state of each node of ``trie``: its place in a depth-first walk (pre-order) from the root, node 0."""
    state_of = [0] * len(trie)
    stack = [0]
    number = 0
    while stack:
        node = stack.pop()
        state_of[node] = number
        number += 1
        stack += reversed(trie[node].values())
    return state_of


_Outputs = tuple[int, ...]  # the keys that end in a state: index, length, index, length … (longest first)


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
_COMPILED = is_compiled(_head)  # whether this is the compiled build (where the table pays)
install_accelerator("matcher", globals(), ("Matcher", "normalise", "key_table"))
