"""Notice variants of Microsoft Exchange, Lotus Notes, IMail and MX Logic bounces that the decoders once missed:
Exchange 4.0/5.5 recipients in X.400 form or indented with a local date, Exchange 2000/2003's "could not be
reached" layout, Exchange's administrators' section in Swedish, Dutch and Portuguese, Exchange Online's "Error
Details" layout, a Notes notice that names no recipient, IMail's reply to the message body and MX Logic's
Exim-style explanations and delay warnings, and a report whose delivery-status part a client relabelled as a text
attachment (fixtures written for these tests, in each product's wording of the fixed parts)."""

from __future__ import annotations

import pytest

from smtplens.bounce import Action, Kind, decode_bounce
from smtplens.bounce.decoders import exchange2003, exchange2007, mxlogic, notes, office365
from smtplens.bounce.mime import parse_mail
from smtplens.model import Stage
from tests.bounce_fixtures import decode_fixture


def test_exchange_connector_x400_recipient_gives_its_smtp_address() -> None:
    result = decode_fixture("exchange2003-variant-x400.eml")
    assert result.decoder == "exchange2003"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reason) == ("bob@example.com", Action.FAILED, "user_unknown")
    assert r.diagnostic is not None and "(000C05A6) Unknown Recipient" in r.diagnostic
    assert r.timestamp is not None and r.timestamp.year == 2002


def test_exchange55_indented_recipients_with_local_dates() -> None:
    result = decode_fixture("exchange2003-variant-indented.eml")
    assert result.decoder == "exchange2003"
    assert [(r.recipient, r.action) for r in result.recipients] == [
        ("carol@example.com", Action.FAILED),
        ("dave@far.example.net", Action.FAILED),
    ]
    carol, dave = result.recipients
    assert carol.reason == "user_unknown"
    assert dave.diagnostic is not None and dave.diagnostic.endswith("(000B099C) Host Unknown")


def test_exchange2003_could_not_be_reached_layout() -> None:
    result = decode_fixture("exchange2003-variant-2003.eml")
    assert (result.kind, result.decoder) == (Kind.BOUNCE, "exchange2003")
    erin, frank = result.recipients
    assert (erin.recipient, erin.action, erin.status, erin.reply_code, erin.reason) == (
        "erin@example.net",
        Action.FAILED,
        "5.1.1",
        "550",
        "user_unknown",
    )
    assert erin.reporting_mta == "mail.example.com"
    assert erin.diagnostic == "550 5.1.1 <erin@example.net>... User unknown"
    assert (frank.recipient, frank.status, frank.reply_code) == ("frank@example.net", "5.7.1", "550")


def test_exchange2007_swedish_administrators_section() -> None:
    result = decode_fixture("exchange2007-variant-swedish.eml")
    assert result.decoder == "exchange2007"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.status, r.reply_code, r.reason) == (
        "nils@example.se",
        Action.FAILED,
        "5.1.1",
        "550",
        "user_unknown",
    )
    assert r.reporting_mta == "mail.example.se"


def test_office365_portuguese_report() -> None:
    result = decode_fixture("office365-variant-portuguese.eml")
    assert result.decoder == "office365"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.status, r.reply_code) == ("ana@example.com.br", Action.FAILED, "5.1.10", "550")
    assert r.reporting_mta == "BN3PR01MB0001.prod.exchangelabs.com"


def test_office365_dutch_report_names_the_remote_host() -> None:
    result = decode_fixture("office365-variant-dutch.eml")
    assert result.decoder == "office365"
    (r,) = result.recipients
    assert (r.recipient, r.status, r.reply_code, r.reason) == ("jan@example.nl", "5.2.2", "552", "mailbox_full")
    assert (r.remote_host, r.reporting_mta) == ("mx.example.nl", "AM5PR01MB0001.eurprd01.prod.exchangelabs.com")


def test_office365_error_details_layout() -> None:
    result = decode_fixture("office365-variant-details.eml")
    assert result.decoder == "office365"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.status, r.reply_code, r.reason) == (
        "kim@example.com",
        Action.FAILED,
        "5.1.10",
        "550",
        "user_unknown",
    )
    assert r.reporting_mta == "DB6PR01MB0001.eurprd01.prod.exchangelabs.com"


def test_office365_top_section_in_other_languages() -> None:
    text = (
        "Uw bericht kan niet worden bezorgd bij de volgende geadresseerden of groepen:\n\n"
        "jan@example.nl<mailto:jan@example.nl>\nHet postvak van de ontvanger is vol.\n"
    )
    mail = parse_mail(
        "From: postmaster@example.onmicrosoft.com\nX-MS-Exchange-CrossTenant-OriginalArrivalTime: 1\n"
        "Subject: Onbestelbaar: Offerte\n\n" + text
    )
    assert office365.detect(mail)
    (f,) = office365.decode(mail)
    assert (f.recipient, f.diagnostic) == ("jan@example.nl", "Het postvak van de ontvanger is vol.")


