"""A real Postfix as the sending MTA against smtplens's server: what a sender does with each of our replies.

Each test starts a server (in-process, on a free port, with a policy pipeline) and a Postfix instance that relays
to it (``tests/integration/postfix_sender.py``), submits mail to Postfix and reads the outcome from Postfix's own
maillog and queue: a 4yz reply or a 421 defers the mail (``status=deferred``, kept in the queue and retried), a
5yz at RCPT or end of data bounces it (``status=bounced``, a non-delivery notice goes to the sender), a 5yz
*greeting* defers it too unless ``smtp_skip_5xx_greeting = no`` (and sends it to the next MX when there is one),
and greylisted mail gets through on the retry. STARTTLS and AUTH are Postfix's own (certificate verified, SASL
PLAIN). docs/server-senders.md quotes these log lines. Needs root and the Debian packages postfix and
libsasl2-modules (the AUTH cases).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.net import ServerConfig
from smtplens.server.pipeline import Pipeline, Policy
from smtplens.server.policies import AccessPolicy, AccessRule, GreylistPolicy, RelayPolicy
from smtplens.server.protocol import Limits, SessionConfig
from smtplens.server.session import Context
from tests.integration.postfix_sender import (
    SENDER_DOMAIN,
    SENDER_HOSTNAME,
    Delivery,
    PostfixSender,
    need_sasl_modules,
    postfix_sender,
)
from tests.integration.selfsigned import Certificate, make_certificate
from tests.integration.test_server_live import LiveServer

DOMAIN = "lab.test"
HOSTNAME = "mx.lab.test"
SENDER = f"alice@{SENDER_DOMAIN}"
RECIPIENT = f"bob@{DOMAIN}"
RELAY_REFUSED = "Relay access denied"


def message(recipient: str, subject: str) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {recipient}\r\nSubject: {subject}\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        f"\r\nHello from Postfix.\r\n"
    ).encode("ascii")


class RejectContentFor:
    """Answers ``decision`` at end of data for messages to ``recipient`` (a content filter's verdict)."""

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.END_OF_DATA})

    def __init__(self, recipient: str, decision: Decision) -> None:
        self.name = "content"
        self.recipient = recipient
        self.decision = decision

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        if any(rcpt.address == self.recipient for rcpt in context.envelope.recipients):
            return self.decision
        return None


Serve = Callable[..., LiveServer]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"), HOSTNAME)


@pytest.fixture
def serve(tmp_path: Path, certificate: Certificate) -> Iterator[Serve]:
    """Start a server whose pipeline is the relay rule and then ``policies``, stopped at the end of the test;
    ``tls=True`` offers STARTTLS with the test certificate, ``session`` sets other SessionConfig fields."""
    started: list[LiveServer] = []

    def make(*policies: Policy, tls: bool = False, **session: Any) -> LiveServer:
        config = ServerConfig(
            session=SessionConfig(hostname=HOSTNAME, tls_available=tls, **session),
            accepted_domains=frozenset({DOMAIN}),
            certificate=certificate.cert if tls else None,
            private_key=certificate.key if tls else None,
        )
        pipeline = Pipeline([RelayPolicy([DOMAIN]), *policies], hostname=HOSTNAME)
        server = LiveServer(tmp_path / f"data{len(started)}", config, pipeline.decide)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


Sender = Callable[..., PostfixSender]


@pytest.fixture
def sender(serve: Serve) -> Iterator[Sender]:
    """Start a Postfix instance relaying to ``server`` (``bind_address`` and main.cf ``settings`` as given),
    stopped at the end of the test, before the server."""
    with contextlib.ExitStack() as stack:

        def make(server: LiveServer, *, bind_address: str = "127.0.0.1", **settings: str) -> PostfixSender:
            return stack.enter_context(postfix_sender(server.port, bind_address=bind_address, **settings))

        yield make


def send(postfix: PostfixSender, recipient: str, status: str, subject: str = "postfix live") -> Delivery:
    """Submit one message to ``recipient`` and wait for its first ``status`` line in the maillog."""
    queue_id = postfix.submit(SENDER, [recipient], message(recipient, subject))
    deliveries = postfix.wait_for_status(queue_id, status)
    first = next(delivery for delivery in deliveries if delivery.status == status)
    assert first.recipient == recipient
    return first


