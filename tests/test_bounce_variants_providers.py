"""Notice variants of provider and small-MTA bounce formats that the decoders once missed: OpenSMTPD's success
notices, Zoho's bracketed status record, GMX's "Reason:" layout, dma's unnamed remote host, its greeting and DNS
failures, Gmail's connection failures and Amazon SES's delay events (fixtures written for these tests, in each
sender's wording of the fixed parts)."""

from __future__ import annotations

import pytest

from smtplens.bounce import Action, Kind
from smtplens.bounce.decoders import amazonses, dragonfly, gmail, gmx, opensmtpd, zoho
from smtplens.bounce.mime import parse_mail
from smtplens.model import Stage
from tests.bounce_fixtures import decode_fixture


def test_opensmtpd_relayed_notice_is_read_by_its_decoder() -> None:
    result = decode_fixture("opensmtpd-variant-relayed.eml")
    assert (result.kind, result.decoder) == (Kind.DELIVERY_NOTICE, "opensmtpd")
    (r,) = result.recipients
    assert (r.recipient, r.action, r.status, r.reply_code) == ("oscar@example.org", Action.RELAYED, "2.0.0", "250")
    assert r.diagnostic == "250 2.0.0 Ok: queued as 4Zb1xQ0abc"


def test_opensmtpd_success_notice_reads_each_recipient_line() -> None:
    result = decode_fixture("opensmtpd-variant-delivered.eml")
    assert (result.kind, result.decoder) == (Kind.DELIVERY_NOTICE, "opensmtpd")
    assert [(r.recipient, r.action, r.reply_code) for r in result.recipients] == [
        ("peggy@example.org", Action.DELIVERED, "250"),
        ("trent@example.com", Action.DELIVERED, "250"),
    ]
    assert all(r.diagnostic is not None and "@" not in r.diagnostic for r in result.recipients)


def test_zoho_bracketed_status_record() -> None:
    result = decode_fixture("zoho-variant-status.eml")
    assert result.decoder == "zoho"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reply_code, r.reason) == (
        "walter@far.example.net",
        Action.FAILED,
        "421",
        "expired",
    )
    assert r.diagnostic == "421 Host not reachable. (Error)"


def test_gmx_reason_layout() -> None:
    result = decode_fixture("gmx-variant-reason.eml")
    assert result.decoder == "gmx"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reason) == ("wendy@slow.example.org", Action.FAILED, "expired")
    assert r.diagnostic == "delivery retry timeout exceeded"


def test_dragonfly_unnamed_remote_host_keeps_the_command() -> None:
    (r,) = decode_fixture("dragonfly-variant-remotehost.eml").recipients
    assert (r.recipient, r.action, r.reason) == ("yann@remote.test", Action.FAILED, "user_unknown")
    assert (r.status, r.reply_code, r.stage, r.remote_host) == ("5.1.1", "550", Stage.RCPT, None)
    assert r.diagnostic is not None and r.diagnostic.startswith("550 5.1.1")


def test_dragonfly_refused_greeting_is_the_connect_stage() -> None:
    (r,) = decode_fixture("dragonfly-variant-connect.eml").recipients
    assert (r.recipient, r.reason, r.status, r.reply_code) == ("xavier@blocked.test", "blocklisted", "5.7.1", "554")
    assert (r.stage, r.remote_host) == (Stage.CONNECT, "mx.blocked.test")


def test_dragonfly_dns_failure_is_a_domain_that_does_not_exist() -> None:
    (r,) = decode_fixture("dragonfly-variant-dns.eml").recipients
    assert (r.recipient, r.action, r.reason) == ("yann@nowhere.test", Action.FAILED, "domain_invalid")
    assert r.hard_bounce  # the decoder named the reason: the taxonomy says a domain that does not exist is hard


def test_gmail_connection_failure_names_the_host_and_stage() -> None:
    result = decode_fixture("gmail-variant-connect.eml")
    assert result.decoder == "gmail"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reason) == ("uma@closed.example.org", Action.FAILED, "expired")
    assert (r.stage, r.remote_host) == (Stage.CONNECT, "mx.closed.example.org")


def test_gmail_delay_names_the_host_tried() -> None:
    (r,) = decode_fixture("gmail-delay.eml").recipients
    assert (r.action, r.stage, r.remote_host) == (Action.DELAYED, Stage.CONNECT, "example.net")


