"""Layouts and wordings that the sample mails of other bounce handlers showed (PHP-Bounce-Handler's two
collections, the bounce_email test mails, flanker's and listmonk's bounce fixtures, the delivery failures in Exim's
test suite's mailboxes, the bounces among the test mails of Discourse, Zammad, the Ruby mail library and MimeKit;
read for measurement, not copied): each with a fixture mail or reply text of our own and what it must give."""

from __future__ import annotations

import pytest

from smtplens import classify
from smtplens.bounce import Action, Kind, decode_bounce
from smtplens.bounce.mime import parse_mail
from tests.bounce_fixtures import decode_cut_copies, decode_fixture


def test_a_report_whose_boundary_line_lost_its_indentation_is_still_read() -> None:
    """Copies of the ARF draft's examples fold ``boundary=`` onto a line at the margin: that line is no
    continuation, so it ends the header and the Content-Type has no boundary; the delimiter that the body's parts
    use is taken instead."""
    result = decode_fixture("arf-variant-lost-boundary.eml")
    (ivy,) = result.recipients
    assert (result.kind, result.decoder) == (Kind.FEEDBACK, "arf")
    assert (ivy.recipient, ivy.feedback_type, ivy.sender) == ("ivy@example.org", "abuse", "news@example.com")
    assert ivy.message_id == "offer-20261102-1@example.com"


def test_a_lost_boundary_is_taken_only_when_it_comes_back() -> None:
    lone = "Content-Type: multipart/mixed\n\n--not-a-delimiter-twice\nplain text\n"
    assert parse_mail(lone.encode()).root.children == []
    two = "Content-Type: multipart/mixed\n\n--b1\n\nfirst\n--b1\n\nsecond\n--b1--\n"
    assert [p.text().strip() for p in parse_mail(two.encode()).root.children] == ["first", "second"]


def test_hotmail_s_inline_complaint_is_a_feedback_report() -> None:
    """The older Junk Mail Reporting Program form: the reported message itself, passed on with
    X-HmXmrOriginalRecipient naming who complained."""
    result = decode_fixture("arf-variant-jmrp-inline.eml")
    (jack,) = result.recipients
    assert (result.kind, jack.recipient, jack.feedback_type) == (Kind.FEEDBACK, "jack@hotmail.com", "abuse")
    assert jack.sender == "offers@example.com"


def test_a_quoted_spamhaus_answer_is_a_blocklisting() -> None:
    (kate,) = decode_fixture("exim-variant-dnsbl-text.eml").recipients
    assert (kate.recipient, kate.reason, kate.hard_bounce) == ("kate@example.net", "blocklisted", False)


def test_a_failed_sender_callout_is_the_sender_s_problem_not_the_recipient_s() -> None:
    (leo,) = decode_fixture("sendmail-variant-sender-callout.eml").recipients
    assert (leo.recipient, leo.reason, leo.hard_bounce) == ("leo@example.net", "sender_rejected", False)


def test_a_mailbox_closed_for_lack_of_use_is_disabled() -> None:
    (mia,) = decode_fixture("qmail-variant-spanish-expired.eml").recipients
    assert (mia.recipient, mia.reason, mia.action) == ("mia@example.com.ar", "mailbox_disabled", Action.FAILED)


def test_imail_s_given_up_after_retries_is_expired() -> None:
    (nora,) = decode_fixture("imailserver-variant-gave-up.eml").recipients
    assert (nora.recipient, nora.reason, nora.diagnostic) == (
        "nora@example.net",
        "expired",
        "Delivery failed 12 attempts",
    )


def test_a_report_of_fields_only_takes_no_field_for_an_explanation() -> None:
    """A ``message/delivery-status`` mail without its human-readable part: the recipient's DSN fields are no
    paragraph about the recipient, so the status decides."""
    (omar,) = decode_fixture("rfc3464-variant-fields-only.eml").recipients
    assert (omar.recipient, omar.diagnostic, omar.status, omar.reason) == (
        "omar@example.net",
        None,
        "4.2.2",
        "mailbox_full",
    )


def test_exchange_online_s_later_error_details() -> None:
    """``Error:`` and ``Message rejected by:`` in "Error Details", the reporting server as ``Sent by:``."""
    result = decode_fixture("office365-variant-error-line.eml")
    (pia,) = result.recipients
    assert (result.decoder, pia.recipient, pia.reply_code, pia.reason) == (
        "office365",
        "pia@example.net",
        "554",
        "policy_rejected",
    )
    assert pia.diagnostic == "554 5.7.1 Message rejected due to local policy. See https://postmaster.example.net/policy"
    assert (pia.remote_host, pia.reporting_mta) == ("mx1.example.net", "AM0PR01MB0001.eurprd01.prod.outlook.com")
    assert pia.message_id == "welcome-77@example.com"