def relay(server: LiveServer) -> str:
    return f"127.0.0.1[127.0.0.1]:{server.port}"


def said(reply: str, command: str) -> str:
    """The reason Postfix's smtp client logs for a reply to ``command``."""
    return f"host 127.0.0.1[127.0.0.1] said: {reply} (in reply to {command} command)"


# --- accepted mail ---------------------------------------------------------------------------------------------


def test_accepted_mail_is_sent_and_stored(serve: Serve, sender: Sender) -> None:
    server = serve()
    postfix = sender(server)
    delivery = send(postfix, RECIPIENT, "sent")
    [info] = server.messages()
    assert (delivery.relay, delivery.dsn) == (relay(server), "2.0.0")
    assert delivery.reason == f"250 2.0.0 Ok: queued as {info.queue_id}"
    assert (info.mail_from, info.recipients, info.helo) == (SENDER, (RECIPIENT,), SENDER_HOSTNAME)
    assert info.client_address == "127.0.0.1" and info.subject == "postfix live"
    assert "Mail queue is empty" in postfix.queue()


def test_dsn_parameters_and_utf8_addresses_are_passed_on(serve: Serve, sender: Sender) -> None:
    """Postfix relays RET, ENVID, NOTIFY and ORCPT (RFC 3461) and SMTPUTF8 (RFC 6531) because we advertise DSN
    and SMTPUTF8; an ORCPT with non-ASCII octets comes as xtext (``dbr+C3+B8d``) and is stored as UTF-8."""
    server = serve()
    postfix = sender(server)
    recipients = [RECIPIENT, f"dbrød@{DOMAIN}"]
    queue_id = postfix.submit(
        SENDER,
        recipients,
        message(RECIPIENT, "dsn and utf-8"),
        mail_options=["SMTPUTF8", "RET=HDRS", "ENVID=env+2B42"],
        rcpt_options=["NOTIFY=SUCCESS,FAILURE"],
    )
    deliveries = postfix.wait_for_status(queue_id, "sent")
    [info] = server.messages()
    assert {delivery.recipient for delivery in deliveries if delivery.status == "sent"} == set(recipients)
    assert info.recipients == tuple(recipients)
    mail = info.envelope["mail"]
    assert isinstance(mail, dict)
    assert (mail["ret"], mail["envid"], mail["smtputf8"]) == ("HDRS", "env+42", True)
    assert info.envelope["recipient_parameters"] == [
        {"address": address, "notify": ["SUCCESS", "FAILURE"], "orcpt": f"rfc822;{address}"} for address in recipients
    ]
    # we advertised DSN, so NOTIFY=SUCCESS became our job: Postfix sends no success notice of its own
    postfix.wait_for_log(f"{queue_id}: removed")
    assert not any(f"{queue_id}: sender delivery status notification" in line for line in postfix.log_lines())


def test_our_limits_size_bounces_unsent_and_extra_recipients_come_later(serve: Serve, sender: Sender) -> None:
    """SIZE (RFC 1870): Postfix reads our limit from EHLO and bounces a bigger message without sending it.
    Recipients over our limit get ``452 4.5.3`` (RFC 5321 section 4.5.3.1.10): deferred, sent in a later
    transaction."""
    server = serve(limits=Limits(message_size=2000, recipients=2))
    postfix = sender(server)
    big = postfix.submit(SENDER, [RECIPIENT], message(RECIPIENT, "big") + b"x" * 5000 + b"\r\n")
    three = [f"{name}@{DOMAIN}" for name in ("a", "b", "c")]
    many = postfix.submit(SENDER, three, message(RECIPIENT, "three recipients"))
    [refused] = postfix.wait_for_status(big, "bounced")
    assert refused.dsn == "5.3.4"
    assert refused.reason.endswith(" exceeds size limit 2000 of server 127.0.0.1[127.0.0.1]")
    deliveries = postfix.wait_for_status(many, "sent", count=3, flush=True)
    [deferred] = [delivery for delivery in deliveries if delivery.status == "deferred"]
    assert (deferred.dsn, deferred.reason) == ("4.5.3", said("452 4.5.3 Error: too many recipients", "RCPT TO"))
    stored = sorted(info.recipients for info in server.messages())
    assert stored == [(three[0], three[1]), (three[2],)]


