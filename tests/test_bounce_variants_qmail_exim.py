"""Notice variants of qmail and Exim that the decoders once missed: qmail-remote's DATA failure, a reply without an
enhanced code, the clones' "Below the next line" and the header-only copy, the TLS and AUTH patches' accounts, the
envelope some patches write in front of the host, no connection at all; Exim's hidden recipient ("an undisclosed
address"), LMTP replies on their command's line, autoreply deliveries, the envelope sender of a notice sent to
errors_to, the malformed-address and frozen-message notices of moan.c (fixtures written for these tests, in each
MTA's wording of the fixed parts)."""

from __future__ import annotations

import pytest

from smtplens.bounce import Action, Kind, decode_bounce
from smtplens.bounce.decoders import exim, qmail
from smtplens.bounce.mime import parse_mail
from smtplens.model import Stage
from tests.bounce_fixtures import BOUNCES, decode_fixture


def test_qmail_data_command_failure_names_the_host() -> None:
    result = decode_fixture("qmail-variant-data-command.eml")
    assert (result.kind, result.decoder) == (Kind.BOUNCE, "qmail")
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reply_code, r.status) == ("bob@remote.test", Action.FAILED, "554", "5.7.1")
    assert r.stage is Stage.DATA and r.remote_host == "192.0.2.41"
    assert r.reporting_mta == "mx.example.test"


def test_qmail_reply_without_enhanced_code_keeps_its_code() -> None:
    result = decode_fixture("qmail-variant-code-only.eml")
    assert result.decoder == "qmail"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reply_code, r.status) == ("carol@remote.test", Action.FAILED, "552", None)
    assert r.stage is Stage.RCPT and r.remote_host == "192.0.2.52"
    assert r.diagnostic is not None and r.diagnostic.endswith("552 Error: disk quota exceeded")
    assert r.reason == "mailbox_full"


def test_qmail_clone_boundary_ends_the_report() -> None:
    result = decode_fixture("qmail-variant-next-line.eml")
    assert result.decoder == "qmail"
    (r,) = result.recipients  # the "<address>:" line of the returned message is not a recipient
    assert (r.recipient, r.reply_code, r.status, r.stage) == ("dave@remote.test", "550", "5.1.1", Stage.RCPT)
    assert r.diagnostic is not None and "Below" not in r.diagnostic and "minutes" not in r.diagnostic


def test_qmail_tls_auth_and_envelope_accounts() -> None:
    result = decode_fixture("qmail-variant-patched.eml")
    assert result.decoder == "qmail"
    tls, auth, envelope = result.recipients
    assert (tls.recipient, tls.action, tls.stage, tls.remote_host) == (
        "frank@tls.example.net",
        Action.FAILED,
        Stage.STARTTLS,
        "192.0.2.74",
    )
    assert tls.diagnostic is not None and tls.diagnostic.startswith("TLS connect failed")
    assert (auth.recipient, auth.stage, auth.remote_host) == ("grace@auth.example.net", Stage.AUTH, "192.0.2.75")
    assert (auth.reply_code, auth.status) == ("535", "5.7.8")
    assert (envelope.recipient, envelope.stage, envelope.remote_host) == ("heidi@remote.test", Stage.RCPT, "192.0.2.76")
    assert (envelope.reply_code, envelope.status, envelope.sender) == ("550", "5.1.1", "alice@example.test")
    assert envelope.diagnostic is not None and envelope.diagnostic.startswith("192.0.2.76 does not like recipient.")
    assert envelope.reason == "user_unknown"


def test_qmail_no_connection_is_the_connect_stage() -> None:
    (r,) = decode_fixture("qmail-variant-no-connection.eml").recipients
    assert (r.recipient, r.action, r.status, r.reply_code) == ("ivan@down.example.net", Action.FAILED, "4.4.1", None)
    assert r.stage is Stage.CONNECT and r.remote_host is None
    assert r.reason == "expired" and not r.hard_bounce


def test_exim_undisclosed_address_is_the_address_it_came_from() -> None:
    result = decode_fixture("exim-variant-undisclosed.eml")
    assert (result.kind, result.decoder) == (Kind.BOUNCE, "exim")
    (r,) = result.recipients
    assert (r.recipient, r.original_recipient, r.action) == ("team@example.net", None, Action.FAILED)
    assert (r.reply_code, r.status, r.stage, r.remote_host) == ("550", "5.1.1", Stage.RCPT, "mx.example.org")
    assert r.reason == "user_unknown"


