"""Real delivery status notifications from a real Postfix, read back with ``smtplens bounce``.

A Postfix instance relays to smtplens's server (``tests/integration/postfix_sender.py``), which refuses some
recipients with the replies receiving MTAs give. Postfix writes its notice (an RFC 3464 multipart/report, RFC 6533
``message/global-delivery-status`` for an SMTPUTF8 message) to the sender, whose domain here is a Maildir of
Postfix's ``virtual`` delivery agent. The tests read that Maildir as a user would, with the library and with the
CLI: each recipient's reason, status, reply code, stage, remote host, action and hard-bounce flag, and the original
message's Message-ID and Subject. Needs root and the Debian package postfix.
"""

# The fixtures certificate, sender and serve come from the Postfix live tests; parameters of the same name use them.
# ruff: noqa: F811

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtplens.bounce import Action, Kind, Recipient
from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.policies import AccessPolicy, AccessRule
from tests.integration.conftest import free_port
from tests.integration.notices import PresetRefusals, cli_rows, summary, wait_for_notices
from tests.integration.notices import message as notice_test_message
from tests.integration.postfix_sender import SENDER_DOMAIN, SENDER_HOSTNAME, PostfixSender
from tests.integration.test_server_postfix_live import (  # noqa: F401
    DOMAIN,
    HOSTNAME,
    SENDER,
    RejectContentFor,
    Sender,
    Serve,
    certificate,
    sender,
    serve,
)

GONE, FULL, BOB, NEW, JOSE = (f"{name}@{DOMAIN}" for name in ("gone", "full", "bob", "new", "jos\u00e9"))
UNKNOWN = "Recipient address rejected: User unknown in virtual mailbox table"
REFUSALS = AccessPolicy(
    recipients=[
        AccessRule("gone@*", Decision.reject(code="550", enhanced="5.1.1", text=f"<{GONE}>: {UNKNOWN}")),
        AccessRule("full@*", Decision.defer(code="452", enhanced="4.2.2", text="Mailbox full, try again later")),
        AccessRule("new@*", Decision.defer(code="450", enhanced="4.7.1", text="Greylisted, see RFC 6647")),
        AccessRule("jos\u00e9@*", Decision.reject(code="550", enhanced="5.1.1", text=f"<{JOSE}>: {UNKNOWN}")),
    ]
)


@pytest.fixture
def mailbox() -> Iterator[Path]:
    """The directory the sender's Maildir is made in, owned by nobody (Postfix's virtual agent writes as that
    user; pytest's own temporary directories are closed to it)."""
    base = Path(tempfile.mkdtemp(prefix="smtplens-notices-"))
    nobody = pwd.getpwnam("nobody")
    base.chmod(0o755)
    os.chown(base, nobody.pw_uid, nobody.pw_gid)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def to_maildir(base: Path, **settings: str) -> dict[str, str]:
    """main.cf settings that deliver the sender domain's mail (the notices) into ``base/notices/``, a Maildir,
    instead of discarding it; ``settings`` are added."""
    nobody = pwd.getpwnam("nobody")
    return {
        "mydestination": "",
        "virtual_mailbox_domains": SENDER_DOMAIN,
        "virtual_transport": "virtual",
        "virtual_mailbox_base": str(base),
        "virtual_mailbox_maps": "static:notices/",
        "virtual_uid_maps": f"static:{nobody.pw_uid}",
        "virtual_gid_maps": f"static:{nobody.pw_gid}",
        "virtual_minimum_uid": "1",
        **settings,
    }


def notices(postfix: PostfixSender, base: Path, recipients: int) -> list[Recipient]:
    return wait_for_notices(base / "notices", recipients, lambda: "\n".join(postfix.log_lines()[-30:]))


def message(recipients: list[str], subject: str, message_id: str) -> bytes:
    return notice_test_message(SENDER, recipients, subject, message_id, "Hello from Postfix.")


def test_a_user_unknown_and_a_full_mailbox_of_one_message(serve: Serve, sender: Sender, mailbox: Path) -> None:
    """Refused at RCPT: 550 5.1.1 is a hard bounce; 452 4.2.2 of a message tried only once (queue lifetime 0)
    fails too, but the address stays good. Postfix names the failed ones in one notice or in two (as their
    deliveries end); the accepted one in none. Each names the original message and the remote host."""
    postfix = sender(serve(REFUSALS), **to_maildir(mailbox, maximal_queue_lifetime="0"))
    postfix.submit(SENDER, [GONE, BOB, FULL], message([GONE, BOB, FULL], "three recipients", "m1@sender.lab.test"))
    found = notices(postfix, mailbox, 2)
    assert [summary(r) for r in found] == [
        (FULL, "mailbox_full", Action.FAILED, "4.2.2", "452", Stage.RCPT, False),
        (GONE, "user_unknown", Action.FAILED, "5.1.1", "550", Stage.RCPT, True),
    ]
    for r in found:
        assert (r.kind, r.decoder, r.remote_host, r.reporting_mta) == (
            Kind.BOUNCE,
            "rfc3464",
            "127.0.0.1",
            SENDER_HOSTNAME,
        )
        assert (r.sender, r.message_id, r.subject) == (SENDER, "m1@sender.lab.test", "three recipients")
    assert found[1].diagnostic == f"550 5.1.1 <{GONE}>: {UNKNOWN}"