# --- permanent refusals after the greeting: bounced, a notice to the sender ------------------------------------


def test_554_at_rcpt_bounces(serve: Serve, sender: Sender) -> None:
    server = serve(AccessPolicy(recipients=[AccessRule("gone@*")]))
    postfix = sender(server)
    gone = f"gone@{DOMAIN}"
    delivery = send(postfix, gone, "bounced")
    reply = f"554 5.7.1 <{gone}>: Recipient address rejected: Access denied"
    assert (delivery.relay, delivery.dsn, delivery.reason) == (relay(server), "5.7.1", said(reply, "RCPT TO"))
    postfix.wait_for_log(f"{delivery.queue_id}: sender non-delivery notification:")
    assert server.messages() == []
    assert "Mail queue is empty" in postfix.queue()


def test_relay_refusal_bounces(serve: Serve, sender: Sender) -> None:
    server = serve()
    postfix = sender(server)
    delivery = send(postfix, "victim@elsewhere.test", "bounced")
    reply = f"554 5.7.1 <victim@elsewhere.test>: {RELAY_REFUSED}"
    assert (delivery.dsn, delivery.reason) == ("5.7.1", said(reply, "RCPT TO"))
    assert server.messages() == []


def test_554_at_end_of_data_bounces(serve: Serve, sender: Sender) -> None:
    spam = f"spamtrap@{DOMAIN}"
    server = serve(RejectContentFor(spam, Decision.reject()))
    postfix = sender(server)
    delivery = send(postfix, spam, "bounced")
    reply = "554 5.7.1 Message content rejected"
    assert (delivery.dsn, delivery.reason) == ("5.7.1", said(reply, "end of DATA"))
    postfix.wait_for_log(f"{delivery.queue_id}: sender non-delivery notification:")
    assert server.messages() == []


# --- temporary refusals: deferred, kept in the queue and retried -----------------------------------------------


def test_421_at_rcpt_is_deferred(serve: Serve, sender: Sender) -> None:
    busy = Decision.defer(code="421", enhanced="4.7.0", text=f"{HOSTNAME} Error: too many connections", disconnect=True)
    server = serve(AccessPolicy(recipients=[AccessRule("busy@*", busy)]))
    postfix = sender(server)
    target = f"busy@{DOMAIN}"
    delivery = send(postfix, target, "deferred")
    reply = f"421 4.7.0 {HOSTNAME} Error: too many connections"
    assert (delivery.dsn, delivery.reason) == ("4.7.0", said(reply, "RCPT TO"))
    listing = postfix.queue()
    assert delivery.queue_id in listing and target in listing and reply in listing
    # postqueue -f: another attempt now, deferred again, the mail stays queued
    again = postfix.wait_for_status(delivery.queue_id, "deferred", count=2, flush=True)
    assert {attempt.reason for attempt in again} == {delivery.reason}
    assert server.messages() == []


def test_451_at_rcpt_and_at_end_of_data_are_deferred(serve: Serve, sender: Sender) -> None:
    later = Decision.defer(code="451", enhanced="4.3.0", text="Error: try again later")
    at_rcpt, at_data = f"later@{DOMAIN}", f"scan-later@{DOMAIN}"
    server = serve(AccessPolicy(recipients=[AccessRule(at_rcpt, later)]), RejectContentFor(at_data, Decision.defer()))
    postfix = sender(server)
    rcpt = send(postfix, at_rcpt, "deferred")
    data = send(postfix, at_data, "deferred")
    assert (rcpt.dsn, rcpt.reason) == ("4.3.0", said("451 4.3.0 Error: try again later", "RCPT TO"))
    assert (data.dsn, data.reason) == ("4.7.1", said("451 4.7.1 Message deferred: Try again later", "end of DATA"))
    listing = postfix.queue()
    assert rcpt.queue_id in listing and data.queue_id in listing
    assert server.messages() == []


# --- the greeting ----------------------------------------------------------------------------------------------

BLOCKED_SOURCE = "127.0.0.2"  # Postfix's smtp_bind_address; the server answers by client address
BUSY_SOURCE = "127.0.0.3"


