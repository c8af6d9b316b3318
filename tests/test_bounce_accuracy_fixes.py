"""Decoding fixes found through bench/accuracy_bounces.py, each with an own sample (no ../shared files).

- A host that never answered (``Status: 4.4.1``), reported as ``failed``: the reporting MTA retried until it
  gave up, so the delivery expired (the taxonomy's ``expired``); the same reply in a delay notice stays a
  network error.
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
