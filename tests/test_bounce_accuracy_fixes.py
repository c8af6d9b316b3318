"""Decoding fixes found through bench/accuracy_bounces.py, each with an own sample (no ../shared files).

- A host that never answered (``Status: 4.4.1``), reported as ``failed``: the reporting MTA retried until it
  gave up, so the delivery expired (the taxonomy's ``expired``); the same reply in a delay notice stays a
  network error.
- A recipient reported ``failed`` after transient replies whose reason is a hard one (``450 4.1.1 … User
  unknown`` until the queue lifetime ran out) is a hard bounce: the outcome is permanent, the reason decides.
- A diagnostic whose own code disagrees with the status's class ("554 4.4.7 Message expired … <421 4.4.2
  Connection timed out>") names the reply code of the reply it quotes with an enhanced code of that class.
- An mbox whose writer left out the blank line before a ``From `` separator line: a complete separator line
  (sender and date, RFC 4155) still starts the next mail; a bare ``From `` line in a body does not.
- Sendmail's verdict about a program an address was aliased to (``"|/usr/bin/…"... Service unavailable``) is the
  explanation of that address; "(expanded from: <address>)" alone is none.
- A charset name that is no name at all (a NUL byte in it) falls back to UTF-8 (found by the fuzz test).
"""

from __future__ import annotations

import json
from pathlib import Path

from smtplens.bounce import Action, decode_bounce, iter_mails

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"


def test_a_failed_report_of_a_host_that_never_answered_is_an_expired_delivery() -> None:
    (r,) = decode_bounce((FIXTURES / "postfix-expired-timeout.eml").read_bytes()).recipients
    assert r.recipient == "dave@quiet.example"
    assert r.action is Action.FAILED
    assert r.status == "4.4.1"
    assert r.reason == "expired"
    assert not r.hard_bounce
    assert r.verdict is not None and r.verdict.reason == "network_error"  # the diagnostic alone
    out = r.to_dict()
    assert out["reason"] == "expired" and out["sisimai"] == "expired"
    assert out["reason_title"] == "Delivery expired"


def test_the_same_timeout_in_a_delay_notice_stays_a_network_error() -> None:
    data = (FIXTURES / "postfix-expired-timeout.eml").read_bytes().replace(b"Action: failed", b"Action: delayed")
    (r,) = decode_bounce(data).recipients
    assert r.action is Action.DELAYED
    assert r.reason == "network_error"


def _timeout_fixture_with(status: bytes, diagnostic: bytes, action: bytes = b"failed") -> bytes:
    data = (FIXTURES / "postfix-expired-timeout.eml").read_bytes()
    start = data.index(b"Action: failed")
    end = data.index(b"\n\n", start)
    fields = b"Action: " + action + b"\nStatus: " + status + b"\nDiagnostic-Code: smtp; " + diagnostic
    return data[:start] + fields + data[end:]


def test_a_failed_recipient_whose_transient_replies_name_a_hard_reason_is_a_hard_bounce() -> None:
    reply = b"450 4.1.1 <dave@quiet.example>: Recipient address rejected: User unknown in virtual mailbox table"
    (r,) = decode_bounce(_timeout_fixture_with(b"4.1.1", reply)).recipients
    assert (r.action, r.reason, r.hard_bounce) == (Action.FAILED, "user_unknown", True)
    assert r.verdict is not None and not r.verdict.permanent  # the reply itself was transient
    (delayed,) = decode_bounce(_timeout_fixture_with(b"4.1.1", reply, b"delayed")).recipients
    assert (delayed.reason, delayed.hard_bounce) == ("user_unknown", False)
    (full,) = decode_bounce(_timeout_fixture_with(b"4.2.2", b"452 4.2.2 Mailbox full")).recipients
    assert (full.reason, full.hard_bounce) == ("mailbox_full", False)


