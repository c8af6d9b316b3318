"""Variants of Sendmail, Sendmail 5, Postfix and Courier notices that real MTAs write besides the common ones.

Small fixture mails written for these tests (tests/fixtures/bounces/<decoder>-variant-*.eml), in each MTA's own
wording of the fixed parts: Sendmail's delay warning and its postmaster copy, a recipient line without a reply
code ("<address>... Deferred: …"), a reply to the greeting; Sendmail 5's "No message was collected"; Postfix's
own words where no reply is quoted ("lost connection with … while sending RCPT TO"), a renamed program
(``mail_name``), the SMTP server's notice to the postmaster and its local delivery's own results ("x-unix; user
unknown"); Courier's delay notice and the title of a relayed message's section.
"""

from __future__ import annotations

import pytest

from smtplens import classify
from smtplens.bounce import Action, Kind, decode_bounce
from smtplens.bounce.decoders import courier, postfix, sendmail, v5sendmail
from smtplens.bounce.mime import parse_mail
from smtplens.model import Stage
from tests.bounce_fixtures import BOUNCES, decode_fixture

VARIANTS = sorted(
    p.name
    for p in BOUNCES.glob("*-variant-*.eml")
    if p.name.split("-")[0]
    in {
        "sendmail",
        "v5sendmail",
        "postfix",
        "courier",
    }
)


def test_sendmail_delay_warning_from_a_masqueraded_sender() -> None:
    # "Warning: could not send message for past 4 hours" from "Mail Delivery Subsystem <postmaster@…>", no DSN part:
    # the recipient's line carries no reply code ("<bob@…>... Deferred: 421 …"), the 421 answered the greeting
    result = decode_fixture("sendmail-variant-warning.eml")
    assert result.decoder == "sendmail"
    (bob,) = result.recipients
    assert bob.recipient == "bob@example.org" and bob.action is Action.DELAYED
    assert (bob.reply_code, bob.status, bob.stage, bob.remote_host) == ("421", "4.3.2", Stage.CONNECT, "mx.example.org")
    assert not bob.hard_bounce


def test_sendmail_postmaster_copy_takes_the_reply_the_dsn_quotes() -> None:
    # "<<< 503 5.0.0 Need RCPT (recipient)" follows the rejection; the DSN names the alias, the transcript the address
    result = decode_fixture("sendmail-variant-pipelined.eml")
    assert result.decoder == "sendmail"
    (r,) = result.recipients
    assert r.recipient == "team@example.net" and r.action is Action.FAILED
    assert (r.reply_code, r.status, r.stage, r.remote_host) == ("550", "5.1.1", Stage.DATA, "mx.example.org")
    assert r.diagnostic == "550 5.1.1 <carol@example.org>... No such user here"
    assert r.reason == "user_unknown"


def test_sendmail_transcript_lines_without_a_reply_code() -> None:
    text = (
        "   ----- Transcript of session follows -----\n"
        "... while talking to mx.example.org.:\n"
        ">>> DATA\n"
        "<<< 450 4.7.1 Client host rejected: try again later\n"
        "<bob@example.org>... Deferred: 450 4.7.1 Client host rejected: try again later\n"
        "<<< 554 5.5.1 Error: no valid recipients\n"
    )
    first, second = sendmail.read_transcript(text)
    assert (first.recipient, first.code, first.stage, first.host) == (
        "bob@example.org",
        None,
        Stage.DATA,
        "mx.example.org",
    )
    assert first.diagnostic == "450 4.7.1 Client host rejected: try again later"
    assert second.recipient is None and second.stage is None  # a later reply, not the greeting


def test_v5sendmail_without_a_collected_message() -> None:
    result = decode_fixture("v5sendmail-variant-nomessage.eml")
    assert result.decoder == "v5sendmail"
    (dave,) = result.recipients
    assert dave.recipient == "dave@example.org" and dave.action is Action.FAILED
    assert (dave.reply_code, dave.stage, dave.remote_host) == ("550", Stage.RCPT, "mx.example.org")
    assert dave.reason == "user_unknown"


def test_postfix_session_broken_off_names_host_and_stage() -> None:
    result = decode_fixture("postfix-variant-lost-connection.eml")
    assert result.decoder == "postfix"
    erin, frank = result.recipients
    assert erin.recipient == "erin@example.org" and erin.action is Action.FAILED
    assert (erin.stage, erin.remote_host) == (Stage.RCPT, "mx.example.org")
    assert erin.diagnostic == "lost connection with mx.example.org[192.0.2.10] while sending RCPT TO"
    assert frank.recipient == "frank@example.com"
    assert (frank.stage, frank.remote_host) == (Stage.CONNECT, "mx2.example.com")
    # Postfix returns a mail for a connection failure only once its queue lifetime has passed
    assert (erin.reason, frank.reason) == ("expired", "expired")


