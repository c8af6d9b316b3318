"""The provider decoders: Gmail, Google Groups, Google Workspace, Yahoo, AOL, Mail.Ru, Zoho, GMX and Amazon SES
notifications (fixtures written for these tests, plus checks against the shared corpus when it is present)."""

from __future__ import annotations

import json

import pytest

from smtplens.bounce import Action, BounceResult, Kind, decode_bounce
from smtplens.bounce.decoders import amazonses, aol, gmail, gmx, googlegroups, googleworkspace, mailru, yahoo, zoho
from smtplens.bounce.mime import parse_mail
from smtplens.model import Stage
from tests.conftest import FIXTURES, shared_path

BOUNCES = FIXTURES / "bounces"
PROVIDERS = (amazonses, gmail, googlegroups, googleworkspace, yahoo, aol, mailru, zoho, gmx)


def _decode(name: str) -> BounceResult:
    return decode_bounce((BOUNCES / name).read_bytes())


def test_gmail_permanent_failure_reads_every_recipient_and_the_quoted_reply() -> None:
    result = _decode("gmail-permanent.eml")
    assert result.decoder == "gmail"
    assert [r.recipient for r in result.recipients] == ["nobody@example.org", "ghost@example.org"]
    first = result.recipients[0]
    assert first.reason == "user_unknown"
    assert (first.status, first.reply_code) == ("5.1.1", "550")
    assert first.remote_host == "mx1.example.org"
    assert first.action is Action.FAILED and first.hard_bounce
    assert first.diagnostic is not None and "(state" not in first.diagnostic


def test_gmail_delay_is_not_a_hard_bounce() -> None:
    (r,) = _decode("gmail-delay.eml").recipients
    assert r.recipient == "late@example.net"
    assert r.action is Action.DELAYED
    assert not r.hard_bounce


def test_googlegroups_refusal_names_the_group_and_rejects_the_sender() -> None:
    result = _decode("googlegroups-refused.eml")
    assert result.decoder == "googlegroups"
    (r,) = result.recipients
    assert r.recipient == "some-list@googlegroups.com"
    assert r.reason == "sender_rejected" and not r.hard_bounce


def test_googleworkspace_send_mail_as_failure() -> None:
    result = _decode("googleworkspace-sendas.eml")
    assert result.decoder == "googleworkspace"
    (r,) = result.recipients
    assert r.recipient == "friend@example.net"
    assert r.reason == "sender_rejected"
    assert r.diagnostic is not None and "AUTH" in r.diagnostic


def test_yahoo_reads_each_recipient_block_and_the_command_tag() -> None:
    result = _decode("yahoo-failure.eml")
    assert result.decoder == "yahoo"
    gone, full, filtered = result.recipients
    assert (gone.recipient, gone.reason, gone.status, gone.stage) == (
        "gone@example.org",
        "user_unknown",
        "5.1.1",
        Stage.RCPT,
    )
    assert gone.diagnostic is not None and "[RCPT_TO]" not in gone.diagnostic
    assert (full.recipient, full.reason, full.reply_code) == ("full@example.org", "mailbox_full", "550")
    assert full.diagnostic == "550 5.2.2 <full@example.org>... Mailbox Full"  # Yahoo's "550: …" is the reply "550 …"
    # au's address-less refusal by the recipient's reception filter, as Yahoo quotes it ("550: : User unknown")
    assert (filtered.diagnostic, filtered.reason, filtered.hard_bounce) == (
        "550 : User unknown",
        "content_rejected",
        False,
    )


def test_aol_airmail_notice_names_screen_names_with_aol_s_domain() -> None:
    result = _decode("aol-airmail.eml")
    assert (result.kind, result.decoder) == (Kind.BOUNCE, "aol")
    assert [r.recipient for r in result.recipients] == [
        "catlover77@aol.com",
        "janedoe12@aol.com",  # a screen name with spaces
        "friend@example.org",
    ]
    first = result.recipients[0]
    assert first.reason == "policy_rejected" and not first.hard_bounce  # the recipient refuses attachments
    assert first.diagnostic is not None and first.diagnostic.endswith("attachments or embedded images")
    assert first.timestamp is not None and first.timestamp.year == 2009


def test_mailru_counts_each_recipient_once() -> None:
    result = _decode("mailru-exim.eml")
    assert result.decoder == "mailru"
    one, two = result.recipients
    assert (one.recipient, one.reason, one.status, one.stage) == (
        "one@example.org",
        "user_unknown",
        "5.1.1",
        Stage.RCPT,
    )
    assert one.remote_host == "mx.example.org"
    assert (two.recipient, two.reason) == ("two@example.org", "domain_invalid")


def test_zoho_splits_the_error_codes() -> None:
    result = _decode("zoho-undelivered.eml")
    assert result.decoder == "zoho"
    unknown, unreachable = result.recipients
    assert (unknown.recipient, unknown.reason, unknown.reply_code, unknown.status) == (
        "nobody@example.org",
        "user_unknown",
        "550",
        "5.1.1",
    )
    assert unknown.diagnostic is not None and "ERROR_CODE" not in unknown.diagnostic
    assert (unreachable.recipient, unreachable.reason, unreachable.reply_code) == ("far@example.net", "expired", "421")


