"""The dispatcher asks only the decoders whose gate words occur in a mail's header (and whose text gate words occur
in its readable text); it must never leave out a decoder that would have recognised the mail (each ``GATE`` and
each ``TEXT_GATE`` is a necessary condition of its ``detect``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtplens.bounce import _DISPATCH, decode_bounce
from smtplens.bounce.dispatch import MAX_TEXT_SCAN, Dispatcher
from smtplens.bounce.mime import parse_mail
from smtplens.bounce.registry import DECODERS
from smtplens.classifier import matcher
from tests.conftest import shared_path

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
# Decoders whose detect() looks beyond the header (MIME structure, the raw text), so they have no gate.
UNGATED = {"arf", "plaintext", "rfc3464", "rfc3834"}


def _missed(data: bytes) -> list[str]:
    mail = parse_mail(data)
    asked = {name for _, _, name in _DISPATCH.candidates(mail)}
    return [name for detect, _, name in _DISPATCH.entries if name not in asked and detect(mail)]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.eml")), ids=lambda p: p.name)
def test_no_fixture_loses_a_decoder_that_recognises_it(path: Path) -> None:
    data = path.read_bytes()
    assert _missed(data) == []
    # folded and upper-cased header values are found as well
    assert _missed(data.replace(b"Subject: ", b"Subject:\n ").upper()) == []


def test_no_corpus_mail_loses_a_decoder_that_recognises_it() -> None:
    """Every mail of the shared corpus as it is, upper-cased and lower-cased (skipped without ../shared)."""
    from smtplens.bounce.inputs import expand, iter_mails

    corpus = shared_path("corpus", "sisimai", "maildir")
    lost = []
    for path, data in iter_mails(expand([corpus])):
        assert isinstance(data, bytes)
        lost += [(path, name) for variant in (data, data.upper(), data.lower()) for name in _missed(variant)]
    assert lost == []


def test_every_decoder_is_gated_or_known_to_be_ungated() -> None:
    ungated = {d.name for d in DECODERS if not getattr(d, "GATE", ())}
    assert ungated == UNGATED


def _stub(gate: tuple[str, ...], text_gate: tuple[str, ...] = ()) -> object:
    """A decoder that recognises nothing, with these gate and text gate words."""

    class Stub:
        name = "stub"
        GATE = gate
        TEXT_GATE = text_gate

        @staticmethod
        def detect(mail: object) -> bool:
            return False

        @staticmethod
        def decode(mail: object) -> list[object]:
            return []

    return Stub


def test_gate_words_must_be_lower_case() -> None:
    with pytest.raises(ValueError, match="lower case"):
        Dispatcher([_stub(("Mailer-Daemon",))])  # type: ignore[list-item]


def test_text_gate_words_must_be_lower_case_ascii() -> None:
    for word in ("Transcript of session", "smtp server: errors \u2014"):
        with pytest.raises(ValueError, match="text gate"):
            Dispatcher([_stub(("mailer-daemon",), (word,))])  # type: ignore[list-item]


_SENDMAIL = b"From: Mail Delivery Subsystem <MAILER-DAEMON@example.net>\nSubject: Returned mail\n\n"


def _asked(data: bytes) -> set[str]:
    return {name for _, _, name in _DISPATCH.candidates(parse_mail(data))}


def test_a_text_gate_opens_on_its_sentence_in_any_case_and_stays_shut_without_it() -> None:
    assert "sendmail" in _asked(_SENDMAIL + b"----- TRANSCRIPT OF SESSION FOLLOWS -----\n")
    assert "sendmail" not in _asked(_SENDMAIL + b"The message could not be delivered.\n")


def test_a_text_that_is_not_ascii_or_is_long_opens_every_text_gate() -> None:
    # (a case-insensitive pattern takes the Kelvin sign for "k"; the scan lowers ASCII only)
    assert "sendmail" in _asked(_SENDMAIL + "The message could not be delivered \u212a.\n".encode())
    assert "sendmail" in _asked(_SENDMAIL + b"x" * (MAX_TEXT_SCAN + 1))


def test_a_header_sign_opens_a_text_gate() -> None:
    header = b"From: MAILER-DAEMON@example.net\nReceived: from x by y (DragonFly Mail Agent v0.13);\n\n"
    assert "dragonfly" in _asked(header + b"No mark in this text.\n")
    assert "dragonfly" not in _asked(header.replace(b"DragonFly ", b"") + b"No mark in this text.\n")


def _words() -> list[str]:
    return sorted({w for d in DECODERS for w in getattr(d, "GATE", ())})


def _sentences() -> list[str]:
    return sorted({w for d in DECODERS for w in getattr(d, "TEXT_GATE", ())})


_FIELDS = ("From", "Subject", "Message-ID", "X-Mailer", "Reply-To", "Received", "X-Failed-Recipients", "X-Mlserver")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_FIELDS),
            st.lists(st.one_of(st.sampled_from(_words()), st.text("ab -@.:<>\t", max_size=6)), max_size=4),
            st.booleans(),
        ),
        max_size=6,
    ),
    st.sampled_from(
        [
            "",
            "Transcript of session follows\n",
            "qmail-send program\n",
            "---The following addresses had delivery errors---\n",
        ]
    ),
)
def test_random_headers_never_lose_a_decoder(fields: list[tuple[str, list[str], bool]], body: str) -> None:
    lines = []
    for name, pieces, fold in fields:
        value = (" \n\t" if fold else " ").join(pieces)
        lines.append(f"{name}: {value}")
    data = ("\n".join(lines) + "\n\n" + body).encode()
    assert _missed(data) == []
    decode_bounce(data)  # and the whole pipeline takes it


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_words()), min_size=1, max_size=3),
    st.lists(
        st.tuples(st.sampled_from(_sentences()), st.sampled_from(["lower", "upper", "title", "cut"])),
        max_size=3,
    ),
    st.text("ab \n:<>-.", max_size=20),
)
def test_random_texts_never_lose_a_decoder(words: list[str], sentences: list[tuple[str, str]], filler: str) -> None:
    body = filler
    for sentence, case in sentences:
        # a sentence one character short must not open its gate alone
        written = sentence[:-1] if case == "cut" else getattr(sentence, case)()
        body += "\n" + written + filler
    data = f"From: {words[0]}\nSubject: {' '.join(words)}\n\n{body}\n".encode()
    assert _missed(data) == []
    assert _missed(data.replace(b"Subject:", b"X-Mailer:")) == []


# The compiled build scans the header and the text with a folding transition table (matcher._Table.seen) instead of
# lowering a copy for the Rust automaton; both must find the same keys. The interpreted table is checked always, the
# compiled one where it is built.
_HEADER_KEYS = [k.encode("utf-8").decode("latin-1") for k in _DISPATCH._keys]
_PIECES = st.one_of(
    st.sampled_from(_HEADER_KEYS + [k.upper() for k in _HEADER_KEYS] + [k.title() for k in _HEADER_KEYS]),
    st.text(st.characters(max_codepoint=0x2FF), max_size=5),
)


def _tables(keys: list[str]) -> list[matcher._Table]:
    pure = matcher._Table.build(keys, fold=True)
    assert pure is not None
    compiled = matcher.key_table(keys)
    return [pure] if compiled is None else [pure, compiled]


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join), st.integers(-3, 40), st.integers(0, 200))
def test_the_folding_table_finds_the_keys_the_automaton_finds_in_the_lowered_bytes(
    text: str, start: int, stop: int
) -> None:
    lowered = text[max(start, 0) : stop].encode("latin-1", errors="replace").lower()
    expected = {index for index, _, _ in _DISPATCH._automaton.find_matches_as_indexes(lowered, overlapping=True)}
    for table in _tables(_HEADER_KEYS):
        assert set(table.seen(text, start, stop)) == expected, (text, start, stop)


def test_the_folding_table_finds_every_key_in_any_case_and_the_classifier_s_table_does_not_fold() -> None:
    for table in _tables(_HEADER_KEYS):
        for index, key in enumerate(_HEADER_KEYS):
            upper = key.encode("latin-1").upper().decode("latin-1")  # (as a mail's bytes: ASCII letters only)
            for written in (key, upper, f"x{upper}y"):
                assert index in table.seen(written, 0, len(written)), written
    # (the table scans the two halves of a text at once: a key across the middle is found wherever it stands)
    for table in _tables(_HEADER_KEYS):
        for index, key in enumerate(_HEADER_KEYS):
            middle = 3 * len(key) // 2  # of a text of three times the key's length
            for inside in range(len(key) + 1):  # characters of the key before the middle
                written = "." * (middle - inside) + key + "." * (2 * len(key) - middle + inside)
                assert index in table.seen(written, 0, len(written)), (key, inside)
    plain = matcher._Table.build(["abc"])
    assert plain is not None
    assert plain.matches("ABC abc") == [(0, 4, 7)]