def test_notes_notice_without_recipient_reads_the_returned_message() -> None:
    result = decode_fixture("notes-variant-returned-to.eml")
    assert result.decoder == "notes"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reason) == ("grace@example.com", Action.FAILED, "routing_loop")
    assert r.diagnostic == "Message has exceeded maximum hop count"


def test_imailserver_reply_to_the_body_is_the_end_of_data() -> None:
    result = decode_fixture("imailserver-response.eml")
    frank, grace = result.recipients
    assert (frank.recipient, frank.stage) == ("frank@relay.test", None)
    assert (grace.recipient, grace.reply_code, grace.stage) == ("grace@far.test", "552", Stage.END_OF_DATA)


def test_mxlogic_exim_style_explanation() -> None:
    result = decode_fixture("mxlogic-variant-transcript.eml")
    assert result.decoder == "mxlogic"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.status, r.reply_code, r.reason) == (
        "victor@example.jp",
        Action.FAILED,
        "5.1.1",
        "550",
        "user_unknown",
    )
    assert (r.stage, r.remote_host) == (Stage.RCPT, "mx.example.jp")


def test_mxlogic_delay_warning() -> None:
    result = decode_fixture("mxlogic-variant-delayed.eml")
    assert (result.kind, result.decoder) == (Kind.BOUNCE, "mxlogic")
    (r,) = result.recipients
    assert (r.recipient, r.action, r.status, r.reply_code) == (
        "walter@slow.example.org",
        Action.DELAYED,
        "4.3.0",
        "451",
    )
    assert (r.stage, r.remote_host) == (Stage.RCPT, "mx.slow.example.org")
    assert r.diagnostic is not None and r.diagnostic.startswith("SMTP error") and not r.hard_bounce


def test_a_report_relabelled_as_a_text_attachment_is_read() -> None:
    """A notice forwarded with its delivery-status part as "details.txt" (text/plain, base64): the report's fields
    are read from the attachment."""
    result = decode_fixture("rfc3464-variant-report-as-attachment.eml")
    assert result.decoder == "rfc3464"
    (r,) = result.recipients
    assert (r.recipient, r.reason, r.status, r.reply_code) == ("heidi@example.org", "user_unknown", "5.1.1", "550")
    assert r.remote_host == "mx.example.org" and r.action is Action.FAILED


def test_the_paragraph_that_quotes_the_reply_is_the_diagnostic() -> None:
    """A report without Diagnostic-Code whose human-readable part names the recipient twice: in its prose, then in
    the administrators' details with the remote server's reply. The reply's paragraph is the diagnostic."""
    mail = (
        b"From: postmaster@corp.example.com\nTo: ivan@corp.example.com\nSubject: Undeliverable: plans\n"
        b'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="r1"\n\n'
        b"--r1\nContent-Type: text/plain\n\nDelivery has failed to these recipients or groups:\n\n"
        b"judy@example.net\nThe e-mail address you entered couldn't be found. Please check the address.\n\n"
        b"Diagnostic information for administrators:\n\nGenerating server: hub.corp.example.com\n\n"
        b"judy@example.net\nmx.example.net #550 5.1.1 <judy@example.net>: Recipient address rejected: User unknown ##\n"
        b"\n--r1\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; hub.corp.example.com\n\n"
        b"Final-Recipient: rfc822; judy@example.net\nAction: failed\nStatus: 5.1.1\n\n--r1--\n"
    )
    (r,) = decode_bounce(mail).recipients
    assert (r.reason, r.status, r.reply_code) == ("user_unknown", "5.1.1", "550")
    assert r.diagnostic is not None and "#550 5.1.1 <judy@example.net>" in r.diagnostic


@pytest.mark.parametrize(
    "data",
    [
        b"From: postmaster@example.com\nX-Mailer: Internet Mail Connector\nSubject: Undeliverable: x\n\n"
        b"did not reach the following recipient(s):\n\nc=US;a= ;SMTP=; on \n  @ on x\n",
        b"From: postmaster@example.com\nX-MimeOLE: Produced By Microsoft Exchange V6.5\n\n"
        b"The following recipient(s) could not be reached:\n\n      a@b on x\n            < #5.1.1 smtp;>\n",
        b"Content-Language: en\nX-MS-Exchange-Message-Is-Ndr: \n\nError Details\nReported error: \nDSN generated by:\n",
        b"Content-Language: en\nX-MS-Exchange-Message-Is-Ndr: \n\nRecipient Address: <>\nError Details\n"
        b"Reported error: 550\n",
        b"From: x@example.com\nSubject: Undeliverable message\n\n------- Failure Reasons  --------\n"
        b"------- Returned Message --------\nTo: ,\n",
        b"From: MAILER-DAEMON@example.mxlogic.net\nX-MXL-Hash: 1\n\n"
        b"The addresses to which the message has not yet been delivered are:\n\n  <>\n    Delay reason:\n",
    ],
)
def test_broken_variants_never_raise(data: bytes) -> None:
    mail = parse_mail(data)
    for decoder in (exchange2003, exchange2007, mxlogic, notes, office365):
        if decoder.detect(mail):
            assert isinstance(decoder.decode(mail), list)
