"""The compiled accelerator (smtplens._accel) gives exactly what the pure-Python modules it is built from give.

Every reply of tests/fixtures and of ../shared/corpus/replies (when present), variants of them, and arbitrary
text from hypothesis go through both paths: the parser, the normaliser, the matcher's scan and the classifier;
one test runs the whole pipeline in a process with ``SMTPLENS_PURE=1`` and compares its verdicts. Outside CI the
tests of the compiled modules are skipped when they are not built (no C compiler); in CI they must be built.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtplens import _accel
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


@settings(max_examples=300, deadline=None)
@given(REPLY_LIKE)
def test_the_matcher_agrees_on_any_text(text: str) -> None:
    compiled = _compiled("matcher")
    normal = matcher._pure_normalise(text)
    assert compiled.normalise(text) == normal
    patterns = tables().matcher._patterns
    assert compiled.Matcher(patterns).scan(normal) == matcher._PureMatcher(patterns).scan(normal)


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
