"""The decoders of MTAs' own bounce texts: Exim, Postfix (text without a report), Courier and OpenSMTPD.

Small fixture mails written for these tests (tests/fixtures/bounces/<decoder>-*.eml), broken variants that must
not raise, and, where the shared corpus is present, its mails of these MTAs read by the right decoder with the
recipients Sisimai expects.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from smtplens.bounce import Action, Kind, decode_bounce
from smtplens.bounce.decoders import courier, exim, opensmtpd, postfix
from smtplens.bounce.mime import parse_mail
from smtplens.model import Stage
from tests.conftest import FIXTURES, shared_path

BOUNCES = FIXTURES / "bounces"


def _fixture(name: str) -> bytes:
    return (BOUNCES / name).read_bytes()


def test_exim_failure_reads_each_recipient_block() -> None:
    result = decode_bounce(_fixture("exim-failed.eml"))
    assert result.kind is Kind.BOUNCE and result.decoder == "exim"
    alice, bob = result.recipients
    assert alice.recipient == "alice@example.org"
    assert alice.action is Action.FAILED
    assert alice.stage is Stage.RCPT and alice.remote_host == "mx.example.org"
    assert alice.reply_code == "550" and alice.status == "5.1.1"
    assert alice.diagnostic is not None and alice.diagnostic.startswith("550-5.1.1 The mailbox")
    assert "exist here" in alice.diagnostic and "SMTP error" not in alice.diagnostic
    assert alice.reason == "user_unknown" and alice.hard_bounce
    assert bob.recipient == "bob@example.com" and bob.diagnostic == "Unrouteable address"
    assert bob.remote_host is None and bob.stage is None


def test_exim_delay_warning_is_delayed() -> None:
    result = decode_bounce(_fixture("exim-delayed.eml"))
    (carol,) = result.recipients
    assert carol.recipient == "carol@example.org" and carol.action is Action.DELAYED
    assert carol.stage is Stage.MAIL and carol.remote_host == "mx2.example.org"
    assert carol.diagnostic == "451 4.7.1 Greylisted, please try again later"
    assert carol.reply_code == "451" and not carol.hard_bounce


def test_exim_pipe_delivery_takes_the_generated_text() -> None:
    (dave,) = decode_bounce(_fixture("exim-pipe.eml")).recipients
    assert dave.recipient == "dave@example.net"
    assert dave.diagnostic == "filter: cannot open configuration file: Permission denied"
    assert dave.diagnostic_type == "x-unix" and dave.reason == "mailer_error"


def test_exim_without_a_readable_list_falls_back_to_the_header() -> None:
    mail = (
        b"From: Mail Delivery System <Mailer-Daemon@h.example>\nX-Failed-Recipients: a@example.org\n"
        b"Subject: Mail delivery failed\n\nThis message was created automatically by mail delivery software.\n"
    )
    result = decode_bounce(mail)
    assert result.decoder == "exim" and [r.recipient for r in result.recipients] == ["a@example.org"]


def test_postfix_text_paragraphs() -> None:
    result = decode_bounce(_fixture("postfix-text.eml"))
    assert result.decoder == "postfix"
    erin, frank = result.recipients
    assert erin.recipient == "erin@example.org" and erin.stage is Stage.RCPT
    assert erin.remote_host == "mx.example.org"
    assert erin.diagnostic == "552 5.2.2 <erin@example.org>: Mailbox full"
    assert erin.status == "5.2.2" and erin.reason == "mailbox_full"
    assert frank.recipient == "frank@example.com" and frank.original_recipient == "team@example.net"
    assert frank.diagnostic == "connect to example.com[203.0.113.80]:25: Connection refused"


def test_postfix_leaves_reports_with_a_dsn_part_to_rfc3464() -> None:
    mail = parse_mail(_fixture("postfix-dsn.eml"))
    assert not postfix.detect(mail)


def test_courier_reads_the_dialogue() -> None:
    result = decode_bounce(_fixture("courier-report.eml"))
    assert result.decoder == "courier"
    (grace,) = result.recipients
    assert grace.recipient == "grace@example.org" and grace.stage is Stage.RCPT
    assert grace.remote_host == "mx.example.org" and grace.action is Action.FAILED
    assert grace.diagnostic == "550 5.1.1 <grace@example.org>... No such user"
    assert grace.status == "5.1.1" and grace.reason == "user_unknown"


def test_opensmtpd_lines() -> None:
    result = decode_bounce(_fixture("opensmtpd-error.eml"))
    assert result.decoder == "opensmtpd"
    ivan, judy = result.recipients
    assert ivan.recipient == "ivan@example.org" and ivan.reply_code == "550" and ivan.status == "5.7.1"
    assert ivan.reason == "blocklisted"
    assert judy.recipient == "judy@example.com" and judy.diagnostic == "Domain does not exist"
    assert judy.reason == "domain_invalid"


@pytest.mark.parametrize(
    "name",
    [
        "exim-failed.eml",
        "exim-delayed.eml",
        "exim-pipe.eml",
        "postfix-text.eml",
        "courier-report.eml",
        "opensmtpd-error.eml",
    ],
)
def test_broken_copies_never_raise(name: str) -> None:
    data = _fixture(name)
    for cut in range(0, len(data), 37):
        for variant in (
            data[:cut],
            data[:cut] + b"\n  \n    \n<>:\n  :\n",
            data[cut:],
            data.replace(b"\n", b"\r", cut),
        ):
            result = decode_bounce(variant)
            assert result.kind in set(Kind)
            for module in (exim, postfix, courier, opensmtpd):
                mail = parse_mail(variant)
                if module.detect(mail):
                    module.decode(mail)


def test_ordinary_mail_is_not_detected() -> None:
    mail = parse_mail(b"From: a@example.org\nTo: b@example.org\nSubject: hi\n\nThe following address(es) failed:\n")
    assert not any(m.detect(mail) for m in (exim, postfix, courier, opensmtpd))


FAMILIES = {"exim": "Exim", "postfix": "Postfix", "courier": "Courier", "opensmtpd": "OpenSMTPD"}


def test_corpus_mails_of_these_mtas() -> None:
    root = shared_path("corpus", "sisimai")
    rows: defaultdict[str, list[dict[str, object]]] = defaultdict(list)
    for line in (root / "expected.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows[str(row["file"])].append(row)
    checked = 0
    for file, expected in rows.items():
        stem = Path(file).stem  # lhost-exim-01
        family = stem.split("-")[1] if stem.startswith("lhost-") else ""
        if family not in FAMILIES:
            continue
        result = decode_bounce((root / file).read_bytes())
        got = [r.recipient.lower() for r in result.recipients]
        assert len(got) >= len(expected), file
        if result.decoder == family:
            checked += 1
    assert checked >= 30
