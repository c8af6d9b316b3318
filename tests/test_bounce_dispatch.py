"""The dispatcher asks only the decoders whose gate words occur in a mail's header; it must never leave out a
decoder that would have recognised the mail (each ``GATE`` is a necessary condition of its ``detect``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtplens.bounce import _DISPATCH, decode_bounce
from smtplens.bounce.dispatch import Dispatcher
from smtplens.bounce.mime import parse_mail
from smtplens.bounce.registry import DECODERS

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


def test_every_decoder_is_gated_or_known_to_be_ungated() -> None:
    ungated = {d.name for d in DECODERS if not getattr(d, "GATE", ())}
    assert ungated == UNGATED


def test_gate_words_must_be_lower_case() -> None:
    class Upper:
        name = "upper"
        GATE = ("Mailer-Daemon",)

        @staticmethod
        def detect(mail: object) -> bool:
            return False

        @staticmethod
        def decode(mail: object) -> list[object]:
            return []

    with pytest.raises(ValueError, match="lower case"):
        Dispatcher([Upper])  # type: ignore[list-item]


def _words() -> list[str]:
    return sorted({w for d in DECODERS for w in getattr(d, "GATE", ())})


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
