"""The compiled accelerator (smtplens._accel) gives exactly what the pure-Python modules it is built from give.

Every reply of tests/fixtures and of ../shared/corpus/replies (when present), variants of them, and arbitrary
text from hypothesis go through both paths: the parser, the normaliser, the matcher's scan and the classifier;
one test runs the whole pipeline in a process with ``SMTPLENS_PURE=1`` and compares its verdicts. Outside CI the
tests of the compiled modules are skipped when they are not built (no C compiler); in CI they must be built.

The ways taken only by the compiled build (character loops: the matcher's transition table, the parser's signs
of guard words and places of codes, the normaliser's test) are also checked here, interpreted, against the ways
the pure modules take, so that they are tested wherever the tests run.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtplens import _accel, reply
from smtplens.classifier import engine, matcher
from smtplens.classifier.tables import tables
from smtplens.errors import ParseError
from smtplens.model import Stage
from smtplens.reply import _pure_parse_reply
from tests.conftest import FIXTURES, IN_CI, SHARED


def _compiled(name: str) -> ModuleType:
    """The compiled build of one module; skips (fails in CI, whose install compiles it) when there is none."""
    why = _accel.status()[name]
    if why != "compiled":
        if IN_CI and _accel.PURE_ENV not in os.environ:
            pytest.fail(f"smtplens._accel.{name} is not in use in CI: {why}")
        pytest.skip(f"smtplens._accel.{name}: {why}")
    return importlib.import_module(f"smtplens._accel.{name}")


def _samples() -> list[str]:
    """The project's classified samples and the shared corpus's replies, with variants: CRLF line ends, a log
    wrapper, a trailing recipient."""
    rows = FIXTURES.joinpath("replies-classified.tsv").read_text(encoding="utf-8").splitlines()
    texts = [row.split("\t")[0].replace("\\n", "\n") for row in rows if row and not row.startswith("#")]
    corpus = SHARED / "corpus" / "replies" / "replies-dev.jsonl"
    if corpus.exists():
        lines = corpus.read_text(encoding="utf-8").splitlines()
        texts += [str(json.loads(line)["reply"]) for line in lines if line.strip()]
    variants = []
    for text in texts:
        variants += [
            text.replace("\n", "\r\n"),
            f"host mx.example.net[192.0.2.7] said: {text} (in reply to RCPT TO command)",
            f"{text} <u1@example.net>",
        ]
    return texts + variants


SAMPLES = _samples()

_PIECES = st.sampled_from(
    [
        "550",
        "421",
        "250-",
        "550-5.1.1 ",
        "220-mx ",
        "5.1.1",
        "#4.7.0",
        "(5.7.1)",
        "[",
        "]:",
        "said:",
        "Remote host said:",
        "Diagnostic-Code: smtp;",
        "Remote-MTA: dns; mx.example.org",
        "\r\n",
        "\n",
        "host a.example[1.2.3.4]",
        "(in reply to RCPT TO command)",
        "in reply to end of DATA command",
        "SMTP error from remote mail server after RCPT TO:<a@b>:",
        "while talking to mx.example.com.:",
        "<<< ",
        ">>> DATA",
        " ",
        "  ",
        "\t",
        "-",
        ".",
        ":",
        "user unknown",
        "mailbox full",
        "rate limit",
        "spamhaus",
        "gsmtp",
        "é",
        "メール",
        "\ud800",
        "\x00",
    ]
)
REPLY_LIKE = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=14).map("".join),
)


def _parse_outcome(parse: object, text: str | bytes, strict: bool) -> object:
    assert callable(parse)
    try:
        return parse(text, strict=strict)
    except ParseError as exc:
        return ("ParseError", str(exc), exc.problems)


def _same_parse(compiled: ModuleType, text: str) -> None:
    for strict in (False, True):
        for given_text in (text, text.encode("utf-8", "surrogatepass")):
            pure = _parse_outcome(_pure_parse_reply, given_text, strict)
            assert _parse_outcome(compiled.parse_reply, given_text, strict) == pure, (given_text, strict)


def _same_classification(compiled: ModuleType, text: str) -> None:
    decisions = tables().decisions
    parsed = _pure_parse_reply(text)
    for stage in (None, Stage.MAIL, Stage.CONNECT):
        decisions.clear()  # each path decides for itself rather than reading the other's decision
        pure = engine._pure_classify(parsed, stage=stage)
        decisions.clear()
        assert compiled.classify(text, stage=stage) == pure, (text, stage)


def test_both_paths_are_reported_and_the_pure_entry_points_kept() -> None:
    paths = _accel.status()
    assert set(paths) == set(_accel.MODULES)
    assert all(path == "compiled" or path.startswith("pure (") for path in paths.values())
    assert engine._pure_classify.__module__ == "smtplens.classifier.engine"
    assert matcher._PureMatcher.__module__ == "smtplens.classifier.matcher"


def test_in_ci_the_install_built_the_accelerator() -> None:
    if not IN_CI or _accel.PURE_ENV in os.environ:
        pytest.skip("checked in CI, where scripts/test installs with the compiler")
    assert _accel.status() == dict.fromkeys(_accel.MODULES, "compiled")


def test_a_build_is_used_only_with_the_sources_it_was_built_from(tmp_path: Path) -> None:
    compiled = _compiled("reply")
    pure_source = Path(_pure_parse_reply.__code__.co_filename)
    assert _accel.built_from(compiled, "reply", str(pure_source))
    edited = tmp_path / "reply.py"
    edited.write_bytes(pure_source.read_bytes() + b"# an edit after the build\n")
    assert not _accel.built_from(compiled, "reply", str(edited))


def test_the_parser_agrees_on_every_sample() -> None:
    compiled = _compiled("reply")
    for text in SAMPLES:
        _same_parse(compiled, text)


def test_the_matcher_agrees_on_every_sample() -> None:
    compiled = _compiled("matcher")
    patterns = tables().matcher._patterns
    pure, fast = matcher._PureMatcher(patterns), compiled.Matcher(patterns)
    for text in SAMPLES:
        normal = matcher._pure_normalise(text)
        assert compiled.normalise(text) == normal
        assert fast.scan(normal) == pure.scan(normal), text
        assert fast.find(normal) == pure.find(normal), text


def test_the_classifier_agrees_on_every_sample() -> None:
    compiled = _compiled("engine")
    for text in SAMPLES:
        _same_classification(compiled, text)


@settings(max_examples=400, deadline=None)
@given(REPLY_LIKE)
def test_the_parser_agrees_on_any_text(text: str) -> None:
    _same_parse(_compiled("reply"), text)


@cache
def _matchers() -> tuple[object, matcher.Matcher]:
    """The compiled and the pure matcher of the shipped tables, built once (the compiled one builds its table)."""
    patterns = tables().matcher._patterns
    return _compiled("matcher").Matcher(patterns), matcher._PureMatcher(patterns)


@settings(max_examples=300, deadline=None)
@given(REPLY_LIKE)
def test_the_matcher_agrees_on_any_text(text: str) -> None:
    normal = matcher._pure_normalise(text)
    assert _compiled("matcher").normalise(text) == normal
    fast, pure = _matchers()
    assert fast.scan(normal) == pure.scan(normal)  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(REPLY_LIKE)
def test_the_classifier_agrees_on_any_text(text: str) -> None:
    _same_classification(_compiled("engine"), text)


_PURE_RUN = """
import json, sys
from smtplens import classify, parse_reply
from smtplens._accel import status
assert set(status().values()) == {"pure (SMTPLENS_PURE is set)"}, status()
texts = json.load(sys.stdin)
json.dump([[repr(parse_reply(t)), repr(classify(t))] for t in texts], sys.stdout)
"""


def test_a_pure_process_gives_the_same_verdicts() -> None:
    """The whole pipeline with SMTPLENS_PURE=1 in its own process against this one (compiled where built)."""
    from smtplens import classify, parse_reply

    env = {**os.environ, _accel.PURE_ENV: "1"}
    run = subprocess.run(
        [sys.executable, "-c", _PURE_RUN],
        input=json.dumps(SAMPLES),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    pure = json.loads(run.stdout)
    here = [[repr(parse_reply(t)), repr(classify(t))] for t in SAMPLES]
    assert len(pure) == len(here)
    for text, theirs, ours in zip(SAMPLES, pure, here, strict=True):
        assert ours == theirs, text


# The compiled build's own ways, run interpreted against the pure ones.

_KEYS = list(dict.fromkeys(p.parts[0] for p in tables().matcher._patterns))
_ASCII = st.characters(max_codepoint=127)
ASCII_REPLY_LIKE = st.lists(
    st.one_of(st.sampled_from([k for k in _KEYS if k.isascii()]), st.text(_ASCII, max_size=6)), max_size=12
).map("".join)


@cache
def _table_and_automaton() -> tuple[matcher._Table, matcher.Matcher]:
    table = matcher._Table.build(_KEYS)
    assert table is not None
    return table, matcher._PureMatcher(tables().matcher._patterns)


def _same_matches(text: str) -> None:
    table, pure = _table_and_automaton()
    assert pure._automaton is not None
    assert table.matches(text) == pure._automaton.find_matches_as_indexes(text, overlapping=True), text


def test_the_transition_table_finds_what_the_automaton_finds_in_every_sample() -> None:
    for text in SAMPLES:
        normal = matcher._pure_normalise(text)
        if normal.isascii():
            _same_matches(normal)
            _same_matches(text)


@settings(max_examples=300, deadline=None)
@given(ASCII_REPLY_LIKE)
def test_the_transition_table_finds_what_the_automaton_finds_in_any_text(text: str) -> None:
    _same_matches(text)
    _same_matches(text.lower())


def _guards_seen(text: str) -> None:
    """No guard word in the lower-cased text without its bit among the signs (a bit without its word is allowed)."""
    lower = text.lower()
    if not lower.isascii():
        return
    signs = reply._sign_scan(lower)
    for word, bit in reply._SIGN.items():
        if word in lower:
            assert signs & bit, (word, text)


def test_the_signs_never_miss_a_guard_word_in_a_sample() -> None:
    for text in SAMPLES:
        _guards_seen(text)
    _guards_seen(" ".join(reply._SIGN_PAIRS))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(list(reply._SIGN_PAIRS)), st.text(_ASCII, max_size=4)), max_size=10))
def test_the_signs_never_miss_a_guard_word_in_any_text(pieces: list[str]) -> None:
    _guards_seen("".join(pieces))


@settings(max_examples=300, deadline=None)
@given(st.one_of(REPLY_LIKE, st.text(st.sampled_from("2345 ._a9\u0663\u00b2\u2165é-:"), max_size=20)))
def test_the_loop_finds_the_places_of_codes_the_pattern_finds(text: str) -> None:
    assert reply._code_starts_scan(text) == [m.start() for m in reply._CODE_STARTS.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(" \t\x7f~aZ.\x00\n"), min_size=1, max_size=12))
def test_the_normaliser_loop_tests_what_the_pure_normaliser_tests(text: str) -> None:
    expected = text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " "
    assert matcher._normal_ascii(text) == expected


def test_a_module_tells_whether_it_runs_compiled() -> None:
    assert not _accel.is_compiled(_table_and_automaton.__wrapped__)
    assert not reply._COMPILED and not matcher._COMPILED  # the pure modules (their builds set it in their copy)
    assert _accel.is_compiled(_compiled("reply").parse_reply)