def test_gmail_s_indented_header_line_ends_the_notice() -> None:
    """Gmail indents "----- Message header follows -----": the returned header after it is no part of the
    diagnostic, and its List-Unsubscribe addresses are no recipients."""
    (r,) = decode_fixture("gmail-variant-indented-header.eml").recipients
    assert (r.recipient, r.action, r.reason) == ("oarsman@river.example", Action.DELAYED, "network_error")
    assert r.diagnostic is not None and r.diagnostic.endswith("Connection timed out]")
    assert r.list_id == "club-news.rowing.example"


def test_gmail_s_response_heading_gives_a_missing_diagnostic() -> None:
    """Gmail's report may leave out Diagnostic-Code, or give only the reply's code ("smtp; 552"): the reply stands
    in the notice under "The response was:" / "The response from the remote server was:"."""
    (dns,) = decode_fixture("rfc3464-variant-gmail-response.eml").recipients
    assert (dns.recipient, dns.reason) == ("orders@flour-mill.example", "domain_invalid")
    assert dns.diagnostic is not None and dns.diagnostic.startswith("DNS Error: 4719206 DNS type 'mx' lookup")
    (full,) = decode_fixture("rfc3464-variant-gmail-bare-code.eml").recipients
    assert (full.recipient, full.reason, full.status, full.reply_code) == (
        "miller@grain.example",
        "mailbox_full",
        "5.2.2",
        "552",
    )
    assert full.diagnostic == "552 5.2.2 <miller@grain.example>: Recipient mailbox is over its storage limit"


def test_gmail_delay_is_a_network_error_not_an_expiry() -> None:
    # the same words as the final notice's ("did not accept our requests to connect"), but Gmail is still trying
    (r,) = decode_fixture("gmail-delay.eml").recipients
    assert (r.action, r.reason) == (Action.DELAYED, "network_error")


def test_amazonses_delivery_delay_event() -> None:
    result = decode_fixture("amazonses-variant-delay.eml")
    assert (result.kind, result.decoder) == (Kind.BOUNCE, "amazonses")
    (r,) = result.recipients
    assert (r.recipient, r.action, r.status, r.reply_code) == ("quinn@busy.example.org", Action.DELAYED, "4.4.1", "421")
    assert r.reporting_mta == "a9-12.smtp-out.amazonses.com" and not r.hard_bounce


def test_amazonses_bounce_names_the_remote_server() -> None:
    (r,) = decode_fixture("amazonses-variant-remoteip.eml").recipients
    assert (r.recipient, r.reason, r.status, r.reply_code) == ("rita@example.org", "user_unknown", "5.1.1", "550")
    assert r.remote_host == "192.0.2.77"


@pytest.mark.parametrize(
    "data",
    [
        b"Subject: Delivery status notification: relayed\n\n    This is the MAILER-DAEMON, please DO NOT REPLY to"
        b" this email.\n    Your message was relayed to these recipients.\n\n: \n",
        b"From: mailer-daemon@mail.zoho.com\nX-Mailer: Zoho Mail\n\nrecipients.\n[Status: , Address: <@>, ResponseCode",
        b"From: mailer-daemon@mail.zoho.com\nX-Mailer: Zoho Mail\n\nrecipients.\n"
        b"[Status: , Address: a@b, ResponseCode ,]",
        b"From: MAILER-DAEMON@gmx.net\n\nThe following address failed:\n<a@b>\nReason:\n"
        b"--- The header of the original message is following. ---\n",
        b"From: MAILER-DAEMON\n\nThis is the DragonFly Mail Agent at x.\n"
        b"There was an error delivering your mail to <>.\nremote host did not like our :\n",
        b'From: no-reply@sns.amazonaws.com\nx-amz-sns-message-id: 1\n\n{"eventType":"DeliveryDelay","deliveryDelay":1}',
        b'From: no-reply@sns.amazonaws.com\nx-amz-sns-message-id: 1\n\n{"eventType":"DeliveryDelay",'
        b'"deliveryDelay":{"delayedRecipients":[{"emailAddress":7}],"remoteMtaIp":[]}}',
        b"From: mailer-daemon@googlemail.com\n\nDelivery to the following recipient failed permanently:\n  a@b\n"
        b"Technical details of permanent failure:\n[(0) . [:]:25: ]\n",
    ],
)
def test_broken_variants_never_raise(data: bytes) -> None:
    mail = parse_mail(data)
    for decoder in (amazonses, dragonfly, gmail, gmx, opensmtpd, zoho):
        if decoder.detect(mail):
            assert isinstance(decoder.decode(mail), list)
