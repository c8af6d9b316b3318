"""The decoders of DragonFly Mail Agent, qmail, Sendmail and Sendmail 5 bounces, on small hand-written mails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smtplens.bounce import BounceResult, Kind, decode_bounce
from smtplens.bounce.decoders import dragonfly, qmail, sendmail, v5sendmail
from smtplens.bounce.mime import parse_mail
from smtplens.bounce.registry import DECODERS
from smtplens.model import Stage
from tests.conftest import FIXTURES, shared_path

BOUNCES = FIXTURES / "bounces"


def _decode(name: str) -> BounceResult:
    return decode_bounce((BOUNCES / name).read_bytes())


def test_registered_before_the_standard_formats() -> None:
    order = [d.name for d in DECODERS]
    for mine in ("dragonfly", "qmail", "sendmail", "v5sendmail"):
        assert order.index(mine) < order.index("rfc3464")
    assert order.index("v5sendmail") < order.index("sendmail")


def test_dragonfly_remote_reply() -> None:
    result = _decode("dragonfly-rcpt.eml")
    assert result.kind is Kind.BOUNCE and result.decoder == "dragonfly"
    (r,) = result.recipients
    assert r.recipient == "bob@remote.test"
    assert r.reason == "user_unknown" and r.hard_bounce
    assert (r.status, r.reply_code, r.stage, r.remote_host) == ("5.1.1", "550", Stage.RCPT, "mx.remote.test")
    assert r.diagnostic is not None and "Please check the address." in r.diagnostic  # all reply lines
    assert r.reporting_mta == "mta.example.test"


def test_dragonfly_gave_up() -> None:
    (r,) = _decode("dragonfly-expired.eml").recipients
    assert (r.recipient, r.reason, r.hard_bounce) == ("carol@slow.test", "expired", False)


def test_qmail_paragraphs() -> None:
    result = _decode("qmail-two.eml")
    assert result.decoder == "qmail"
    first, second = result.recipients
    assert (first.recipient, first.reason, first.reply_code, first.status) == (
        "bob@remote.test",
        "mailbox_full",
        "552",
        "5.2.2",
    )
    assert first.stage is Stage.RCPT and first.remote_host == "192.0.2.9"
    assert first.diagnostic is not None and "Giving up" not in first.diagnostic
    assert (second.recipient, second.reason, second.status) == ("dave@nowhere.test", "domain_invalid", "5.1.2")


def test_v5sendmail_transcript() -> None:
    result = _decode("v5sendmail-transcript.eml")
    assert result.decoder == "v5sendmail"
    relay, host = result.recipients
    assert (relay.recipient, relay.reason, relay.reply_code, relay.stage) == (
        "bob@remote.test",
        "relay_denied",
        "550",
        Stage.MAIL,
    )
    assert relay.remote_host == "mail.remote.test"
    assert (host.recipient, host.reason, host.reply_code, host.remote_host) == (
        "erin@other.test",
        "domain_invalid",
        "550",
        None,
    )


def test_sendmail_joins_the_transcript_reply() -> None:
    result = _decode("sendmail-dsn.eml")
    assert result.decoder == "sendmail"
    (r,) = result.recipients
    assert r.stage is Stage.DATA and r.remote_host == "mx.remote.test"
    assert r.diagnostic is not None and r.diagnostic.endswith("content and attachment content guidelines.")
    assert (r.status, r.reply_code) == ("5.7.0", "552")


def test_sendmail_transcript_exchanges() -> None:
    text = (
        "   ----- Transcript of session follows -----\n"
        "... while talking to mx.remote.test.:\n"
        ">>> RCPT To:<bob@remote.test>\n"
        "<<< 550-5.1.1 No such\n"
        "<<< 550 5.1.1 user\n"
        "550 5.1.1 <bob@remote.test>... User unknown\n"
        "\n   ----- Original message follows -----\n"
    )
    (e,) = sendmail.read_transcript(text)
    assert (e.recipient, e.host, e.stage, e.diagnostic) == (
        "bob@remote.test",
        "mx.remote.test",
        Stage.RCPT,
        "550-5.1.1 No such 550 5.1.1 user",
    )


@pytest.mark.parametrize("decoder", [dragonfly, qmail, sendmail, v5sendmail])
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"From: MAILER-DAEMON\nSubject: failure notice\n\nHi. This is the qmail-send program at x.\n<:\n",
        b"From: MAILER-DAEMON\nSubject: Returned mail\n\n----- Transcript of session follows -----\n>>>\n<<<\n"
        b"550 <@>... \n----- Unsent message follows -----\n",
        b"Received: by x (DragonFly Mail Agent v1)\nFrom: MAILER-DAEMON\n\nThis is the DragonFly Mail Agent at .\n"
        b"There was an error delivering your mail to <>.\n",
    ],
)
def test_broken_input_never_raises(decoder: object, data: bytes) -> None:
    mail = parse_mail(data)
    assert decoder.detect(mail) in (True, False)  # type: ignore[attr-defined]
    found = decoder.decode(mail)  # type: ignore[attr-defined]
    assert isinstance(found, list)


def test_not_detected_on_ordinary_mail() -> None:
    mail = parse_mail(b"From: alice@example.test\nSubject: hi\n\nHi. This is the qmail-send program at x.\n")
    assert not any(d.detect(mail) for d in (dragonfly, qmail, sendmail, v5sendmail))


def test_corpus_families_decoded() -> None:
    corpus = shared_path("corpus", "sisimai")
    rows = [json.loads(line) for line in (corpus / "expected.jsonl").read_text().splitlines() if line.strip()]
    wanted = {"DragonFly": "dragonfly", "qmail": "qmail", "V5sendmail": "v5sendmail"}
    seen = 0
    for row in rows:
        decoder = wanted.get(row["module"])
        if decoder is None or int(row["index"]) != 1:
            continue
        result = decode_bounce(Path(corpus, row["file"]).read_bytes())
        assert result.decoder == decoder, row["file"]
        seen += 1
    assert seen >= 30
