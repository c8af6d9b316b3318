"""The decoders of smaller MTAs' and gateways' own bounce texts: the unidentified X1–X6 formats, Active!hunter,
Apache James, BIGLOBE and fml.

Small fixture mails written for these tests (tests/fixtures/bounces/<decoder>-*.eml), broken variants that must
not raise, and, where the shared corpus is present, its mails of these formats read by the right decoder.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from smtplens.bounce import Action, Kind, decode_bounce
from smtplens.bounce.decoders import Decoder, activehunter, apachejames, biglobe, fml, x1, x2, x3, x4, x5, x6
from smtplens.bounce.mime import parse_mail
from smtplens.model import Stage
from tests.conftest import FIXTURES, shared_path

BOUNCES = FIXTURES / "bounces"
DECODERS: tuple[Decoder, ...] = (x1, x2, x3, x4, x5, x6, activehunter, apachejames, biglobe, fml)
FIXTURE_OF = {
    "x1": "x1-unknown.eml",
    "x2": "x2-expired.eml",
    "x3": "x3-rcpt.eml",
    "x4": "x4-full.eml",
    "x5": "x5-nested.eml",
    "x6": "x6-data.eml",
    "activehunter": "activehunter-transcript.eml",
    "apachejames": "apachejames-error.eml",
    "biglobe": "biglobe-full.eml",
    "fml": "fml-notmember.eml",
}


def _fixture(name: str) -> bytes:
    return (BOUNCES / name).read_bytes()


def test_x1_reads_one_line_per_recipient() -> None:
    result = decode_bounce(_fixture("x1-unknown.eml"))
    assert result.kind is Kind.BOUNCE and result.decoder == "x1"
    alice, bob = result.recipients
    assert alice.recipient == "alice@example.org" and alice.diagnostic == "User unknown"
    assert alice.reason == "user_unknown" and alice.action is Action.FAILED
    assert alice.sender == "sender@example.com"
    assert bob.recipient == "bob@example.org" and bob.reason == "mailbox_full"


def test_x2_reads_qmail_paragraphs_after_its_own_heading() -> None:
    result = decode_bounce(_fixture("x2-expired.eml"))
    assert result.decoder == "x2"
    carol, dave = result.recipients
    assert carol.recipient == "carol@example.org" and carol.reason == "expired"
    assert carol.reporting_mta == "example.net"
    assert dave.recipient == "dave@example.org" and dave.stage is Stage.RCPT
    assert dave.remote_host == "192.0.2.41" and dave.reply_code == "550" and dave.status == "5.1.1"
    assert dave.diagnostic is not None and "Giving up" not in dave.diagnostic


def test_x3_pairs_technical_details_with_recipients() -> None:
    result = decode_bounce(_fixture("x3-rcpt.eml"))
    assert result.decoder == "x3"
    erin, frank = result.recipients
    assert erin.recipient == "erin@example.org" and erin.stage is Stage.RCPT
    assert erin.remote_host == "192.0.2.8" and erin.reply_code == "550" and erin.reason == "user_unknown"
    assert frank.recipient == "frank@example.com" and frank.stage is Stage.DATA
    assert frank.remote_host == "mx.example.com" and frank.diagnostic == "552 5.3.4 Message size exceeds fixed limit"


def test_x4_reads_the_paragraph_without_qmail_greeting() -> None:
    result = decode_bounce(_fixture("x4-full.eml"))
    assert result.decoder == "x4"
    (gina,) = result.recipients
    assert gina.recipient == "gina@example.org" and gina.reason == "mailbox_full"
    assert gina.reporting_mta == "smtp.example.net"


def test_x5_reads_the_report_inside_the_returned_message() -> None:
    result = decode_bounce(_fixture("x5-nested.eml"))
    assert result.decoder == "x5"
    (henry,) = result.recipients
    assert henry.recipient == "henry@example.org" and henry.status == "5.1.1" and henry.hard_bounce


def test_x6_reads_each_recipient_of_a_group() -> None:
    result = decode_bounce(_fixture("x6-data.eml"))
    assert result.decoder == "x6"
    ivy, jack = result.recipients
    assert [ivy.recipient, jack.recipient] == ["ivy@example.org", "jack@example.org"]
    assert ivy.stage is Stage.DATA and ivy.remote_host == "192.0.2.77"
    assert ivy.diagnostic == "554 5.4.6 Hop count exceeded - possible mail loop"
    assert ivy.status == "5.4.6" and ivy.reply_code == "554"


def test_activehunter_takes_the_transcript() -> None:
    result = decode_bounce(_fixture("activehunter-transcript.eml"))
    assert result.decoder == "activehunter"
    (kate,) = result.recipients
    assert kate.recipient == "kate@example.org" and kate.reply_code == "550"
    assert kate.diagnostic == "550 sorry, no mailbox here by that name (#5.1.1 - chkusr)"
    assert kate.reason == "user_unknown"


def test_apachejames_reads_rcpt_to_from_the_details() -> None:
    result = decode_bounce(_fixture("apachejames-error.eml"))
    assert result.decoder == "apachejames"
    (leo,) = result.recipients
    assert leo.recipient == "leo@example.org" and leo.sender == "sender@example.com"
    assert leo.diagnostic == "550 - Requested action not taken: no such user here"


def test_biglobe_reads_the_non_delivered_information() -> None:
    result = decode_bounce(_fixture("biglobe-full.eml"))
    assert result.decoder == "biglobe"
    (mia,) = result.recipients
    assert mia.recipient == "mia@isp.example.jp" and mia.reason == "mailbox_full"


def test_fml_reports_the_list_and_the_refused_sender() -> None:
    result = decode_bounce(_fixture("fml-notmember.eml"))
    assert result.decoder == "fml"
    (notice,) = result.recipients
    assert notice.recipient == "cats@lists.example.org" and notice.reason == "sender_rejected"
    assert not notice.hard_bounce


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda d: d.name)
def test_detect_ignores_other_mails(decoder: Decoder) -> None:
    plain = parse_mail(b"From: a@example.org\nSubject: hello\n\nHi there\n")
    assert not decoder.detect(plain)


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda d: d.name)
def test_broken_variants_do_not_raise(decoder: Decoder) -> None:
    data = _fixture(FIXTURE_OF[decoder.name])
    variants = [data[:n] for n in range(0, len(data), max(1, len(data) // 25))]
    variants += [data.replace(b"@", b""), data.replace(b"\n\n", b"\n"), data.replace(b"<", b"").replace(b">", b"")]
    for variant in variants:
        mail = parse_mail(variant)
        if decoder.detect(mail):
            decoder.decode(mail)
        decode_bounce(variant)


FAMILIES = {
    "lhost-x1-": "x1",
    "lhost-x2-": "x2",
    "lhost-x3-01": "x3",
    "lhost-x3-03": "x3",
    "lhost-x4-": "x4",
    "lhost-x5-": "x5",
    "lhost-x6-": "x6",
    "lhost-activehunter-": "activehunter",
    "lhost-apachejames-": "apachejames",
    "lhost-biglobe-": "biglobe",
    "lhost-fml-": "fml",
}


def test_corpus_mails_are_read_by_their_decoder() -> None:
    corpus = shared_path("corpus", "sisimai")
    expected: dict[str, int] = defaultdict(int)
    for line in (corpus / "expected.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            expected[str(json.loads(line)["file"])] += 1
    checked = 0
    for file, count in sorted(expected.items()):
        stem = file.rsplit("/", 1)[-1]
        decoder = next((d for prefix, d in FAMILIES.items() if stem.startswith(prefix)), None)
        if decoder is None:
            continue
        result = decode_bounce((corpus / file).read_bytes())
        assert result.decoder == decoder, file
        assert len(result.recipients) == count, file
        checked += 1
    assert checked >= 10