def test_the_reply_code_is_the_one_a_diagnostic_quotes_with_the_status_s_class() -> None:
    quoted = b"554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.2 Connection timed out>"
    (r,) = decode_bounce(_timeout_fixture_with(b"4.4.7", quoted)).recipients
    assert (r.status, r.reply_code, r.reason) == ("4.4.7", "421", "expired")
    (bare,) = decode_bounce(_timeout_fixture_with(b"4.4.7", b"554 4.4.7 Message expired")).recipients
    assert (bare.status, bare.reply_code) == ("4.4.7", None)


def test_a_complete_separator_line_starts_a_mail_without_a_blank_line_before_it(tmp_path: Path) -> None:
    first = (FIXTURES / "postfix-dsn.eml").read_bytes().rstrip(b"\n")
    second = (FIXTURES / "postfix-expired-timeout.eml").read_bytes()
    mbox = tmp_path / "bounces.mbox"
    mbox.write_bytes(
        b"From MAILER-DAEMON  Tue Mar 10 09:15:02 2026\n"
        + first
        + b"\nFrom MAILER-DAEMON@relay.sender.example  Sat Mar 14 11:40:07 2026\n"
        + second
    )
    mails = list(iter_mails([mbox]))
    assert [name for name, _ in mails] == [f"{mbox}#1", f"{mbox}#2"]
    recipients = [r.recipient for _, data in mails if isinstance(data, bytes) for r in decode_bounce(data).recipients]
    assert recipients == ["bob@recipient.example", "dave@quiet.example"]


def test_a_bare_from_line_in_a_body_does_not_split_a_mail(tmp_path: Path) -> None:
    mbox = tmp_path / "one.mbox"
    mbox.write_bytes(
        b"From alice@sender.example  Tue Mar 10 09:15:02 2026\n"
        b"From: alice@sender.example\nSubject: notes\n\nline one\nFrom here on, the plan changes.\n\n"
        b"From alice@sender.example  Wed Mar 11 10:00:00 2026\nFrom: alice@sender.example\nSubject: two\n\nbody\n"
    )
    mails = list(iter_mails([mbox]))
    assert len(mails) == 2
    assert isinstance(mails[0][1], bytes) and b"From here on, the plan changes." in mails[0][1]


def test_fixture_json_is_serialisable() -> None:
    (r,) = decode_bounce((FIXTURES / "postfix-expired-timeout.eml").read_bytes()).recipients
    assert json.loads(json.dumps(r.to_dict()))["message_id"] == "notes-0309@sender.example"


def test_a_sendmail_verdict_about_a_program_explains_the_address_it_was_aliased_from() -> None:
    """Sendmail names a local delivery to a program quoted ("|/usr/bin/…"... Service unavailable), not as an
    address; the report's only recipient takes that verdict, also when its DSN fields stand in the text."""
    result = decode_bounce((FIXTURES / "sendmail-program.eml").read_bytes())
    (r,) = result.recipients
    assert result.decoder == "sendmail"
    assert r.recipient == "frank@school.example"
    assert r.diagnostic == "554 Service unavailable"
    assert r.status == "5.5.0" and r.reply_code == "554"
    assert r.reason == "service_unavailable"


def test_a_charset_name_with_a_nul_byte_falls_back_instead_of_raising() -> None:
    data = (
        b"From: MAILER-DAEMON@mx.example.org\nSubject: Delivery status notification\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; boundary="b"\n\n--b\nContent-Type: text/plain; charset="utf-8\x00x"\n\n'
        b"Delivery to the following recipients failed.\n--b\nContent-Type: message/delivery-status\n\n"
        b"Final-Recipient: rfc822; gina@example.net\nAction: failed\nStatus: 5.1.1\n--b--\n"
    )
    (r,) = decode_bounce(data).recipients
    assert r.recipient == "gina@example.net"