def greeting_policy() -> AccessPolicy:
    busy = Decision.defer(
        code="421", enhanced="4.7.0", text=f"{HOSTNAME} Error: too many connections from {BUSY_SOURCE}"
    )
    return AccessPolicy(clients=[AccessRule(f"{BLOCKED_SOURCE}/32"), AccessRule(f"{BUSY_SOURCE}/32", busy)])


def test_554_greeting_is_deferred_because_postfix_skips_5xx_greetings(serve: Serve, sender: Sender) -> None:
    server = serve(greeting_policy())
    postfix = sender(server, bind_address=BLOCKED_SOURCE)
    delivery = send(postfix, RECIPIENT, "deferred")
    reply = f"554 5.7.1 <unknown[{BLOCKED_SOURCE}]>: Client host rejected: Access denied"
    # smtp_skip_5xx_greeting = yes (the default): a 5xx banner means "try the next MX", then defer, as 4.x.x
    assert (delivery.dsn, delivery.reason) == ("4.7.1", f"host 127.0.0.1[127.0.0.1] refused to talk to me: {reply}")
    assert reply in postfix.queue()
    assert server.messages() == []


def test_554_greeting_bounces_when_postfix_does_not_skip_5xx_greetings(serve: Serve, sender: Sender) -> None:
    server = serve(greeting_policy())
    postfix = sender(server, bind_address=BLOCKED_SOURCE, smtp_skip_5xx_greeting="no")
    delivery = send(postfix, RECIPIENT, "bounced")
    reply = f"554 5.7.1 <unknown[{BLOCKED_SOURCE}]>: Client host rejected: Access denied"
    assert (delivery.dsn, delivery.reason) == ("5.7.1", f"host 127.0.0.1[127.0.0.1] refused to talk to me: {reply}")
    postfix.wait_for_log(f"{delivery.queue_id}: sender non-delivery notification:")


def test_421_greeting_is_deferred(serve: Serve, sender: Sender) -> None:
    server = serve(greeting_policy())
    postfix = sender(server, bind_address=BUSY_SOURCE)
    delivery = send(postfix, RECIPIENT, "deferred")
    reply = f"421 4.7.0 {HOSTNAME} Error: too many connections from {BUSY_SOURCE}"
    assert (delivery.dsn, delivery.reason) == ("4.7.0", f"host 127.0.0.1[127.0.0.1] refused to talk to me: {reply}")
    assert server.messages() == []


# --- greylisting: deferred first, delivered by Postfix's own retry --------------------------------------------


def test_greylisted_mail_is_delivered_on_postfix_s_retry(serve: Serve, sender: Sender) -> None:
    server = serve(GreylistPolicy(delay=2.0))
    postfix = sender(server)
    queue_id = postfix.submit(SENDER, [RECIPIENT], message(RECIPIENT, "greylisted"))
    deliveries = postfix.wait_for_status(queue_id, "sent", flush=True)
    *deferred, sent = deliveries
    assert deferred, "the first attempt must be greylisted"
    first = deferred[0]
    greylisted = f"451 4.7.1 <{RECIPIENT}>: Recipient address rejected: Greylisted, please try again in 2 seconds"
    assert (first.status, first.dsn, first.reason) == ("deferred", "4.7.1", said(greylisted, "RCPT TO"))
    assert all(delivery.status == "deferred" for delivery in deferred)
    [info] = server.messages()
    assert sent.reason == f"250 2.0.0 Ok: queued as {info.queue_id}"
    assert (info.mail_from, info.recipients, info.subject) == (SENDER, (RECIPIENT,), "greylisted")


# --- STARTTLS and AUTH: Postfix as a client that verifies our certificate and logs in ----------------------------

USER, PASSWORD = "alice", "s3cret pass"


def check_credentials(user: str, password: str) -> bool:
    return (user, password) == (USER, PASSWORD)


def tls_client_settings(certificate: Certificate, password: str = PASSWORD) -> dict[str, str]:
    """Postfix's smtp client: TLS required, our test certificate the only trusted root, AUTH with a password."""
    return {
        "smtp_tls_security_level": "secure",
        "smtp_tls_CAfile": str(certificate.cert),
        "smtp_tls_secure_cert_match": HOSTNAME,
        "smtp_tls_loglevel": "1",
        "smtp_sasl_auth_enable": "yes",
        "smtp_sasl_password_maps": f"static:{{{USER}:{password}}}",
        "smtp_sasl_security_options": "noanonymous",
    }


