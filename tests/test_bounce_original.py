"""Which message a report is about: the Message-ID, Subject and sender of the returned original, wherever the
report puts it (an attached message or header part, a copy quoted in the notice's text, a text attachment) and,
for an automatic reply, the message it answers."""

from __future__ import annotations

import pytest

from smtplens.bounce import Kind, decode_bounce

QMAIL = b"""\
From: MAILER-DAEMON@mx.sender.example
To: alice@sender.example
Subject: failure notice
Message-ID: <notice-1@mx.sender.example>

Hi. This is the qmail-send program at mx.sender.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<bob@recipient.example>:
192.0.2.25 does not like recipient.
Remote host said: 550 5.1.1 <bob@recipient.example>: Recipient address rejected: User unknown
Giving up on 192.0.2.25.

--- Below this line is a copy of the message.

Return-Path: <alice@sender.example>
Received: (qmail 4242 invoked by uid 1000); 2 Mar 2026 10:00:00 -0000
From: Alice <alice@sender.example>
To: bob@recipient.example
Subject: Spring newsletter
Message-ID: <spring-2026@sender.example>
Date: Mon, 2 Mar 2026 10:00:00 +0000

Hello Bob.
"""


def test_a_copy_quoted_after_the_notice_names_the_message() -> None:
    (r,) = decode_bounce(QMAIL).recipients
    assert (r.recipient, r.message_id, r.subject, r.sender) == (
        "bob@recipient.example",
        "spring-2026@sender.example",
        "Spring newsletter",
        "alice@sender.example",
    )


def test_the_notice_s_own_lines_are_not_a_message() -> None:
    """A plain notice with report-like field lines ("Reporting-MTA:", "X-…:") and no copy of the message names
    no message."""
    mail = QMAIL.split(b"--- Below this line")[0] + b"Reporting-MTA: dns; mx.sender.example\nX-Queue-ID: 4242\n"
    (r,) = decode_bounce(mail).recipients
    assert (r.message_id, r.subject) == (None, None)


def test_a_quoted_notice_is_passed_over_for_the_message_it_returns() -> None:
    """A bounce of a bounce: the first quoted header is the inner notice's (a mailer daemon's, with the outer
    notice's subject); the message is the one after it."""
    inner = b"""\
--- Below this line is a copy of the message.

From: MAILER-DAEMON@relay.sender.example
Subject: failure notice
Message-ID: <inner-notice@relay.sender.example>

(the inner notice)

From: Alice <alice@sender.example>
Subject: Invoice 7
Message-ID: <invoice-7@sender.example>

Please find the invoice.
"""
    mail = QMAIL.split(b"--- Below this line")[0] + inner
    (r,) = decode_bounce(mail).recipients
    assert (r.message_id, r.subject) == ("invoice-7@sender.example", "Invoice 7")


def test_a_block_with_a_message_id_wins_over_a_summary() -> None:
    """A notice may sum the message up ("Subject: 'Invoice 7'") and attach its header as a text file: the
    attached header, which has the Message-ID, names it."""
    mail = b"""\
From: mailer-daemon@mx.sender.example
To: alice@sender.example
Subject: There was an error sending your mail
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain

We had trouble delivering your message. Full details follow:

Subject: 'Invoice 7'
Date: 'Mon, 2 Mar 2026 10:00:00 +0000'

The following recipients returned permanent errors: bob@recipient.example. Reason: SMTP Server <192.0.2.25>
refused to accept your message (RCPT), with the following error message: [550 5.1.1 User unknown]

--b1
Content-Type: text/plain; name="mailheaders.txt"
Content-Disposition: attachment; filename="mailheaders.txt"

From: Alice <alice@sender.example>
To: bob@recipient.example
Subject: Invoice 7
Message-ID: <invoice-7@sender.example>

--b1--
"""
    recipients = decode_bounce(mail).recipients
    assert recipients, "the notice names its recipient"
    assert {(r.message_id, r.subject) for r in recipients} == {("invoice-7@sender.example", "Invoice 7")}


@pytest.mark.parametrize("blank", [b"\n", b"\n\n", b" \n"])
def test_an_attached_message_after_a_stray_blank_line(blank: bytes) -> None:
    mail = (
        b"""\
From: Mail Delivery System <MAILER-DAEMON@mx.sender.example>
To: alice@sender.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b2"

--b2
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.sender.example

Final-Recipient: rfc822; bob@recipient.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--b2
Content-Type: message/rfc822

"""
        + blank
        + b"""\
From: Alice <alice@sender.example>
Subject: Invoice 7
Message-ID: <invoice-7@sender.example>

Please find the invoice.
--b2--
"""
    )
    (r,) = decode_bounce(mail).recipients
    assert (r.reason, r.message_id, r.subject) == ("user_unknown", "invoice-7@sender.example", "Invoice 7")


def test_an_automatic_reply_names_the_message_it_answers() -> None:
    """RFC 3834 section 3.1.6: In-Reply-To of the response carries the Message-ID of the message answered."""
    mail = b"""\
From: Bob <bob@recipient.example>
To: alice@sender.example
Subject: Out of office: Invoice 7
Auto-Submitted: auto-replied
In-Reply-To: <invoice-7@sender.example>
Message-ID: <auto-1@recipient.example>

I am away until Monday.
"""
    result = decode_bounce(mail)
    assert result.kind is Kind.AUTO_REPLY
    assert {r.message_id for r in result.recipients} == {"invoice-7@sender.example"}


def test_a_notice_that_returns_nothing_names_the_message_by_its_in_reply_to() -> None:
    """Some MTAs (Zoho, for one) mark their delivery notices as replies to the message they report on."""
    mail = b"""\
From: mailer-daemon@mail.example.net
To: alice@sender.example
Subject: Undelivered Mail Returned to Sender
In-Reply-To: <invoice-8@sender.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

This is a permanent error.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; carol@example.net
Action: failed
Status: 5.2.1
Diagnostic-Code: smtp; 550 5.2.1 The email account that you tried to reach is disabled.

--B--
"""
    (r,) = decode_bounce(mail).recipients
    assert (r.recipient, r.reason) == ("carol@example.net", "mailbox_disabled")
    assert r.message_id == "invoice-8@sender.example"
