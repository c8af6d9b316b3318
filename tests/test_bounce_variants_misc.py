"""Notice variants of the Japanese carriers', gateways' and unidentified MTAs' bounce formats that the decoders
once missed: EZweb's one-line replies and filter mark, KDDI's "attempted to be delivered" date, InterScan's
Japanese edition, X6's per-recipient sentence, X4's other openings, Verizon's SMS gateway, James without its
JavaMail Message-ID, Google's notice without X-Failed-Recipients, X3's routing failure and a relayed Mimecast
alert (fixtures written for these tests, in each sender's wording of the fixed parts)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from smtplens.bounce import Action
from smtplens.bounce.decoders import (
    apachejames,
    ezweb,
    googleworkspace,
    kddi,
    mimecast,
    trendmicro,
    verizon,
    x3,
    x4,
    x6,
)
from smtplens.bounce.mime import parse_mail
from smtplens.model import Stage
from tests.bounce_fixtures import decode_fixture


def test_ezweb_recipient_and_reply_on_one_line() -> None:
    result = decode_fixture("ezweb-variant-replyline.eml")
    assert result.decoder == "ezweb"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reply_code, r.stage) == ("hanako@au.example.com", Action.FAILED, "550", Stage.RCPT)
    assert r.diagnostic == "550 user unknown (in reply to RCPT TO command)"


def test_ezweb_filter_mark_decides_the_reason() -> None:
    (r,) = decode_fixture("ezweb-variant-spasign.eml").recipients
    assert (r.recipient, r.reason, r.reply_code, r.stage) == ("taro@ezweb.ne.jp", "content_rejected", "550", Stage.RCPT)


def test_kddi_attempted_delivery_date() -> None:
    result = decode_fixture("kddi-variant-attempted.eml")
    assert result.decoder == "kddi"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reason) == ("jiro@nowhere.example.org", Action.FAILED, "domain_invalid")
    assert r.timestamp == datetime(2024, 5, 15, 8, 59, 58, tzinfo=timezone(timedelta(hours=9)))


def test_interscan_japanese_edition_reads_the_reversed_arrows() -> None:
    result = decode_fixture("trendmicro-variant-japanese.eml")
    assert result.decoder == "trendmicro"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reason) == ("saburo@example.net", Action.FAILED, "user_unknown")
    assert (r.status, r.reply_code, r.stage) == ("5.1.1", "550", Stage.RCPT)


def test_x6_rejected_recipient_sentence() -> None:
    result = decode_fixture("x6-variant-rejected.eml")
    assert result.decoder == "x6"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.status, r.reply_code) == ("shiro@example.net", Action.FAILED, "5.1.1", "550")
    assert (r.stage, r.remote_host, r.diagnostic) == (Stage.RCPT, "mta2.example.net", "550 5.1.1 User unknown")


def test_x4_other_opening_sentence() -> None:
    result = decode_fixture("x4-variant-unfortunately.eml")
    assert result.decoder == "x4"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reason) == ("goro@example.org", Action.FAILED, "user_unknown")
    assert (r.status, r.reply_code, r.stage, r.remote_host) == ("5.1.1", "550", Stage.RCPT, "192.0.2.25")


def test_verizon_sms_gateway_in_james_layout() -> None:
    result = decode_fixture("verizon-variant-vtext.eml")
    assert result.decoder == "verizon"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reply_code, r.reason) == (
        "2025550100@vtext.com",
        Action.FAILED,
        "550",
        "user_unknown",
    )
    assert r.sender == "sender@example.com"


def test_james_known_by_its_received_field_without_a_reply_block() -> None:
    result = decode_fixture("apachejames-variant-received.eml")
    assert result.decoder == "apachejames"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reason) == ("rokuro@example.org", Action.FAILED, "mailbox_full")
    assert (r.status, r.reply_code, r.diagnostic) == ("5.2.2", "550", "550 5.2.2 Mailbox full")


def test_google_notice_without_failed_recipients_field_names_the_returned_to() -> None:
    result = decode_fixture("googleworkspace-variant-noheader.eml")
    assert result.decoder == "googleworkspace"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reason) == ("nanako@example.net", Action.FAILED, "user_unknown")


def test_x3_routing_failure_is_the_diagnostic() -> None:
    (r,) = decode_fixture("x3-variant-routing.eml").recipients
    assert (r.recipient, r.action) == ("hachiro@unrouted.example.co.jp", Action.FAILED)
    assert r.diagnostic == "Could not find a gateway for hachiro@unrouted.example.co.jp"
    # a routing failure (a network error) in a notice of a failed delivery: the gateway gave up
    assert (r.reason, r.hard_bounce) == ("expired", False)


def test_mimecast_alert_relayed_without_its_fields() -> None:
    result = decode_fixture("mimecast-variant-relayed.eml")
    assert result.decoder == "mimecast"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reason) == ("kuro@example.org", Action.FAILED, "user_unknown")
    assert (r.status, r.reply_code) == ("5.1.1", "550")


@pytest.mark.parametrize(
    "data",
    [
        b"From: Postmaster@au.com\nSubject: Mail System Error - Returned Mail\n\n<a@b>: \n<@>: x\n",
        b"From: no-reply@x.dion.ne.jp\n\nYour mail attempted to be delivered on: \n Could not be delivered to: <>\n",
        b"Subject: Mail could not be delivered\n\n>>> RCPT TO:<>\n<<< 550\n >>> \n<<< 5",
        b"Subject: There was an error sending your mail\n\nSMTP Server <> rejected recipient <a@b> (Error following"
        b"  command). It responded as follows: [",
        b"From: MAILER-DAEMON@x\nSubject: Permanent Delivery Failure\n\nWe're sorry.\n<>:\n",
        b"From: post_master@vtext.com\n\nMessage details:\n  RCPT TO: \n",
        b"Received: by x (JAMES SMTP Server 2.3)\n\nMessage details:\n",
        b"From: mailer-daemon@googlemail.com\nSubject: Delivery Status Notification\n\n** x **\n",
        b"From: Mail Delivery System\nSubject: Delivery status notification\n\nDelivery to the following recipients"
        b" failed permanently:\n * a@b\nTechnical details:\nRouting:\n",
        b"Subject: Email Delivery Failure\n\nfollowing address could not be delivered:\n-- \n",
    ],
)
def test_broken_variants_never_raise(data: bytes) -> None:
    mail = parse_mail(data)
    for decoder in (apachejames, ezweb, googleworkspace, kddi, mimecast, trendmicro, verizon, x3, x4, x6):
        if decoder.detect(mail):
            assert isinstance(decoder.decode(mail), list)