def test_postfix_local_delivery_words_decide_over_the_x_unix_type() -> None:
    # Postfix's local delivery writes its own results as "x-unix; …": the words name the cause where they can
    dave, erin = decode_fixture("postfix-variant-local-unknown.eml").recipients
    assert (dave.recipient, dave.diagnostic_type, dave.reason) == ("dave@hosting.example", "x-unix", "user_unknown")
    assert dave.hard_bounce
    assert (erin.recipient, erin.reason) == ("erin@hosting.example", "mailer_error")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("x-unix; user unknown", "user_unknown"),
        ("x-unix; Quota exceeded message delivery failed to /var/mail/inbox", "mailbox_full"),
        ("X-Unix; 77", "mailer_error"),
        ("X-Unix; 69", "mailer_error"),
    ],
)
def test_x_unix_is_a_weak_sign_of_a_delivery_program(text: str, reason: str) -> None:
    assert classify(text).reason == reason


def test_postfix_connect_to_is_the_connection_stage() -> None:
    (erin, frank) = decode_fixture("postfix-text.eml").recipients
    assert erin.stage is Stage.RCPT
    assert (frank.stage, frank.remote_host) == (Stage.CONNECT, "example.com")


def test_postfix_with_a_renamed_program() -> None:
    result = decode_fixture("postfix-variant-renamed.eml")
    assert result.decoder == "postfix"
    (grace,) = result.recipients
    assert grace.recipient == "grace@example.org" and grace.action is Action.FAILED
    assert (grace.reply_code, grace.status, grace.stage, grace.remote_host) == (
        "550",
        "5.1.1",
        Stage.RCPT,
        "mx.example.org",
    )
    assert grace.diagnostic is not None and grace.diagnostic.endswith("User unknown in local recipient table")


def test_postfix_smtp_server_notice_to_the_postmaster() -> None:
    result = decode_fixture("postfix-variant-smtpd-notice.eml")
    assert result.decoder == "postfix"
    henry, ivan = result.recipients
    assert henry.recipient == "henry@example.org" and henry.action is Action.FAILED
    assert (henry.reply_code, henry.status, henry.stage) == ("550", "5.1.1", Stage.RCPT)
    assert henry.diagnostic is not None and henry.diagnostic.endswith("User unknown in local recipient table")
    assert henry.reason == "user_unknown"
    # accepted at RCPT, refused with the message after "354"
    assert ivan.recipient == "ivan@example.org"
    assert (ivan.reply_code, ivan.status, ivan.stage) == ("554", "5.7.1", Stage.END_OF_DATA)


def test_courier_delay_notice_without_a_courier_message_id() -> None:
    result = decode_fixture("courier-variant-delayed.eml")
    assert result.decoder == "courier"
    (judy,) = result.recipients
    assert judy.recipient == "judy@example.org" and judy.action is Action.DELAYED
    assert (judy.reply_code, judy.status, judy.stage, judy.remote_host) == (
        "451",
        "4.7.1",
        Stage.RCPT,
        "mx.example.org",
    )
    assert not judy.hard_bounce


def test_courier_section_title_decides_the_action() -> None:
    # no delivery-status part: "MESSAGE DELIVERED TO A MAIL GATEWAY" is relayed, whatever the explanation says
    result = decode_fixture("courier-variant-relayed.eml")
    assert result.decoder == "courier"
    (kim,) = result.recipients
    assert kim.recipient == "kim@example.org" and kim.action is Action.RELAYED
    assert kim.kind is Kind.DELIVERY_NOTICE and kim.remote_host == "gw.example.org"


@pytest.mark.parametrize("name", VARIANTS)
def test_broken_copies_never_raise(name: str) -> None:
    data = (BOUNCES / name).read_bytes()
    for cut in range(0, len(data), 53):
        for variant in (data[:cut], data[cut:], data[:cut] + b"\n Out: 550\n In:  RCPT TO:<>\n <<<\n<@>... \n"):
            result = decode_bounce(variant)
            assert result.kind in set(Kind)
            mail = parse_mail(variant)
            for module in (sendmail, v5sendmail, postfix, courier):
                if module.detect(mail):
                    assert isinstance(module.decode(mail), list)


def test_ordinary_mail_mentioning_the_words_is_not_detected() -> None:
    mail = parse_mail(
        b"From: alice@example.org\nSubject: Warning: could not send the report, see transcript\n\n"
        b"Transcript of session follows.\n In:  RCPT TO:<b@example.org>\n Out: 550 no\n"
    )
    assert not any(m.detect(mail) for m in (sendmail, v5sendmail, postfix, courier))
