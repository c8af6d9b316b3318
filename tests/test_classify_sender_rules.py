"""Replies of the kinds that sending MTAs' own bounce rules sort (ZoneMTA's ``config/bounces.txt``, KumoMTA's
bounce classification samples), probed against the classifier; the texts here are our own, in the wordings
those rules match."""

from __future__ import annotations

import pytest

from smtplens import classify


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        # a named DNS blocklist outweighs the "policy reasons" it is given as
        (
            "554 Connection from 192.0.2.7 rejected for policy reasons. Host found in DNS blacklist at bl.example.org",
            "blocklisted",
        ),
        (
            "550 5.7.1 JunkMail rejected - mx.example.com [192.0.2.7]:25 is in an RBL, see https://rbl.example.org",
            "blocklisted",
        ),
        # the sending host judged, not the message
        ("553 5.7.1 <mx.example.com[192.0.2.7]>: Client host rejected: Your IP identified as spammer.", "blocklisted"),
        ("550 5.7.1 Message identified as spam", "spam_detected"),
        # a link in the message on a URI blocklist is the content's problem
        ("550 A URL in this email shop.example is listed on a URI blocklist, please remove it", "spam_detected"),
        ("553 Blocked Using Spam Pattern, Your Message May Contain The Spam Contents", "spam_detected"),
        # the content refused as spam is spam; refused without saying why, a content filter's refusal
        ("550 5.7.1 Message content rejected due to high spam score (BSF:SC0_EXAMPLE)", "spam_detected"),
        ("554 5.7.1 Message content rejected as spam", "spam_detected"),
        ("550 5.7.1 message content rejected", "content_rejected"),
        ("554 5.7.1 Message rejected because of unacceptable content. Spam score too high", "spam_detected"),
        ("554 5.7.1 Message rejected because of unacceptable content", "content_rejected"),
        ("550 User account not activated", "mailbox_disabled"),
        ("553 Sender Domain Resolve Fail", "sender_rejected"),
        ("550 Sender shop.example has no A, AAAA, or MX DNS records", "sender_rejected"),
        # Gmail: a full inbox that is also inactive is refused for good; a full one alone is retried
        (
            "552-5.2.2 The recipient's inbox is out of storage space and inactive. Please direct the recipient to"
            " https://support.google.com/mail/?p=OverQuotaPerm - gsmtp",
            "mailbox_disabled",
        ),
        (
            "452-4.2.2 The recipient's inbox is out of storage space. Please direct the recipient to"
            " https://support.google.com/mail/?p=OverQuotaTemp - gsmtp",
            "mailbox_full",
        ),
        ("550 5.2.1 Learn more at https://support.google.com/mail/?p=DisabledUser - gsmtp", "mailbox_disabled"),
        # Facebook's response codes say more than the 5.1.1 they come with
        (
            "550 5.1.1 RCP-P2 The attempted recipient's preferences prevent messages from being delivered.",
            "content_rejected",
        ),
        ("550 5.1.1 RCP-P1 The attempted recipient address does not exist.", "user_unknown"),
        ("450 4.1.1 RCP-T1 Try again later", "system_error"),
        ("550 5.2.1 Try again later. https://support.google.com/mail/?p=ReceivingRatePerm - gsmtp", "rate_limited"),
    ],
)
def test_wordings(reply: str, reason: str) -> None:
    assert classify(reply).reason == reason