def test_a_diagnostic_code_cut_to_the_first_line_is_completed_from_the_transcript() -> None:
    """Sendmail writes only the first line of a multi-line reply into Diagnostic-Code; the transcript has all."""
    from smtplens.bounce.decoders import rfc3464
    from smtplens.bounce.mime import parse_mail

    data = (FIXTURES / "sendmail-truncated-diagnostic.eml").read_bytes()
    (f,) = rfc3464.decode(parse_mail(data))
    assert f.diagnostic is not None
    assert f.diagnostic.startswith("552-5.7.0 This message was blocked")
    assert f.diagnostic.endswith("attachment content guidelines. x1si2 - gsmtp")
    (r,) = decode_bounce(data).recipients
    assert r.reason == "virus_detected"  # what the whole reply says; its first line alone said less
    assert (r.status, r.reply_code) == ("5.7.0", "552")


def test_a_first_line_without_a_transcript_is_kept() -> None:
    from smtplens.bounce.decoders import rfc3464
    from smtplens.bounce.mime import parse_mail

    data = (FIXTURES / "sendmail-truncated-diagnostic.eml").read_bytes().replace(b"<<< ", b"")
    (f,) = rfc3464.decode(parse_mail(data))
    assert f.diagnostic == "552-5.7.0 This message was blocked because its content presents a potential"


def test_a_deferral_in_a_sendmail_5_report_of_a_message_queued_too_long_is_expired() -> None:
    data = (FIXTURES / "v5sendmail-expired.eml").read_bytes()
    result = decode_bounce(data)
    (r,) = result.recipients
    assert (result.decoder, r.recipient, r.reply_code) == ("v5sendmail", "carol@quiet.example.com", "421")
    assert r.reason == "expired"
    assert not r.hard_bounce
    (r,) = decode_bounce(data.replace(b"Cannot send message for 5 days", b"Warning: message delayed")).recipients
    assert r.reason == "service_unavailable"  # a deferral alone says nothing of a queue lifetime


def test_an_mbox_with_old_mac_line_ends_is_split_into_its_mails(tmp_path: Path) -> None:
    first = (FIXTURES / "postfix-dsn.eml").read_bytes().rstrip(b"\n")
    second = (FIXTURES / "postfix-expired-timeout.eml").read_bytes()
    lf = b"From MAILER-DAEMON  Thu Jul  2 12:05:05 2020\n" + first + b"\n\n"
    lf += b"From MAILER-DAEMON  Thu Jul  2 12:06:05 2020\n" + second
    path = tmp_path / "cr.mbox"
    path.write_bytes(lf.replace(b"\r\n", b"\n").replace(b"\n", b"\r"))
    items = list(iter_mails([str(path)]))
    assert [name.rsplit("#", 1)[1] for name, _ in items] == ["1", "2"]
    assert all(isinstance(data, bytes) and decode_bounce(data).recipients for _, data in items)


def test_a_plain_text_bounce_in_no_known_format_is_read_line_by_line() -> None:
    """Smail's "Failed addresses follow:" list: each address with its reason; the returned message is not read."""
    result = decode_bounce((FIXTURES / "plaintext-smail.eml").read_bytes())
    assert result.decoder == "plaintext"
    assert [(r.recipient, r.reason) for r in result.recipients] == [
        ("bob@nowhere.example.com", "domain_invalid"),
        ("carol@example.net", "user_unknown"),
    ]
    assert result.recipients[0].diagnostic == "bob@nowhere.example.com ... unknown host"


def test_the_plain_text_reading_needs_the_signs_of_a_bounce() -> None:
    data = (FIXTURES / "plaintext-smail.eml").read_bytes()
    data = data.replace(b"<MAILER-DAEMON@relay.example.net>", b"<bob@relay.example.net>")
    data = data.replace(b"mail failed, returning to sender", b"hello again")
    result = decode_bounce(data)
    assert result.kind.value == "not_bounce" and result.recipients == ()


def test_an_address_alone_on_its_line_takes_the_next_line_as_its_reason() -> None:
    data = (
        b"From: Mail Delivery Subsystem <postmaster@mx.example.jp>\nTo: ann@example.org\n"
        b"Subject: Returned mail\n\nThe following address failed:\n  <erin@example.jp>\n"
        b"  mailbox is full\n"
    )
    (r,) = decode_bounce(data).recipients
    assert (r.recipient, r.reason) == ("erin@example.jp", "mailbox_full")
