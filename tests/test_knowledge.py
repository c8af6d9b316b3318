"""The knowledge base is complete, matches the reference lists, and is validated on load."""

from __future__ import annotations

import csv
import shutil
from importlib import resources
from pathlib import Path

import pytest

from smtplens import KnowledgeError, Level, languages, list_codes, lookup
from smtplens.knowledge.entries import ALL_TEXT_FIELDS
from smtplens.knowledge.load import knowledge, load_knowledge
from tests.conftest import FIXTURES

LANGS = ("en", "de", "fr", "es")


def _basic_rows() -> list[dict[str, str]]:
    with (FIXTURES / "reference" / "basic-reply-codes.csv").open(encoding="utf-8") as fh:
        return [row for row in csv.DictReader(fh) if row["code"] != "n/a"]


def _enhanced_rows() -> list[dict[str, str]]:
    with (FIXTURES / "reference" / "enhanced-status-codes.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _enhanced_key(row: dict[str, str]) -> str:
    return row["code"].replace("XXX", "X").replace("YYY", "X")


def test_every_basic_code_and_definition_is_present() -> None:
    rows = _basic_rows()
    assert len({r["code"] for r in rows}) == 44
    for row in rows:
        info = lookup(row["code"])
        texts = [d.text for d in info.official]
        assert row["rfc_text"] in texts, (row["code"], row["rfc_text"])
        match = next(d for d in info.official if d.text == row["rfc_text"])
        assert match.rfc == row["defined_in"]
        assert match.section == row["section"]


def test_every_registry_entry_is_present_verbatim() -> None:
    rows = _enhanced_rows()
    assert len(rows) == 92
    kb = knowledge()
    for row in rows:
        key = _enhanced_key(row)
        facts = kb.facts[key]
        assert facts.level is Level(row["level"])
        assert facts.definitions[0].text == row["registry_name"]
        if row["level"] == "detail":
            assert facts.iana_basic == row["associated_basic_codes"], key
            assert facts.definitions[0].rfc == row["reference"], key


@pytest.mark.parametrize("lang", LANGS)
def test_every_field_is_filled_in_every_language(lang: str) -> None:
    kb = knowledge()
    missing = [
        f"{key}.{name}"
        for key in kb.facts
        for name in ALL_TEXT_FIELDS
        if getattr(kb.texts[lang].get(key), name, None) is None
    ]
    assert missing == []
    assert all(not lookup(key, lang).fallback for key in kb.facts)


@pytest.mark.parametrize("lang", ["de", "fr", "es"])
def test_translations_are_real(lang: str) -> None:
    """No text field may be left in English: each differs from the English text."""
    kb = knowledge()
    same = [
        f"{key}.{name}"
        for key in kb.facts
        for name in ("summary", "description", "when", "fix_sender", "fix_operator", "use_when")
        if getattr(kb.texts[lang][key], name) == getattr(kb.texts["en"][key], name)
    ]
    assert same == []


def test_languages() -> None:
    assert set(languages()) == set(LANGS)
    assert languages()["de"] == "Deutsch"


def test_enhanced_lookup_takes_class_from_digit() -> None:
    info = lookup("5.1.1", "de")
    assert info.reply_class is not None and info.reply_class.value == "permanent"
    assert info.class_heading is not None and info.subject_heading is not None
    assert lookup("4.1.1").reply_class is not None
    assert lookup("X.1.1").reply_class is None
    assert lookup("#5.1.01").code == "5.1.1"


def test_class_and_subject_entries() -> None:
    assert lookup("5.X.X").level is Level.CLASS
    assert lookup("5.XXX.YYY").code == "5.X.X"
    assert lookup("X.7.X").level is Level.SUBJECT
    assert lookup("x.7.yyy").code == "X.7.X"


def test_list_and_search() -> None:
    everything = list_codes()
    assert len(everything) == 44 + 92
    transient = list_codes(reply_class=lookup("421").reply_class)
    assert all(i.reply_class is None or i.reply_class.value == "transient" for i in transient)
    assert "421" in [i.code for i in list_codes(search="greylisting")]
    assert "421" in [i.code for i in list_codes("de", search="überlastet")]


def _copy_tree(tmp_path: Path) -> Path:
    src = resources.files("smtplens.knowledge")
    dest = tmp_path / "knowledge"
    shutil.copytree(str(src), dest, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dest


def test_copy_loads(tmp_path: Path) -> None:
    kb = load_knowledge(_copy_tree(tmp_path))
    assert len(kb.facts) == 44 + 92


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "codes/basic-4xx.toml",
            'class = "transient"',
            'class = "permanent"',
            "codes/basic-4xx.toml: 421: class",
        ),
        (
            "codes/basic-4xx.toml",
            "closes_connection = true",
            'closes_connection = "yes"',
            "421: closes_connection",
        ),
        ("codes/basic-4xx.toml", 'code = "421"', 'code = "4211"', "code"),
        ("codes/enhanced-x7a.toml", 'code = "X.7.1"', 'code = "X.7.1000"', "X.7.1000: code"),
        ("texts/en/basic-4xx.toml", '["421"]', '["499"]', "499"),
        ("codes/basic-55x.toml", "[[code]]", "[[code]", "not valid TOML"),
    ],
)
def test_broken_file_names_file_and_field(tmp_path: Path, file: str, old: str, new: str, expected: str) -> None:
    root = _copy_tree(tmp_path)
    path = root / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(root)
    assert expected in str(err.value)
    assert file.rsplit("/", maxsplit=1)[-1] in str(err.value) or "texts/en" in str(err.value)


def test_missing_translation_falls_back_per_field(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    path = root / "texts" / "de" / "basic-4xx.toml"
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index('["421"]')
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith('["'))
    kept = [ln for ln in lines[start:end] if not ln.startswith("summary")]
    path.write_text("\n".join(lines[:start] + kept + lines[end:]) + "\n", encoding="utf-8")
    kb = load_knowledge(root)
    info = lookup("421", "de", kb=kb)
    assert info.fallback == ("summary",)
    assert info.summary == kb.texts["en"]["421"].summary
    assert info.title == kb.texts["de"]["421"].title


def test_a_new_language_is_data_only(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    (root / "texts" / "it").mkdir()
    (root / "texts" / "it" / "ui.toml").write_text('language_name = "Italiano"\n', encoding="utf-8")
    (root / "texts" / "it" / "basic-4xx.toml").write_text(
        '["421"]\ntitle = "Servizio non disponibile"\n', encoding="utf-8"
    )
    kb = load_knowledge(root)
    info = lookup("421", "it", kb=kb)
    assert info.title == "Servizio non disponibile"
    assert "summary" in info.fallback and "title" not in info.fallback
    assert kb.language_names["it"] == "Italiano"


def test_only_closing_basic_codes_close_the_connection() -> None:
    """RFC 5321 section 3.8: the server closes after 221 and 421; RFC 7504: 521. Enhanced codes never decide it."""
    closing = {key for key, facts in knowledge().facts.items() if facts.closes_connection}
    assert closing == {"221", "421", "521"}