def test_spam_refused_at_end_of_data_with_the_headers_returned(serve: Serve, sender: Sender, mailbox: Path) -> None:
    """554 after the message: not the address's fault. RET=HDRS (RFC 3461): the notice returns only the
    original's header (text/rfc822-headers), which still names it."""
    server = serve(
        RejectContentFor(BOB, Decision.reject(code="554", enhanced="5.7.1", text="Message rejected as spam"))
    )
    postfix = sender(server, **to_maildir(mailbox))
    postfix.submit(SENDER, [BOB], message([BOB], "buy now", "m2@sender.lab.test"), mail_options=["RET=HDRS"])
    [r] = notices(postfix, mailbox, 1)
    assert summary(r) == (BOB, "spam_detected", Action.FAILED, "5.7.1", "554", Stage.END_OF_DATA, False)
    assert (r.message_id, r.subject, r.diagnostic) == (
        "m2@sender.lab.test",
        "buy now",
        "554 5.7.1 Message rejected as spam",
    )


def test_a_host_that_refuses_connections_expires_the_message(sender: Sender, serve: Serve, mailbox: Path) -> None:
    """Nobody listens on the relay's port: Postfix gives up (queue lifetime 0) with 4.4.1 and no reply of any
    server; the recipient's delivery expired, which says nothing about the address."""
    postfix = sender(serve(), **to_maildir(mailbox, maximal_queue_lifetime="0", relayhost=f"[127.0.0.1]:{free_port()}"))
    postfix.submit(SENDER, [BOB], message([BOB], "nobody home", "m3@sender.lab.test"))
    [r] = notices(postfix, mailbox, 1)
    assert summary(r) == (BOB, "expired", Action.FAILED, "4.4.1", None, None, False)
    assert "Connection refused" in (r.diagnostic or ""), r.diagnostic


def test_a_delay_warning_is_a_delayed_recipient(serve: Serve, sender: Sender, mailbox: Path) -> None:
    """Greylisted on every try: after delay_warning_time Postfix warns the sender that it is still trying
    (Action: delayed); a delay is never a hard bounce."""
    postfix = sender(serve(REFUSALS), **to_maildir(mailbox, delay_warning_time="1s"))
    postfix.submit(SENDER, [NEW], message([NEW], "first contact", "m4@sender.lab.test"))
    [r] = notices(postfix, mailbox, 1)
    assert summary(r) == (NEW, "greylisted", Action.DELAYED, "4.7.1", "450", Stage.RCPT, False)


def test_a_success_notice_is_not_a_bounce(serve: Serve, sender: Sender, mailbox: Path) -> None:
    """NOTIFY=SUCCESS (RFC 3461) to a server that does not take the DSN extension over: Postfix reports the
    message relayed."""
    postfix = sender(serve(), **to_maildir(mailbox, smtp_discard_ehlo_keywords="dsn"))
    postfix.submit(
        SENDER, [BOB], message([BOB], "did it arrive", "m5@sender.lab.test"), rcpt_options=["NOTIFY=SUCCESS"]
    )
    [r] = notices(postfix, mailbox, 1)
    assert (r.recipient, r.reason, r.kind, r.action, r.hard_bounce) == (
        BOB,
        "delivered",
        Kind.DELIVERY_NOTICE,
        Action.RELAYED,
        False,
    )


def test_an_smtputf8_message_gets_a_global_notice(serve: Serve, sender: Sender, mailbox: Path) -> None:
    """A message sent with SMTPUTF8 to a UTF-8 address: Postfix's notice is message/global-delivery-status (RFC
    6533) with a utf-8 address type; the recipient comes back as it was written."""
    postfix = sender(serve(REFUSALS), **to_maildir(mailbox))
    postfix.submit(SENDER, [JOSE], message([BOB], "hola", "m6@sender.lab.test"), mail_options=["SMTPUTF8"])
    [r] = notices(postfix, mailbox, 1)
    assert summary(r) == (JOSE, "user_unknown", Action.FAILED, "5.1.1", "550", Stage.RCPT, True)


def test_the_cli_reads_the_maildir(serve: Serve, sender: Sender, mailbox: Path) -> None:
    """``smtplens bounce MAILDIR --json``: one JSON object per recipient, with the file it came from."""
    postfix = sender(serve(REFUSALS), **to_maildir(mailbox))
    postfix.submit(SENDER, [GONE], message([GONE], "cli", "m7@sender.lab.test"))
    notices(postfix, mailbox, 1)
    [row] = cli_rows(mailbox / "notices")
    assert str(row["file"]).startswith(str(mailbox / "notices" / "new"))
    assert (row["recipient"], row["reason"], row["status"], row["hard_bounce"], row["message_id"]) == (
        GONE,
        "user_unknown",
        "5.1.1",
        True,
        "m7@sender.lab.test",
    )


def test_every_refusing_preset_reads_the_same_in_postfix_s_notice(serve: Serve, sender: Sender, mailbox: Path) -> None:
    """Each preset's reply (real servers' texts: Gmail, Outlook, Yahoo, Postfix) refuses one message; Postfix,
    trying once, bounces it and quotes the reply in its notice, folded and wrapped its own way. Read back, every
    recipient has the reason, status and reply code that the reply itself has, seen at its stage."""
    refusals = PresetRefusals(DOMAIN, HOSTNAME, SENDER_DOMAIN)
    postfix = sender(serve(refusals.policy()), **to_maildir(mailbox, maximal_queue_lifetime="0"))
    for envelope_sender, recipient, message_id in refusals.envelopes():
        postfix.submit(envelope_sender, [recipient], message([recipient], message_id, message_id))
    found = notices(postfix, mailbox, len(refusals.expected))
    assert {r.recipient: (r.reason, r.status, r.reply_code) for r in found} == refusals.expected
    assert {r.recipient: r.message_id for r in found} == refusals.message_ids()
