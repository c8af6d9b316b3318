"""Real delivery status notifications from a real Exim, read back with ``smtplens bounce``.

Exim (``tests/integration/exim_sender.py``) sends to smtplens's server, which refuses recipients as receiving
MTAs do; Exim's notice (its text part, "This message was created automatically by mail delivery software.", and
an RFC 3464 report with a copy of the message) is delivered to the sender's Maildir, which the tests read with the
library and the CLI. Needs root and the unpacked Exim of ``.ci/run``.
"""

# The fixtures certificate and serve come from the Postfix live tests; parameters of the same name use them.
# ruff: noqa: F811

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import pytest

from smtplens.bounce import Action, Kind
from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.policies import AccessPolicy, AccessRule
from tests.integration.conftest import free_port
from tests.integration.exim_sender import SENDER_DOMAIN, EximSender, exim_sender
from tests.integration.notices import PresetRefusals, cli_rows, summary
from tests.integration.notices import message as notice_test_message
from tests.integration.test_server_postfix_live import (  # noqa: F401
    DOMAIN,
    HOSTNAME,
    RejectContentFor,
    Serve,
    certificate,
    serve,
)

SENDER = f"alice@{SENDER_DOMAIN}"
GONE, FULL, BOB, NEW = (f"{name}@{DOMAIN}" for name in ("gone", "full", "bob", "new"))
UNKNOWN = "Recipient address rejected: User unknown in virtual mailbox table"
REFUSALS = AccessPolicy(
    recipients=[
        AccessRule("gone@*", Decision.reject(code="550", enhanced="5.1.1", text=f"<{GONE}>: {UNKNOWN}")),
        AccessRule("full@*", Decision.defer(code="452", enhanced="4.2.2", text="Mailbox full, try again later")),
    ]
)

Exim = Callable[..., EximSender]


@pytest.fixture
def exim() -> Iterator[Exim]:
    """Make Exim instances relaying to a port; each is removed at the end of the test."""
    with contextlib.ExitStack() as stack:
        yield lambda port, **settings: stack.enter_context(exim_sender(port, **settings))


def message(recipients: list[str], subject: str, message_id: str) -> bytes:
    return notice_test_message(SENDER, recipients, subject, message_id, "Hello from Exim.")


def test_a_user_unknown_and_a_full_mailbox_of_one_message(serve: Serve, exim: Exim) -> None:
    """Refused at RCPT: 550 5.1.1 is a hard bounce; 452 4.2.2 with no retry rule left fails too, but the address
    stays good. Exim's report says 5.0.0 for both; the remote server's own codes are more precise. The accepted
    recipient is in no notice; each failed one names the original message and the remote host."""
    sender = exim(serve(REFUSALS).port)
    sender.send(SENDER, [GONE, BOB, FULL], message([GONE, BOB, FULL], "three recipients", "e1@sender.lab.test"))
    found = sender.notices(2)
    assert [summary(r) for r in found] == [
        (FULL, "mailbox_full", Action.FAILED, "4.2.2", "452", Stage.RCPT, False),
        (GONE, "user_unknown", Action.FAILED, "5.1.1", "550", Stage.RCPT, True),
    ]
    for r in found:
        assert (r.kind, r.decoder, r.remote_host) == (Kind.BOUNCE, "exim", "127.0.0.1")
        assert (r.sender, r.message_id, r.subject) == (SENDER, "e1@sender.lab.test", "three recipients")
    assert found[1].diagnostic == f"550 5.1.1 <{GONE}>: {UNKNOWN}"


def test_spam_refused_at_end_of_data(serve: Serve, exim: Exim) -> None:
    server = serve(
        RejectContentFor(BOB, Decision.reject(code="554", enhanced="5.7.1", text="Message rejected as spam"))
    )
    sender = exim(server.port)
    sender.send(SENDER, [BOB], message([BOB], "buy now", "e2@sender.lab.test"))
    [r] = sender.notices(1)
    assert summary(r) == (BOB, "spam_detected", Action.FAILED, "5.7.1", "554", Stage.END_OF_DATA, False)
    assert (r.message_id, r.diagnostic) == ("e2@sender.lab.test", "554 5.7.1 Message rejected as spam")


def test_a_host_that_refuses_connections_expires_the_message(exim: Exim) -> None:
    """Nobody listens: Exim gives up with only "retry timeout exceeded" (no server ever answered); the delivery
    expired, which says nothing about the address."""
    sender = exim(free_port())
    sender.send(SENDER, [BOB], message([BOB], "nobody home", "e3@sender.lab.test"))
    [r] = sender.notices(1)
    assert (r.recipient, r.reason, r.action, r.reply_code, r.hard_bounce) == (
        BOB,
        "expired",
        Action.FAILED,
        None,
        False,
    )
    assert r.message_id == "e3@sender.lab.test"


def test_the_cli_reads_exim_s_maildir(serve: Serve, exim: Exim) -> None:
    sender = exim(serve(REFUSALS).port)
    sender.send(SENDER, [GONE], message([GONE], "cli", "e4@sender.lab.test"))
    sender.notices(1)
    [row] = cli_rows(sender.maildir)
    assert (row["decoder"], row["recipient"], row["reason"], row["status"], row["hard_bounce"]) == (
        "exim",
        GONE,
        "user_unknown",
        "5.1.1",
        True,
    )


def test_every_refusing_preset_reads_the_same_in_exim_s_notice(serve: Serve, exim: Exim) -> None:
    """As with Postfix: each preset's reply refuses one message, and Exim's notice, read back, gives every
    recipient the reason, status and reply code of the reply itself."""
    refusals = PresetRefusals(DOMAIN, HOSTNAME, SENDER_DOMAIN)
    sender = exim(serve(refusals.policy()).port)
    for envelope_sender, recipient, message_id in refusals.envelopes():
        sender.send(envelope_sender, [recipient], message([recipient], message_id, message_id))
    found = sender.notices(len(refusals.expected))
    assert {r.recipient: (r.reason, r.status, r.reply_code) for r in found} == refusals.expected
    assert {r.recipient: r.message_id for r in found} == refusals.message_ids()


def test_a_delay_warning_is_a_delayed_recipient(serve: Serve, exim: Exim) -> None:
    """Greylisted on every try, with retries allowed for an hour: once the message is older than
    ``delay_warning``, Exim's next queue run warns the sender (Action: delayed); a delay is never a hard bounce."""
    greylist = Decision.defer(code="450", enhanced="4.7.1", text="Greylisted, see RFC 6647")
    server = serve(AccessPolicy(recipients=[AccessRule("new@*", greylist)]))
    sender = exim(server.port, retry="* * F,1h,1s", main="delay_warning = 1s")
    sender.send(SENDER, [NEW], message([NEW], "first contact", "e5@sender.lab.test"))
    time.sleep(1.5)  # older than delay_warning
    sender.run_queue()
    [r] = sender.notices(1)
    assert summary(r) == (NEW, "greylisted", Action.DELAYED, "4.7.1", "450", Stage.RCPT, False)
    assert (r.decoder, r.reporting_mta, r.message_id) == ("exim", f"exim.{SENDER_DOMAIN}", "e5@sender.lab.test")
