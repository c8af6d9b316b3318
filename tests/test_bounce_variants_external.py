"""Layouts that real bounces outside the shared corpus showed (the test mails of two other bounce parsers, read
for measurement, not copied): each with a fixture mail of our own and what it must give."""

from __future__ import annotations

import pytest

from smtplens.bounce import Action, Kind
from tests.bounce_fixtures import decode_cut_copies, decode_fixture


def test_a_recipient_that_is_no_internet_address_is_named_by_its_original_or_its_rfc822_attribute() -> None:
    """RFC 3464 section 2.3.2 allows other address types than rfc822: an X.400 Final-Recipient carries an
    Internet address in its RFC-822 attribute (RFC 2156), else the Original-Recipient names the address the sender
    used; so does a routing name without a domain (Sun/Oracle Messaging Server's ``user@ims-ms-daemon``)."""
    ann, bob, carol = decode_fixture("rfc3464-variant-x400-recipient.eml").recipients
    assert (ann.recipient, ann.original_recipient) == ("ann.smith@example.org", "ann@example.net")
    assert (bob.recipient, bob.original_recipient) == ("bob@example.net", None)
    assert (carol.recipient, carol.reason) == ("carol@example.net", "mailbox_full")


def test_a_notice_forwarded_as_an_attachment_is_read() -> None:
    result = decode_fixture("rfc3464-variant-forwarded.eml")
    assert (result.kind, result.decoder) == (Kind.BOUNCE, "rfc3464")
    (dan,) = result.recipients
    assert (dan.recipient, dan.reason, dan.status) == ("dan@example.net", "user_unknown", "5.1.1")
    assert any("forwarded" in w for w in result.warnings)


def test_exchange_names_a_single_recipient_on_the_marker_line() -> None:
    result = decode_fixture("exchange2003-variant-one-line.eml")
    assert result.decoder == "exchange2003"
    assert [r.recipient for r in result.recipients] == ["erin@example.net"]


def test_mdaemon_notice_is_a_bounce_and_says_why() -> None:
    result = decode_fixture("plaintext-variant-mdaemon.eml")
    (frank,) = result.recipients
    assert (result.decoder, frank.recipient, frank.reason) == ("plaintext", "frank@example.net", "user_unknown")


def test_a_plain_warning_is_a_delay_with_its_explanation() -> None:
    (gina,) = decode_fixture("plaintext-variant-still-trying.eml").recipients
    assert gina.action is Action.DELAYED and not gina.hard_bounce
    assert gina.diagnostic is not None and "did not respond" in gina.diagnostic


def test_exim_style_delay_with_the_host_at_the_margin() -> None:
    result = decode_fixture("exim-variant-margin-delay.eml")
    (hank,) = result.recipients
    assert (result.decoder, hank.recipient, hank.action) == ("exim", "hank@example.org", Action.DELAYED)
    assert (hank.remote_host, hank.diagnostic, hank.reason) == (
        "mx.example.org",
        "connection to mail exchanger failed",
        "network_error",
    )


def test_a_refusal_sent_as_a_disposition_notification_is_a_bounce() -> None:
    """RFC 5429: a Sieve reject (Dovecot's LDA and LMTP too) answers with an MDN whose disposition is "deleted"."""
    result = decode_fixture("mdn-dovecot-reject.eml")
    (ivy,) = result.recipients
    assert (result.kind, result.decoder) == (Kind.BOUNCE, "mdn")
    assert (ivy.recipient, ivy.reason, ivy.action) == ("ivy@example.org", "mailbox_full", Action.FAILED)
    assert (ivy.diagnostic, ivy.reporting_mta, ivy.message_id) == (
        "Quota exceeded (mailbox for user is full)",
        "mail.example.org",
        "letter-42@shop.example",
    )


def test_a_read_receipt_is_no_bounce() -> None:
    result = decode_fixture("mdn-read-receipt.eml")
    assert (result.kind, result.recipients) == (Kind.NOT_BOUNCE, ())


def test_yahoo_s_newer_notice_names_the_recipient_in_its_summary() -> None:
    result = decode_fixture("yahoo-variant-given-up.eml")
    (jack,) = result.recipients
    assert (result.decoder, jack.recipient, jack.action) == ("yahoo", "jack@yahoo.com", Action.FAILED)
    assert jack.diagnostic is not None and jack.diagnostic.startswith("This is a permanent error")


@pytest.mark.parametrize(
    "name",
    [
        "rfc3464-variant-x400-recipient.eml",
        "rfc3464-variant-forwarded.eml",
        "exchange2003-variant-one-line.eml",
        "plaintext-variant-mdaemon.eml",
        "plaintext-variant-still-trying.eml",
        "exim-variant-margin-delay.eml",
        "mdn-dovecot-reject.eml",
        "aol-airmail.eml",
        "yahoo-variant-given-up.eml",
    ],
)
def test_cut_copies_never_raise(name: str) -> None:
    decode_cut_copies(name)
