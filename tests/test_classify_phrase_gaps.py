"""Server wordings the classifier did not know until it was probed with the phrases that another bounce decoder
(Sisimai) lists for each of its reasons and providers: each reply here, with a code that decides nothing by
itself, is now decided by its words (providers' codes and texts as their postmaster documentation gives them).
Where smtplens's taxonomy is finer than Sisimai's (a recipient's own allow-list is a ``policy_rejected``, not a
``filtered``), the reason is smtplens's."""

from __future__ import annotations

import pytest

from smtplens import classify

CASES = [
    ("421 Sender address blocked - https://community.mimecast.com/docs/DOC-1369#421", "policy_rejected"),
    ("550 Due to extended inactivity new mail is not currently being accepted for this mailbox.", "mailbox_disabled"),
    ("550 This account has been temporarily suspended", "mailbox_disabled"),
    ("550 maildir delivery failed: userdisk quota exceeded", "mailbox_full"),
    ("550 maildir delivery failed: domaindisk quota exceeded", "mailbox_full"),
    ("550 The account is exceeding their quota", "mailbox_full"),
    ("550 Message would be over the allowed quota", "mailbox_full"),
    ("550 Sorry, the mailbox exceeded the local limit", "mailbox_full"),
    ("550 There is not enough storage space in the mailbox", "mailbox_full"),
    ("550 user has exceeded the diskspace quota", "mailbox_full"),
    ("550 The mailbox of this user is full", "mailbox_full"),
    ("550 The recipient's mailbox does not have enough space", "mailbox_full"),
    ("550 Mail file size exceeds the maximum size allowed for mail delivery", "mailbox_full"),
    ("550 No MX or A records for example.org", "domain_invalid"),
    ("554 5.4.0 id=12345-01 - unable to relay message back to MTA", "system_error"),
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
    ("Mailaddress is administrativley disabled. (#5.2.1)", "mailbox_disabled"),
    ("550 all host address lookups failed permanently", "domain_invalid"),
    ("550 Requested action not taken: mailbox unavailable (not enough free space)", "system_full"),
    ("Unable to login into LDAP server, bad credentials (#4.4.3)", "system_error"),
    ("No valid route to remote MX", "network_error"),
    ("Address family mismatch on destination MXs", "network_error"),
    ("Temporary failure in MX lookup", "network_error"),
    ("550 NOT MEMBER article from alice@example.org", "policy_rejected"),
    ("550 you are not member of this list", "policy_rejected"),
    ("554 Duplicated Message-ID", "not_rfc_compliant"),
    ("553 5.3.0 <bob@example.org>... Recipient address no longer exists", "user_unknown"),
    ("450 user path no exist", "user_unknown"),
    ("550 5.7.1 Requested action not taken: mailbox not available", "user_unknown"),
    (
        "Failed to deliver to '<bob@example.org>' LOCAL module(account bob) reports: mail receiving disabled",
        "mailbox_disabled",
    ),
    ("Sorry the recipient quota limit is exceeded. This message is returned as an error.", "mailbox_full"),
    ("ErrMsg=Mailbox space not enough (space limit is 10240KB)", "mailbox_full"),
    ("422 User has exhausted allowed storage space", "mailbox_full"),
    ("552 recipient storage full, try again later", "mailbox_full"),
    ("551 bounce as<the destination mailbox <bob@example.org> is full> queue as 100.1.x", "mailbox_full"),
    ("422 Benutzer hat zuviele Mails auf dem Server", "mailbox_full"),
    ("550 Local user only or Authentication mechanism", "relay_denied"),
    ("550 relaying to <bob@example.org> prohibited by administrator", "relay_denied"),
    ("501 alice@example.org Sender email is not in my domain", "sender_rejected"),
    ("553 User refused to receive this mail.", "policy_rejected"),
    ("<bob@example.org>: The user does not accept email in non-Western (non-Latin) character sets.", "policy_rejected"),
    ("550 Error: MAIL FROM is mismatched with message header from address!", "policy_rejected"),
    ("550 Content reject. FAAAANsG60M9BmDT.1", "content_rejected"),
    ("553 Mail data refused by AISP, rule [169648].", "content_rejected"),
    ("Failed to deliver to '<bob@example.org>' Messages without To: fields are not accepted here", "content_rejected"),
    ("552 MessageWall: MIME/REJECT: Invalid structure", "not_rfc_compliant"),
    (
        "553 5.7.3 CONTENT REJECT:192.0.2.162.2011101001.XXYIvtHf:dspam check:4:http://mail.example.org/policy",
        "spam_detected",
    ),
    ("550 5.7.1 You're using a mass mailer, therefore you're bounced.", "spam_detected"),
    ("550 5.7.1 No mailbox found", "user_unknown"),
    ("550 ** No mail box available for this user **", "user_unknown"),
    ("550 BAD_RECIPIENT - see http://mail.example.org/undelivered.php?r=BAD_RECIPIENT", "user_unknown"),
    ("x-unix; The recipient mailbox has exceeded its disk space limit.", "mailbox_full"),
    ("554 5.7.1 Message Rejected Class=size limit=15728640 Subclass=reject size=18571048", "message_too_large"),
    (
        "Your mail to the following recipients could not be delivered because they are not accepting mail with "
        "attachments or embedded images:",
        "policy_rejected",
    ),
    (
        "550 Your server requires confirmation. Visit http://www.example.net/Whitelist.aspx?IP=192.0.2.1 to confirm "
        "this mail server.",
        "policy_rejected",
    ),
    ("451 4.0.0 I/O error", "system_error"),
    (
        "<bob@example.org>: can not open new email file errno=13 file=/home/vpopmail/domains/x/Maildir/tmp/1",
        "system_error",
    ),
    (
        "Recipient user name info (bob@example.org) not unique. Several matches found in Domino Directory.",
        "system_error",
    ),
    ("SMTP module(domain example.org) reports: connection with mx1.example.org is broken", "network_error"),
    (
        "554 5.0.0 MX list for example.org. points back to mail01.example.net 554 5.3.5 Local configuration error",
        "routing_loop",
    ),
]


