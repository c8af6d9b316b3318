"""compare: complete, seam-free sentences in every language, derived from the data."""

from __future__ import annotations

import re

import pytest

from smtplens import compare, lookup
from smtplens.knowledge.load import knowledge

LANGS = ("en", "de", "fr", "es")
PAIRS = [
    ("421", "554"),
    ("450", "550"),
    ("421", "4.7.0"),
    ("250", "550"),
    ("5.1.1", "5.2.2"),
    ("X.7.1", "535"),
    ("354", "554"),
    ("221", "421"),
    ("2.X.X", "X.7.X"),
]


def _sentences(cmp_texts: list[str]) -> list[str]:
    return [t for t in cmp_texts if t]


def _all_texts(lang: str, a: str, b: str) -> list[str]:
    c = compare(a, b, lang)
    return [c.title, c.summary, *c.differences, *c.when_to_use]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_complete_sentences_without_seams(lang: str, a: str, b: str) -> None:
    c = compare(a, b, lang)
    for text in [c.summary, *c.differences, *c.when_to_use]:
        assert "{" not in text and "}" not in text, text
        assert text.rstrip()[-1] in '.!?)»"', text
        assert not re.search(r"\b(\w+) \1\b", text, re.IGNORECASE), text
        assert "  " not in text, text
    assert len(c.differences) >= 5
    assert c.references


def test_421_vs_554_english_content() -> None:
    c = compare("421", "554", "en")
    assert "421" in c.summary and "554" in c.summary
    joined = " ".join(c.differences)
    assert "transient" in joined and "permanent" in joined
    assert "closes the connection" in joined
    assert any("Typical causes of 421" in d for d in c.differences)
    assert any(t.startswith("Rule of thumb") for t in c.when_to_use)


def test_german_page_is_german() -> None:
    c = compare("421", "554", "de")
    text = " ".join([c.summary, *c.differences, *c.when_to_use])
    english_markers = [" the ", " and ", " is ", " when ", " server closes "]
    assert not [m for m in english_markers if m in text], text
    assert "vorübergehend" in text.lower() or "temporär" in text.lower()
    assert c.a.lang == "de" and c.a.fallback == ()


def test_references_are_merged_without_duplicates() -> None:
    c = compare("421", "554")
    urls = [r.url for r in c.references]
    assert len(urls) == len(set(urls))
    assert any("rfc5321" in u for u in urls)


@pytest.mark.parametrize("lang", LANGS)
def test_every_code_pairs_with_421(lang: str) -> None:
    for key in knowledge().facts:
        c = compare("421", key, lang)
        assert c.summary and c.differences
        assert lookup(key, lang).title in c.title
