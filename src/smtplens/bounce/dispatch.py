"""Which decoders to ask about a mail: one scan of its header instead of asking all 48 ``detect`` functions.

Most decoders recognise their format only if some word stands in the mail's header: in the sender, the subject,
the Message-ID or another field's value, or as a field name (``mailer-daemon``, ``failure notice``,
``x-failed-recipients``). A decoder module states those words as ``GATE``, a necessary condition of its
``detect`` on the lower-case, unfolded top-level header fields (``Mail.lowered``, ``name in mail.headers``).
The words (each by its longest piece without spaces, see ``_key``) are looked for in one pass of an
Aho-Corasick automaton over the whole top-level header in lower case (the compiled build's: a transition table
that folds ASCII case, run over the mail's own text, ``matcher.key_table``); only the decoders whose words were seen,
and those without a gate, are asked, in registry order. A word seen in another field than the one its decoder
reads only costs that decoder's ``detect`` call: the result is always what asking every decoder in order would
give (tests/test_bounce_dispatch.py checks this on every fixture and on generated headers).

Most of the decoders opened by common header words ("mailer-daemon", "delivery") recognise their format only by
a sentence of its notice: a decoder module states those sentences as ``TEXT_GATE``, a necessary condition of its
``detect`` on the readable text in lower case (``Mail.text``, ``Mail.head``). A ``detect`` that is also true on a
header field alone states that field's words as ``HEADER_SIGNS``: one of them in the header (looked for as the gate
words are, in the same scan) opens its text gate. The readable text is scanned once, by a second automaton, when a
candidate's text gate is not open by then. A text that is not ASCII (a case-insensitive pattern matches "K", the
Kelvin sign, for "k") or longer than ``MAX_TEXT_SCAN`` opens every text gate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ahocorasick_rs

from smtplens.bounce.decoders import Decoder
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Finding
from smtplens.classifier.matcher import key_table

__all__ = ["Dispatcher", "Entry"]

ENCODED_FIELDS = ("subject", "from")  # the gated fields that carry encoded words (RFC 2047): free text, a name
MAX_REMEMBERED = 4096  # candidate lists kept (one per combination of gate words seen; real mail shows a few dozen)
MAX_TEXT_SCAN = 100_000  # characters of readable text scanned for the text gates; a longer text opens them all
Entry = tuple[Callable[[Mail], bool], Callable[[Mail], list[Finding]], str]  # detect, decode, name


class Dispatcher:
    """The candidate decoders of a mail, in registry order (built once from the registry)."""

    def __init__(self, decoders: Sequence[Decoder]) -> None:
        """Raises ValueError for a gate word that is empty, not in lower case, or has a letter outside ASCII that
        has a case (the header is lowered as bytes: only ASCII letters), and for a text gate word that is empty or
        not lower-case ASCII."""
        self._entries: tuple[Entry, ...] = tuple((d.detect, d.decode, d.name) for d in decoders)
        keys: dict[str, int] = {}  # key → bit set of the decoders whose gate words have that key
        signs: dict[str, int] = {}  # key → bit set of the decoders whose header signs have that key
        sentences: dict[str, int] = {}  # text gate word → bit set of the decoders that state it
        always = 0  # decoders without a gate
        open_text = 0  # decoders without a text gate
        for i, decoder in enumerate(decoders):
            text_gate: tuple[str, ...] = getattr(decoder, "TEXT_GATE", ())
            if not getattr(decoder, "GATE", ()):
                always |= 1 << i
            if not text_gate:
                open_text |= 1 << i
            _add_keys(keys, decoder, "GATE", i)
            _add_keys(signs, decoder, "HEADER_SIGNS", i)
            for word in text_gate:
                if word != word.lower() or not word.strip() or not word.isascii():
                    raise ValueError(f"{decoder.name}: text gate word {word!r} is empty or not lower-case ASCII")
                sentences[word] = sentences.get(word, 0) | 1 << i
        self._always = always
        self._open_text = open_text
        self._all = (1 << len(decoders)) - 1
        self._keys = list(keys | signs)
        self._masks = [keys.get(k, 0) for k in self._keys]
        self._text_masks = [signs.get(k, 0) for k in self._keys]
        self._automaton = ahocorasick_rs.BytesAhoCorasick([k.encode("utf-8") for k in self._keys])
        self._sentences = list(sentences)
        self._sentence_masks = [sentences[w] for w in self._sentences]
        self._text_automaton = ahocorasick_rs.BytesAhoCorasick([w.encode("ascii") for w in self._sentences])
        # The compiled build scans the mail's own text with transition tables that fold ASCII case (the keys as the
        # latin-1 text of their UTF-8 bytes, as the header is held): no lower-case copy, no list of matches.
        self._table = key_table([k.encode("utf-8").decode("latin-1") for k in self._keys])
        self._text_table = key_table(self._sentences)
        self._chosen: dict[int, tuple[Entry, ...]] = {}

    def candidates(self, mail: Mail) -> tuple[Entry, ...]:
        """The decoders whose gate words occur in the mail (or that have no gate), in registry order."""
        mask = self._always
        text_mask = self._open_text
        masks = self._masks
        text_masks = self._text_masks
        for index in self._header_keys(mail):
            mask |= masks[index]
            text_mask |= text_masks[index]
        if mask & ~text_mask:  # a candidate's text gate is not open yet: look in the readable text
            mask &= text_mask | self._text_gates(mail.text)
        chosen = self._chosen.get(mask)
        if chosen is None:
            if len(self._chosen) >= MAX_REMEMBERED:
                self._chosen.clear()
            chosen = self._chosen[mask] = tuple(e for i, e in enumerate(self._entries) if mask >> i & 1)
        return chosen

    def _header_keys(self, mail: Mail) -> list[int]:
        """The indexes of the keys found in the mail's top-level header (see :func:`_header`), each at least once."""
        table = self._table
        if table is None:
            return [index for index, _, _ in self._automaton.find_matches_as_indexes(_header(mail), overlapping=True)]
        root = mail.root
        found = table.seen(mail.raw, root._head, root._start)
        for value in _decoded_words(mail):
            found += table.seen(value, 0, len(value))
        return found

    def _text_gates(self, text: str) -> int:
        """The decoders whose text gate words stand in ``text`` (lowered); all of them for a text that is long or
        not ASCII."""
        if len(text) > MAX_TEXT_SCAN or not text.isascii():
            return self._all
        mask = 0
        masks = self._sentence_masks
        if self._text_table is not None:
            found = self._text_table.seen(text, 0, len(text))
        else:
            lower = text.encode("ascii").lower()
            found = [index for index, _, _ in self._text_automaton.find_matches_as_indexes(lower, overlapping=True)]
        for index in found:
            mask |= masks[index]
        return mask

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Every decoder, in registry order."""
        return self._entries


def _add_keys(keys: dict[str, int], decoder: Decoder, attribute: str, bit: int) -> None:
    """Into ``keys``, the key of each of the decoder's header words (its ``GATE`` or ``HEADER_SIGNS``), with the
    decoder's bit. Raises ValueError for a word that is empty, not in lower case, or has a letter outside ASCII
    that has a case (the header is lowered as bytes: only ASCII letters)."""
    for word in getattr(decoder, attribute, ()):
        if word != word.lower() or not word.strip() or any(not c.isascii() and c.upper() != c for c in word):
            raise ValueError(f"{decoder.name}: gate word {word!r} is empty, not in lower case or has a case")
        key = _key(word)
        keys[key] = keys.get(key, 0) | 1 << bit


def _key(word: str) -> str:
    """What is looked for to find a gate word: its longest piece without white space. The piece stands as written
    in the raw header wherever the word stands in an unfolded field value (unfolding only turns white space into
    one space), so the header needs no unfolding before it is scanned."""
    return max(word.split(), key=len)


def _header(mail: Mail) -> bytes:
    """The mail's top-level header in lower case, as its bytes: where the gate keys are looked for. (Bytes are
    scanned faster; the keys are ASCII or UTF-8 without case, and the ASCII letters of latin-1 text lower the same
    in bytes.) A subject or sender written as encoded words is added decoded (:func:`_decoded_words`): it still
    opens its gate."""
    scanned = mail.root.header_text().encode("latin-1", errors="replace").lower()
    decoded = _decoded_words(mail)
    return scanned + "\n".join(decoded).encode("latin-1") if decoded else scanned


def _decoded_words(mail: Mail) -> list[str]:
    """The subject and sender as ``Mail.lowered`` reads them, where they are written as encoded words (RFC 2047),
    each as the latin-1 text of its UTF-8 bytes (the form the header is held in); none where the header holds no
    encoded word."""
    if not mail.in_header("=?"):
        return []
    return [
        mail.lowered(name).encode("utf-8", errors="replace").decode("latin-1")
        for name in ENCODED_FIELDS
        if "=?" in (mail.headers.get(name) or "")
    ]