@pytest.mark.parametrize(("reply", "reason"), CASES)
def test_wording_decides_the_reason(reply: str, reason: str) -> None:
    verdict = classify(reply)
    assert verdict.reason == reason
    assert any(e.kind == "phrase" for e in verdict.evidence), "decided by the words, not by the code"


# Providers' own wording and codes (from their postmaster documentation), with a host of the provider.
PROVIDER_CASES = [
    ("550 5.4.11 Agent generated message depth exceeded", "mail.protection.outlook.com", "routing_loop"),
    ("550 5.5.6 Invalid message content", "mail.protection.outlook.com", "not_rfc_compliant"),
    ("550 5.1.4 Destination mailbox address ambiguous", "mail.protection.outlook.com", "system_error"),
    ("550 5.2.14 Misconfigured forwarding address", "mail.protection.outlook.com", "system_error"),
    (
        "550 5.3.190 Journaling on-premises messages not supported when journaling archive is disabled",
        "mail.protection.outlook.com",
        "system_error",
    ),
    ("501 5.5.4 HELO / EHLO requires domain address", "mail.protection.outlook.com", "protocol_error"),
    (
        "550 5.1.6 Recipient addresses in single label domains not accepted",
        "mail.protection.outlook.com",
        "domain_invalid",
    ),
    (
        "451 4.7.652 The mail server [192.0.2.1] has exceeded the maximum number of connections.",
        "mail.protection.outlook.com",
        "rate_limited",
    ),
    (
        "451 4.4.4 Mail received as unauthenticated, incoming to a recipient domain configured in a hosted "
        "tenant which has no mail-enabled subscriptions.",
        "mail.protection.outlook.com",
        "domain_no_mail",
    ),
    ("550 5.7.3 Cannot achieve Exchange Server authentication", "mail.protection.outlook.com", "auth_required"),
    ("554 5.1.0 Sender Denied", "mail.example.org", "policy_rejected"),
    ("550 Journal messages past the expiration time", "eu-smtp-inbound-1.mimecast.com", "expired"),
    ("550 Suspected bounce attacks", "mx1.qq.com", "blocklisted"),
    ("550 Connection denied", "mx1.qq.com", "blocklisted"),
    ("451 The frequency of receiving messages is limited", "mx1.qq.com", "rate_limited"),
    (
        "553 5.7.2 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed. "
        "due to unresolvable RFC.5321 domain",
        "mta5.am0.yahoodns.net",
        "sender_rejected",
    ),
    ("554 esmtp no data before greeting", "cxr.mx.a.cloudfilter.net", "protocol_error"),
    ("552 attachment extension is forbidden", "cxr.mx.a.cloudfilter.net", "virus_detected"),
    ("452 message threshold exceeded", "cxr.mx.a.cloudfilter.net", "rate_limited"),
    (
        "421 4.7.40 Gmail requires that you add a DMARC record to your domain.",
        "gmail-smtp-in.l.google.com",
        "auth_failed",
    ),
    ("550 5.7.1 POL-P2 http://postmaster.facebook.com/response_codes#pol-p2", "mx.facebook.com", "blocklisted"),
    ("550 5.7.1 POL-P5 http://postmaster.facebook.com/response_codes#pol-p5", "mx.facebook.com", "virus_detected"),
    ("550 5.7.1 POL-P6 http://postmaster.facebook.com/response_codes#pol-p6", "mx.facebook.com", "spam_detected"),
    ("550 5.7.1 POL-P7 http://postmaster.facebook.com/response_codes#pol-p7", "mx.facebook.com", "auth_failed"),
    ("550 5.7.1 POL-P8 http://postmaster.facebook.com/response_codes#pol-p8", "mx.facebook.com", "policy_rejected"),
    ("552 5.3.4 MSG-P1 http://postmaster.facebook.com/response_codes#msg-p1", "mx.facebook.com", "message_too_large"),
    ("550 5.6.0 MSG-P3 http://postmaster.facebook.com/response_codes#msg-p3", "mx.facebook.com", "not_rfc_compliant"),
    ("452 4.5.3 MSG-T1 http://postmaster.facebook.com/response_codes#msg-t1", "mx.facebook.com", "too_many_recipients"),
    ("550 5.7.1 RCP-P3 http://postmaster.facebook.com/response_codes#rcp-p3", "mx.facebook.com", "content_rejected"),
    ("450 4.2.1 RCP-T4 http://postmaster.facebook.com/response_codes#rcp-t4", "mx.facebook.com", "mailbox_disabled"),
    ("550 5.2.2 INT-P7 http://postmaster.facebook.com/response_codes#int-p7", "mx.facebook.com", "mailbox_full"),
    ("421 4.7.0 CON-T2 http://postmaster.facebook.com/response_codes#con-t2", "mx.facebook.com", "rate_limited"),
    ("550 5.1.8 DNS-P1 http://postmaster.facebook.com/response_codes#dns-p1", "mx.facebook.com", "sender_rejected"),
    ("550 5.7.1 DNS-P3 http://postmaster.facebook.com/response_codes#dns-p3", "mx.facebook.com", "reverse_dns"),
]


@pytest.mark.parametrize(("reply", "host", "reason"), PROVIDER_CASES)
def test_a_provider_s_wording_decides_the_reason(reply: str, host: str, reason: str) -> None:
    verdict = classify(reply, remote_host=host)
    assert verdict.reason == reason
    assert any(e.kind == "phrase" for e in verdict.evidence), "decided by the words, not by the code"
