"""Mails decoded in groups (decode_batch, decode_bounces, batches) give what decoding each alone gives."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import smtplens.cli.bounce as cli_bounce
from smtplens.bounce import (
    BATCH,
    BATCH_BYTES,
    FORWARDED,
    BounceResult,
    batches,
    decode_batch,
    decode_bounce,
    decode_bounces,
)
from smtplens.cli.main import cli
from tests.conftest import FIXTURES

PATHS = sorted(FIXTURES.joinpath("bounces").glob("*.eml"))
MAILS = [p.read_bytes() for p in PATHS]
ALONE = {data: decode_bounce(data).to_dict() for data in MAILS}


def _dicts(results: list[BounceResult]) -> list[dict[str, object]]:
    return [r.to_dict() for r in results]


def test_every_fixture_decodes_in_one_group_as_alone() -> None:
    together = decode_batch(MAILS)
    assert len(together) == len(MAILS)
    for path, data, result in zip(PATHS, MAILS, together, strict=True):
        assert result.to_dict() == ALONE[data], path.name
    # the group holds a notice forwarded as an attachment, which is read on its own path
    assert any(FORWARDED in r.warnings for r in together)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(MAILS), max_size=3 * BATCH))
def test_any_order_and_grouping_decodes_as_alone(datas: list[bytes]) -> None:
    assert _dicts(list(decode_bounces(datas))) == [ALONE[d] for d in datas]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300) | st.sampled_from(MAILS), max_size=BATCH + 5))
def test_garbage_in_a_group_changes_nothing_and_raises_nothing(datas: list[bytes]) -> None:
    assert _dicts(decode_batch(datas)) == [decode_bounce(d).to_dict() for d in datas]


@given(st.lists(st.integers(min_value=0, max_value=3 * BATCH_BYTES // 2), max_size=4 * BATCH))
def test_groups_keep_the_order_and_their_limits(sizes: list[int]) -> None:
    items = list(enumerate(sizes))
    groups = list(batches(items, lambda item: item[1]))
    assert [item for group in groups for item in group] == items
    for group in groups:
        assert 1 <= len(group) <= BATCH
        assert len(group) == 1 or sum(size for _, size in group) <= BATCH_BYTES
    for group, after in pairwise(groups):
        # a group ends only when the next item would break a limit
        assert len(group) == BATCH or sum(size for _, size in group) + after[0][1] > BATCH_BYTES


def test_an_empty_stream_gives_nothing_and_text_is_taken_as_bytes_are() -> None:
    assert list(decode_bounces([])) == []
    assert decode_batch([]) == []
    text = MAILS[0].decode("latin-1")
    assert _dicts(decode_batch([text, MAILS[0]])) == [ALONE[MAILS[0]]] * 2


def test_a_large_mail_is_decoded_alone() -> None:
    big = b"x" * (BATCH_BYTES + 1)
    assert [len(g) for g in batches([b"a", big, b"b"], len)] == [1, 1, 1]


def test_cli_group_with_a_failing_mail_loses_only_that_mail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder bug in one mail of a group: the group is decoded again mail by mail, and only that mail is
    reported as an error."""
    names = ["postfix-dsn.eml", "arf.eml", "multi-recipient.eml"]
    for name in names:
        (tmp_path / name).write_bytes((FIXTURES / "bounces" / name).read_bytes())
    poisoned = (FIXTURES / "bounces" / "arf.eml").read_bytes()

    def failing_batch(datas: list[bytes]) -> list[BounceResult]:
        if poisoned in datas:
            raise RuntimeError("a decoder bug")
        return decode_batch(datas)

    def failing_alone(data: bytes) -> BounceResult:
        if data == poisoned:
            raise RuntimeError("a decoder bug")
        return decode_bounce(data)

    monkeypatch.setattr(cli_bounce, "decode_batch", failing_batch)
    monkeypatch.setattr(cli_bounce, "decode_bounce", failing_alone)
    monkeypatch.delenv("SMTPLENS_DEBUG", raising=False)
    result = CliRunner().invoke(cli, ["bounce", "--json", str(tmp_path)], standalone_mode=False)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.return_value == 1
    errors = [r for r in rows if "error" in r]
    assert errors == [{"file": str(tmp_path / "arf.eml"), "error": "internal error: RuntimeError: a decoder bug"}]
    decoded = {Path(str(r["file"])).name for r in rows if "error" not in r}
    assert decoded == {"postfix-dsn.eml", "multi-recipient.eml"}