def test_exim_s_remote_host_line_at_the_recipients_indentation_belongs_to_the_recipient_above() -> None:
    quinn, rosa, sales = decode_fixture("exim-variant-host-at-recipient-indent.eml").recipients
    assert (quinn.recipient, quinn.reply_code, quinn.remote_host, quinn.reason) == (
        "quinn@example.net",
        "550",
        "mx.example.net",
        "user_unknown",
    )
    assert quinn.diagnostic == "550 5.1.1 No such mailbox here"
    assert (rosa.recipient, rosa.reason) == ("rosa@example.net", "routing_loop")
    assert (sales.recipient, sales.reason) == ('"sales: team"@example.net', "domain_invalid")  # ": " inside quotes


def test_a_message_id_in_a_references_line_is_no_failed_recipient() -> None:
    """Exim's warning to the postmaster about errors in a forward file (no bounce: "Other addresses were processed
    normally") may open its body with a References line; the message-id there is no address that failed."""
    warning = (
        "From: Mail Delivery System <Mailer-Daemon@mail.example.com>\n"
        "To: postmaster@example.com\n"
        "Subject: error(s) in forwarding or filtering\n"
        "Auto-Submitted: auto-replied\n"
        "\n"
        "References: <E1qAbc-000123-XY@mail.example.com>\n"
        "The r1 router encountered the following error(s):\n\n"
        "  domain missing or malformed in the address\n\n"
        "Other addresses were processed normally.\n"
    )
    result = decode_bounce(warning.encode())
    assert (result.kind, result.recipients) == (Kind.NOT_BOUNCE, ())


def test_a_postfix_notice_whose_report_a_gateway_made_unreadable_is_read_from_its_text() -> None:
    """A link-rewriting gateway re-encoded the delivery-status part's recipient fields in base64 under a header line
    of its own: the part names nobody, so the Postfix decoder reads the notice's text instead (before, only the
    plain-text fallback did, and lost the reply's continuation lines)."""
    result = decode_fixture("postfix-variant-rewritten-report.eml")
    assert result.decoder == "postfix"
    (gina,) = result.recipients
    assert (gina.recipient, gina.reason, gina.status, gina.reply_code) == (
        "gina@clinic.example",
        "user_unknown",
        "5.1.1",
        "550",
    )
    assert (gina.remote_host, gina.message_id) == ("mx.gateway.example", "appointment-3120@shop.example")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("550 zen.example.test Listed by CSS", "blocklisted"),
        ("554 Service unavailable; client [192.0.2.1] Listed by PBL, see https://check.example.org/", "blocklisted"),
        ("550 5.7.1 Listed by SBL, see https://check.example.org/sbl/query/SBL123", "blocklisted"),
        ("550 Sender verify failed", "sender_rejected"),
        ("550 The account or domain may not exist, they may be blacklisted. Sender verify failed", "sender_rejected"),
        ("550 The account or domain may not exist", "domain_invalid"),
        ("550 Esta casilla ha expirado por falta de uso.", "mailbox_disabled"),
        ('subject was "should fail this" (filter fail)', "content_rejected"),
        ("lowest numbered MX record points to local host", "routing_loop"),
        ("remote host address is the local host", "routing_loop"),
        ("local delivery failed", "mailer_error"),
        ("local delivery failed: user unknown", "user_unknown"),
        ("Remote host closed connection in response to end of data", "network_error"),
        ("delivery to pipe forbidden", "mailer_error"),
        ("Invalid domain, see <URL:ftp://ftp.isi.edu/in-notes/rfc1035.txt>", "domain_invalid"),
        ("553 5.1.8 Sender address rejected: invalid domain", "sender_rejected"),
        ("malformed address: @ may not follow kate", "protocol_error"),
        ("X-LOCAL; 500 (err.nosuchuser)", "user_unknown"),
        ("Connection was dropped by remote host (SENT_HELO)", "network_error"),
        (
            "Your mail to the following recipients could not be delivered because they are not accepting mail from"
            " news@lists.example.com:",
            "policy_rejected",
        ),
        (
            "cannot append message to file /home/kate/mbox: cannot create file exclusively: Permission denied",
            "system_error",
        ),
        (
            "cannot update mailbox /var/mail/kate for user kate. error writing message: Disk quota exceeded",
            "mailbox_full",
        ),
    ],
)
def test_wordings(reply: str, reason: str) -> None:
    assert classify(reply).reason == reason


@pytest.mark.parametrize(
    "name",
    [
        "arf-variant-lost-boundary.eml",
        "arf-variant-jmrp-inline.eml",
        "exim-variant-dnsbl-text.eml",
        "sendmail-variant-sender-callout.eml",
        "qmail-variant-spanish-expired.eml",
        "imailserver-variant-gave-up.eml",
        "rfc3464-variant-fields-only.eml",
        "office365-variant-error-line.eml",
        "exim-variant-host-at-recipient-indent.eml",
    ],
)
def test_cut_copies_never_raise(name: str) -> None:
    decode_cut_copies(name)
