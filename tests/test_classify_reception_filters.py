"""Japanese mobile carriers' reception filters: words that say "unknown user" for a live address whose owner's
filter refused the message. NTT docomo tells them apart by the stage (the address was accepted at RCPT TO, so
its refusal of the data is the filter's: a provider table's ``[[after_data]]`` row); au (KDDI) by the shape of the
reply (the address left out). Both are a filter's refusal (``content_rejected``), not a dead address."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest

from smtplens import KnowledgeError, classify
from smtplens.classifier.tables import load_tables
from smtplens.model import Stage
from tests.bounce_fixtures import decode_fixture

DOCOMO = "mfsmax.docomo.ne.jp"


@pytest.mark.parametrize("stage", [Stage.DATA, Stage.END_OF_DATA])
def test_docomo_unknown_user_after_data_is_its_reception_filter(stage: Stage) -> None:
    verdict = classify("550 Unknown user hanako@docomo.ne.jp", stage=stage, remote_host=DOCOMO)
    assert verdict.reason == "content_rejected"
    assert not verdict.hard_bounce
    override = verdict.evidence[-1]
    assert override.kind == "override" and override.table == "rules/providers/nttdocomo.toml"
    assert "accepted at RCPT TO" in override.detail


@pytest.mark.parametrize("stage", [Stage.RCPT, None])
def test_docomo_unknown_user_at_rcpt_or_at_an_unknown_stage_is_an_unknown_user(stage: Stage | None) -> None:
    verdict = classify("550 Unknown user hanako@docomo.ne.jp", stage=stage, remote_host=DOCOMO)
    assert verdict.reason == "user_unknown"
    assert verdict.hard_bounce


def test_after_data_is_the_provider_s_own_reading_only() -> None:
    """Another server's "user unknown" after DATA stays what it says (LMTP answers each recipient after DATA)."""
    verdict = classify(
        "550 5.1.1 <bob@example.org>: user unknown", stage=Stage.END_OF_DATA, remote_host="mx.example.org"
    )
    assert verdict.reason == "user_unknown"


def test_au_leaves_the_address_out_when_its_filter_refuses() -> None:
    filtered = classify("550 : User unknown", stage=Stage.DATA, remote_host="lsean.ezweb.ne.jp")
    unknown = classify("550 <taro@au.com>: User unknown", stage=Stage.DATA, remote_host="msmx.au.com")
    assert (filtered.reason, filtered.hard_bounce, filtered.provider) == ("content_rejected", False, "KDDI (au)")
    assert (unknown.reason, unknown.hard_bounce) == ("user_unknown", True)


def test_bounce_mails_read_the_same_way() -> None:
    after_data = decode_fixture("sendmail-docomo-after-data.eml").recipients[0]
    at_rcpt = decode_fixture("sendmail-docomo-at-rcpt.eml").recipients[0]
    assert (after_data.reason, after_data.stage, after_data.hard_bounce) == ("content_rejected", Stage.DATA, False)
    assert (at_rcpt.reason, at_rcpt.stage, at_rcpt.hard_bounce) == ("user_unknown", Stage.RCPT, True)


def _rules_copy(tmp_path: Path) -> Path:
    root = tmp_path / "rules"
    with resources.as_file(resources.files("smtplens.classifier") / "rules") as shipped:
        shutil.copytree(shipped, root)
    return root


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('reason = "no_such_reason"\nmeans = "content_rejected"\nsource = "x"', "unknown reason id"),
        ('reason = "user_unknown"\nmeans = "nonsense"\nsource = "x"', "unknown reason id"),
        ('reason = "user_unknown"\nmeans = "content_rejected"', "source"),
    ],
)
def test_a_bad_after_data_row_is_refused_when_the_tables_load(tmp_path: Path, row: str, message: str) -> None:
    root = _rules_copy(tmp_path)
    table = root / "providers" / "nttdocomo.toml"
    table.write_text(table.read_text(encoding="utf-8") + f"\n[[after_data]]\n{row}\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=message):
        load_tables(root)
