"""Server wordings the classifier did not know until it was probed with the phrases that another bounce decoder
(Sisimai) lists for each of its reasons: each reply here, with a code that decides nothing by itself, is now
decided by its words. Where smtplens's taxonomy is finer than Sisimai's (a recipient's own allow-list is a
``policy_rejected``, not a ``filtered``), the reason is smtplens's."""

from __future__ import annotations

import pytest

from smtplens import classify

CASES = [
    ("550 Due to extended inactivity new mail is not currently being accepted for this mailbox.", "mailbox_disabled"),
    ("550 This account has been temporarily suspended", "mailbox_disabled"),
    ("550 maildir delivery failed: userdisk quota exceeded", "mailbox_full"),
    ("550 maildir delivery failed: domaindisk quota exceeded", "mailbox_full"),
    ("550 The account is exceeding their quota", "mailbox_full"),
    ("550 Message would be over the allowed quota", "mailbox_full"),
    ("550 Sorry, the mailbox exceeded the local limit", "mailbox_full"),
    ("550 There is not enough storage space in the mailbox", "mailbox_full"),
    ("550 user has exceeded the diskspace quota", "mailbox_full"),
    ("550 Account disabled temporarly for exceeding receiving limits", "mailbox_full"),
    ("550 Denied [BounceDeny] (Mode: normal)", "sender_rejected"),
    ("550 Error: no third-party DSNs", "sender_rejected"),
    ("550 Denied by SECUMAIL valid-address-filter", "sender_rejected"),
    ("550 From: domain is invalid. Please provide a valid From:", "sender_rejected"),
    ("550 RFC 1035 violation: recursive CNAME records for example.org", "sender_rejected"),
    ("550 Domain example.org is a dead domain", "sender_rejected"),
    ("550 5.7.1 Sender IP 192.0.2.1 is not allowed to send mail from example.org", "auth_failed"),
    ("550 Invalid IP for sending mail of domain example.org", "auth_failed"),
    ("550 Rejected because the sending MTA or the sender has not passed validation", "auth_failed"),
    ("550 5.7.1 Cannot resolve your address.", "reverse_dns"),
    ("550 unresolvable relay host name", "reverse_dns"),
    ("550 Extreme bad IP profile", "blocklisted"),
    ("550 We are not currently accepting mail from your IP address", "blocklisted"),
    ("554 Server access forbidden by your IP 192.0.2.1", "blocklisted"),
    ("550 No access from mail server 192.0.2.1", "blocklisted"),
    ("550 Your access IP 192.0.2.1 has been rejected", "blocklisted"),
    ("550 Too many unwanted messages have been sent from the following IP address above: 192.0.2.1", "bad_reputation"),
    ("550 Reject bulk.advertising", "spam_detected"),
    ("550 Rejected - bulk email", "spam_detected"),
    ("554 5.7.1 This message was rejected by Recurrent Pattern Detection System", "spam_detected"),
    ("550 Rejecting mail content", "content_rejected"),
    ("550 Message rejected because of unacceptable content", "content_rejected"),
    ("554 Sorry, the recipient is only accepting mail from specific email addresses", "policy_rejected"),
    ("554 The recipient is not accepting mail with attachments or embedded images", "policy_rejected"),
    (
        "550 Not delivered: the sender isn't on the recipient's list of senders to accept mail from",
        "policy_rejected",
    ),
    ("550 5.7.1 The sender's email address is on SenderFilterConfig list", "policy_rejected"),
    ("550 Rule imposed mailbox access for user@example.org refused", "policy_rejected"),
    ("550 Message rejected due to user rules", "policy_rejected"),
    ("550 User refuses to receive this mail", "policy_rejected"),
    (
        "550 We failed to deliver mail because the following address recipient id refuse to receive mail",
        "policy_rejected",
    ),
    ("550 Sender not pre-approved", "policy_rejected"),
    ("550 This account is protected by a challenge-response filter", "policy_rejected"),
    ("550 We do not accept messages containing images or other attachments", "policy_rejected"),
    ("550 You have exceeded the allowable number of posts without solving a captcha", "policy_rejected"),
    ("550 not local host example.org, not a gateway", "relay_denied"),
    (
        "550 This mail server requires authentication when attempting to send to a non-local e-mail address",
        "relay_denied",
    ),
    ("550 Specified domain is not allowed", "relay_denied"),
    ("550 We don't handle mail for example.org", "relay_denied"),
    ("554 5.4.0 DNS records for the destination computer could not be found", "network_error"),
    ("550 5.4.7 Message could not be delivered for 5 days", "expired"),
    ("550 5.7.1 Learn more at https://support.google.com/mail/?p=RfcMessageNonCompliant", "not_rfc_compliant"),
]


@pytest.mark.parametrize(("reply", "reason"), CASES)
def test_wording_decides_the_reason(reply: str, reason: str) -> None:
    verdict = classify(reply)
    assert verdict.reason == reason
    assert any(e.kind == "phrase" for e in verdict.evidence), "decided by the words, not by the code"