def test_postfix_starttls_and_auth_deliver(serve: Serve, sender: Sender, certificate: Certificate) -> None:
    need_sasl_modules()
    server = serve(tls=True, credentials=check_credentials, require_auth=True)
    postfix = sender(server, **tls_client_settings(certificate))
    delivery = send(postfix, RECIPIENT, "sent")
    postfix.wait_for_log(f"Verified TLS connection established to {relay(server)}: TLSv1.")
    [info] = server.messages()
    assert delivery.reason == f"250 2.0.0 Ok: queued as {info.queue_id}"
    assert (info.tls, info.auth_identity, info.helo) == ("yes", USER, SENDER_HOSTNAME)


def test_postfix_defers_mail_when_its_password_is_refused(
    serve: Serve, sender: Sender, certificate: Certificate
) -> None:
    need_sasl_modules()
    server = serve(tls=True, credentials=check_credentials, require_auth=True)
    postfix = sender(server, **tls_client_settings(certificate, password="wrong"))
    delivery = send(postfix, RECIPIENT, "deferred")
    # smtp_sasl_auth_soft_bounce = yes (the default): a refused password is the sender's problem, retried
    reason = (
        "SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535 5.7.8 Authentication credentials invalid"
    )
    assert (delivery.dsn, delivery.reason) == ("4.7.8", reason)
    assert server.messages() == []


def test_require_tls_bounces_mail_from_a_sender_without_tls(serve: Serve, sender: Sender) -> None:
    server = serve(tls=True, require_tls=True)
    postfix = sender(server)  # smtp_tls_security_level = none: Postfix never says STARTTLS
    delivery = send(postfix, RECIPIENT, "bounced")
    assert (delivery.dsn, delivery.reason) == (
        "5.7.0",
        said("530 5.7.0 Must issue a STARTTLS command first", "MAIL FROM"),
    )
    assert server.messages() == []


# --- a second MX: which refusals send the mail there ----------------------------------------------------------


def fallback(server: LiveServer) -> str:
    """``smtp_fallback_relay``: the next MX Postfix tries after ``relayhost`` (as a backup MX would be)."""
    return f"[127.0.0.1]:{server.port}"


def test_554_greeting_sends_the_mail_to_the_next_mx(serve: Serve, sender: Sender) -> None:
    primary, backup = serve(greeting_policy()), serve()
    postfix = sender(primary, bind_address=BLOCKED_SOURCE, smtp_fallback_relay=fallback(backup))
    delivery = send(postfix, RECIPIENT, "sent")
    reply = f"554 5.7.1 <unknown[{BLOCKED_SOURCE}]>: Client host rejected: Access denied"
    postfix.wait_for_log(f"{delivery.queue_id}: host 127.0.0.1[127.0.0.1] refused to talk to me: {reply}")
    [info] = backup.messages()
    assert (delivery.relay, delivery.reason) == (relay(backup), f"250 2.0.0 Ok: queued as {info.queue_id}")
    assert primary.messages() == []


def test_4xx_at_rcpt_tries_the_next_mx_and_5xx_does_not(serve: Serve, sender: Sender) -> None:
    later = Decision.defer(code="451", enhanced="4.7.1", text="Error: try again later")
    refusals = AccessPolicy(recipients=[AccessRule("later@*", later), AccessRule("gone@*")])
    primary, backup = serve(refusals), serve()
    postfix = sender(primary, smtp_fallback_relay=fallback(backup))
    moved = send(postfix, f"later@{DOMAIN}", "sent")
    postfix.wait_for_log(f"{moved.queue_id}: {said('451 4.7.1 Error: try again later', 'RCPT TO')}")
    bounced = send(postfix, f"gone@{DOMAIN}", "bounced")
    assert bounced.relay == relay(primary)
    assert [info.recipients for info in backup.messages()] == [(f"later@{DOMAIN}",)]
    assert moved.relay == relay(backup) and primary.messages() == []