def test_exim_lmtp_reply_on_the_command_line() -> None:
    result = decode_fixture("exim-variant-lmtp.eml")
    assert result.decoder == "exim"
    grace, heidi = result.recipients
    assert (grace.recipient, grace.action, grace.reply_code, grace.status, grace.stage) == (
        "grace@example.net",
        Action.FAILED,
        "550",
        "5.1.1",
        Stage.RCPT,
    )
    assert grace.diagnostic == "550 5.1.1 User unknown"
    assert (heidi.recipient, heidi.reply_code, heidi.status, heidi.stage) == (
        "heidi@example.net",
        "552",
        "5.2.2",
        Stage.END_OF_DATA,
    )
    assert heidi.diagnostic == "552 5.2.2 Mailbox full" and heidi.reason == "mailbox_full"


def test_exim_generated_addresses() -> None:
    result = decode_fixture("exim-variant-generated.eml")
    assert result.decoder == "exim"
    niaj, olivia = result.recipients
    assert (niaj.recipient, niaj.original_recipient) == ("niaj@example.org", "sales@example.net")
    assert (niaj.reply_code, niaj.status, niaj.stage, niaj.remote_host) == (
        "550",
        "5.1.1",
        Stage.RCPT,
        "mx.example.org",
    )
    # an autoreply ("mail to …") generated by a recipient's filter is that recipient's failure
    assert (olivia.recipient, olivia.action, olivia.stage) == ("olivia@example.net", Action.FAILED, None)
    assert olivia.diagnostic == 'Too many "Received" headers - suspected mail loop'


def test_exim_malformed_recipient_notice() -> None:
    result = decode_fixture("exim-variant-malformed.eml")
    assert (result.kind, result.decoder) == (Kind.BOUNCE, "exim")
    (r,) = result.recipients
    assert (r.recipient, r.action, r.diagnostic) == ("ivan@example..org", Action.FAILED, "domain missing or malformed")
    assert r.stage is None and r.remote_host is None and r.reply_code is None
    assert r.reason == "protocol_error"  # the address parser's words, as for "malformed address"


def test_exim_frozen_message_notice_is_delayed() -> None:
    result = decode_fixture("exim-variant-frozen.eml")
    assert (result.kind, result.decoder) == (Kind.BOUNCE, "exim")
    (r,) = result.recipients
    assert (r.recipient, r.action, r.diagnostic) == ("mallory@example.org", Action.DELAYED, "forced freeze")
    assert r.sender == "owner@example.net" and not r.hard_bounce


def test_exim_notice_to_errors_to_names_the_envelope_sender() -> None:
    result = decode_fixture("exim-variant-errors-to.eml")
    assert result.decoder == "exim"
    (r,) = result.recipients
    assert (r.recipient, r.action, r.reply_code, r.status) == ("peggy@example.org", Action.FAILED, "550", "5.1.1")
    assert (r.stage, r.remote_host) == (Stage.RCPT, "mx.example.org")
    assert r.sender == "news-bounces@lists.example.net"  # the envelope sender, not the From of the message


FIXTURE_NAMES = [
    "qmail-variant-data-command.eml",
    "qmail-variant-code-only.eml",
    "qmail-variant-next-line.eml",
    "qmail-variant-patched.eml",
    "qmail-variant-no-connection.eml",
    "exim-variant-undisclosed.eml",
    "exim-variant-lmtp.eml",
    "exim-variant-generated.eml",
    "exim-variant-malformed.eml",
    "exim-variant-frozen.eml",
    "exim-variant-errors-to.eml",
]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_broken_copies_never_raise(name: str) -> None:
    data = (BOUNCES / name).read_bytes()
    for cut in range(0, len(data), 41):
        for variant in (data[:cut], data[:cut] + b"\n  an undisclosed address\n    (generated from\n<>:\n", data[cut:]):
            assert decode_bounce(variant).kind in set(Kind)
            mail = parse_mail(variant)
            for module in (qmail, exim):
                if module.detect(mail):
                    module.decode(mail)


def test_ordinary_mail_with_these_sentences_is_not_detected() -> None:
    mail = parse_mail(
        b"From: alice@example.org\nTo: b@example.org\nSubject: hi\n\nA message that you sent contained one or more"
        b" recipient addresses that were\nincorrectly constructed:\n\n  x@example.org: oops\n"
    )
    assert not exim.detect(mail) and not qmail.detect(mail)