def test_gmx_reads_command_host_and_reply() -> None:
    result = _decode("gmx-failed.eml")
    assert result.decoder == "gmx"
    (r,) = result.recipients
    assert (r.recipient, r.reason, r.status) == ("full@example.org", "mailbox_full", "5.2.2")
    assert (r.stage, r.remote_host) == (Stage.RCPT, "mx.example.org")


def test_amazonses_bounce_notification_with_a_folded_line() -> None:
    result = _decode("amazonses-bounce.eml")
    assert result.decoder == "amazonses"
    (r,) = result.recipients
    assert (r.recipient, r.reason, r.status, r.reply_code) == ("a@example.org", "user_unknown", "5.1.1", "550")
    assert r.diagnostic_type == "smtp" and r.reporting_mta == "out.example.net"
    assert r.hard_bounce


def test_amazonses_complaint_and_delivery() -> None:
    complaint = _decode("amazonses-complaint.eml")
    assert complaint.kind is Kind.FEEDBACK
    (c,) = complaint.recipients
    assert (c.recipient, c.reason, c.feedback_type) == ("b@example.org", "feedback", "abuse")
    delivery = _decode("amazonses-delivery.eml")
    assert delivery.kind is Kind.DELIVERY_NOTICE
    (d,) = delivery.recipients
    assert (d.recipient, d.status, d.reply_code) == ("c@example.org", "2.6.0", "250")


def test_amazonses_sns_envelope_is_unwrapped() -> None:
    event = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "Suppressed",
            "bouncedRecipients": [{"emailAddress": "s@example.org"}],
        },
    }
    envelope = json.dumps({"Type": "Notification", "Message": json.dumps(event)})
    mail = f"From: <no-reply@sns.amazonaws.com>\nx-amz-sns-message-id: 1\n\n{envelope}\n"
    (r,) = decode_bounce(mail).recipients
    assert (r.recipient, r.reason) == ("s@example.org", "suppressed")


@pytest.mark.parametrize("name", sorted(p.name for p in BOUNCES.glob("*.eml")))
def test_provider_decoders_claim_only_their_own_fixtures(name: str) -> None:
    mail = parse_mail((BOUNCES / name).read_bytes())
    for decoder in PROVIDERS:
        if decoder.detect(mail):
            assert name.startswith(decoder.name + "-"), f"{decoder.name} claims {name}"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"From: mailer-daemon@googlemail.com\nX-Failed-Recipients: x\n\nDelivery to the following recipient",
        b"From: MAILER-DAEMON@yahoo.com\nSubject: Failure Notice\n\nSorry, we were unable to deliver your message"
        b" to the following address.\n<",
        b"From: mailer-daemon@mail.ru\n\nThe following address(es) failed:\n  \n",
        b'From: no-reply@sns.amazonaws.com\nx-amz-sns-message-id: 1\n\n{"notificationType": [1, {"bounce"',
        b'From: no-reply@sns.amazonaws.com\nx-amz-sns-message-id: 1\n\n{"notificationType":"Bounce","bounce":[]}',
        b"From: mailer-daemon@mail.zoho.com\nX-Mailer: Zoho Mail\n\nERROR_CODE :",
        b"From: MAILER-DAEMON@mail.gmx.com\n\n--- The header of the original message is following. ---\n",
        b"From: MAILER-DAEMON@aol.com\n\nYour mail to the following recipients could not be delivered because:\n\t\n",
        b"From: MAILER-DAEMON@aol.com\n\nYour mail to the following recipients could not be delivered\n\t<>\n",
    ],
)
def test_broken_input_never_raises(data: bytes) -> None:
    mail = parse_mail(data)
    for decoder in PROVIDERS:
        if decoder.detect(mail):
            assert isinstance(decoder.decode(mail), list)


CORPUS_FILES = {
    "gmail": ["lhost-gmail-01.eml", "lhost-gmail-19.eml"],
    "googlegroups": ["lhost-googlegroups-01.eml"],
    "yahoo": ["lhost-yahoo-01.eml"],
    "mailru": ["lhost-mailru-03.eml"],
    "zoho": ["lhost-zoho-01.eml"],
    "gmx": ["lhost-gmx-03.eml"],
    "amazonses": ["lhost-amazonses-09.eml"],
}


@pytest.mark.parametrize(("decoder", "file"), [(d, f) for d, files in CORPUS_FILES.items() for f in files])
def test_corpus_mails_are_read_by_their_provider_decoder(decoder: str, file: str) -> None:
    path = shared_path("corpus", "sisimai", "maildir", "bsd", file)
    expected = [
        json.loads(line)
        for line in shared_path("corpus", "sisimai", "expected.jsonl").read_text(encoding="utf-8").splitlines()
        if f'"file": "maildir/bsd/{file}"' in line
    ]
    result = decode_bounce(path.read_bytes())
    assert result.decoder == decoder
    assert len(result.recipients) == len(expected)
    for got, row in zip(result.recipients, sorted(expected, key=lambda r: r["index"]), strict=True):
        assert got.sisimai == row["reason"]
