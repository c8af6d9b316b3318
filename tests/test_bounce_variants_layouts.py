"""Layouts that the format modules of Sisimai 4.25 know and smtplens read wrongly, found by writing notices in
those layouts and reading them with both tools: each here as a fixture mail of our own."""

from __future__ import annotations

import pytest

from smtplens.bounce import Action
from tests.bounce_fixtures import decode_fixture

# fixture: (decoder, [(recipient, action, reason, status, reply code), …] in the order of the notice)
LAYOUTS = {
    # "mx1.terminal.example #550 4.4.7 QUEUE.Expired; … ##": the host that answered, then the reply
    "exchange2007-variant-host-hash.eml": (
        "exchange2007",
        [("crane-desk@terminal.example", Action.FAILED, "expired", "4.4.7", "550")],
    ),
    # SendGrid's "Action: expired", not an RFC 3464 value: a failure whose delivery expired
    "rfc3464-variant-action-expired.eml": (
        "rfc3464",
        [("pat@garden.example", Action.FAILED, "expired", "4.0.0", "421")],
    ),
    # the second recipient follows the first one's reply lines without a blank line between them
    "mxlogic-variant-two-recipients.eml": (
        "mxlogic",
        [
            ("assessor@county.test", Action.FAILED, "mailbox_full", "4.2.2", "452"),
            ("treasurer@county.test", Action.FAILED, "content_rejected", "5.7.1", "554"),
        ],
    ),
    # "Unable to deliver message to <a>" after the transcript names no second recipient
    "trendmicro-variant-summary-line.eml": (
        "trendmicro",
        [("picker@orchard.example", Action.FAILED, "user_unknown", "5.1.1", "550")],
    ),
    # an encoded subject; a "was not delivered to: … because: …" section per reason; Domino's French wording
    "domino-variant-encoded-subject.eml": (
        "domino",
        [
            ("renee@atelier.example", Action.FAILED, "user_unknown", None, None),
            ("sculpteur@atelier.example", Action.FAILED, "system_error", None, None),
        ],
    ),
    # each recipient below its own reason (the first in Notes' Japanese wording)
    "notes-variant-two-recipients.eml": (
        "notes",
        [
            ("matcha@kobo.example", Action.FAILED, "user_unknown", None, None),
            ("sencha@kobo.example", Action.FAILED, "routing_loop", None, None),
        ],
    ),
    # "He/Her is not DOMAIN user, …" opens the report; qmail's "(qmail N invoked for bounce)" trace stands for a
    # subject of its own; a recipient line may read "To:<address>:"
    "x4-variant-he-her.eml": (
        "x4",
        [
            ("glaze@pottery.example", Action.FAILED, "mailbox_full", "5.2.2", "552"),
            ("wheel@clay.example", Action.FAILED, "domain_invalid", "5.1.2", None),
        ],
    ),
    # ">>> Tanaka Yumi <a@b>": the recipient with a name
    "activehunter-variant-display-name.eml": (
        "activehunter",
        [("yumi.tanaka@ryokan.example", Action.FAILED, "mailbox_full", "5.2.2", "552")],
    ),
    # the reply in a "Diagnostic-Code: smtp; 552 5.2.2 …" line of X3's technical details
    "x3-variant-diagnostic-code.eml": (
        "x3",
        [("sommelier@vineyard.example", Action.FAILED, "mailbox_full", "5.2.2", "552")],
    ),
    # "Addressed To: a@b", then "a@b: [192.0.2.170], 550 a@b... No such user" (SurfControl's layout): the line with
    # the reply is the diagnostic; "A transcript of the attempts … follows" does not end the notice
    "plaintext-variant-named-again.eml": (
        "plaintext",
        [("registrar@museum.example", Action.FAILED, "user_unknown", None, "550")],
    ),
    # 1&1's Exim: "The following addresses\nfailed:" wrapped, each recipient at the margin, its reason below it
    "exim-variant-margin-recipients.eml": (
        "exim",
        [
            ("captain@island.example", Action.FAILED, "mailbox_full", None, None),
            ("purser@island.example", Action.FAILED, "user_unknown", None, None),
        ],
    ),
    # a router's error in a notice that says "This is a temporary error.": a delay
    "exim-variant-router-temporary.eml": (
        "exim",
        [("tenor@choir.example", Action.DELAYED, "undefined", None, None)],
    ),
    # sent through the carrier's relays (Received "… ezweb.ne.jp (EZweb Mail)"), X-SPASIGN: NG from its filter
    "kddi-variant-relayed-filtered.eml": (
        "kddi",
        [("hojicha@ezweb.example.jp", Action.FAILED, "content_rejected", None, None)],
    ),
    # "IMCEASMTP-a+40b@host SMTP=a@b on <date>"; "The recipient name is ambiguous" is the directory's fault
    "exchange2003-variant-imcea.eml": (
        "exchange2003",
        [
            ("archive@stacks.example", Action.FAILED, "relay_denied", "5.7.1", "550"),
            ("stacks@library.example", Action.FAILED, "system_error", None, None),
        ],
    ),
    # Sendmail's local user "baker", qualified by the address its reply quotes
    "sendmail-variant-local-recipient.eml": (
        "sendmail",
        [("baker@bakery.example", Action.FAILED, "user_unknown", "5.1.1", "550")],
    ),
    # Exchange Online gave up on "4.4.316 Connection refused": failed with a transient status is an expiry
    "rfc3464-variant-refused-expired.eml": (
        "rfc3464",
        [("member@marina.example", Action.FAILED, "expired", "4.4.316", None)],
    ),
    # PowerMTA's own category ("X-PowerMTA-BounceCategory: bad-mailbox") where the reply says nothing specific
    "rfc3464-variant-powermta-category.eml": (
        "rfc3464",
        [("reader@magazine.example", Action.FAILED, "user_unknown", "5.0.0", "554")],
    ),
    # Oracle Messaging Server's "Recipient address: / Reason: / Diagnostic code:" blocks, sent without the report
    "messagingserver-variant-no-report.eml": (
        "messagingserver",
        [
            ("archivist@archive.example", Action.FAILED, "user_unknown", "5.1.1", "550"),
            ("scans@archive.example", Action.FAILED, "mailbox_full", "5.2.2", "552"),
        ],
    ),
    # fml's loop notice is signed by the list's administrator: the list's own address is the recipient
    "fml-variant-loop.eml": (
        "fml",
        [("birds@lists.aviary.example", Action.FAILED, "not_rfc_compliant", None, None)],
    ),
    # Sendmail 5's "421 mx.example.tcp... Deferred" names a host: the returned message's recipient there
    "v5sendmail-variant-tcp-host.eml": (
        "v5sendmail",
        [("night-shift@telescope.example", Action.FAILED, "expired", None, "421")],
    ),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout(name: str) -> None:
    decoder, expected = LAYOUTS[name]
    result = decode_fixture(name)
    assert result.decoder == decoder
    got = [(r.recipient, r.action, r.reason, r.status, r.reply_code) for r in result.recipients]
    assert got == expected


def test_exchange_s_remote_host_on_the_line_of_its_reply() -> None:
    (r,) = decode_fixture("exchange2007-variant-host-hash.eml").recipients
    assert r.remote_host == "mx1.terminal.example"


def test_messaging_server_s_remote_system_is_the_remote_host() -> None:
    archivist, _ = decode_fixture("messagingserver-variant-no-report.eml").recipients
    assert (archivist.remote_host, archivist.diagnostic_type) == ("mx.archive.example", "smtp")


def test_each_mxlogic_recipient_keeps_its_own_reply() -> None:
    assessor, treasurer = decode_fixture("mxlogic-variant-two-recipients.eml").recipients
    assert treasurer.diagnostic is not None and "content policy" in treasurer.diagnostic
    assert assessor.diagnostic is not None and "content policy" not in assessor.diagnostic


def test_each_notes_recipient_keeps_its_own_reason_text() -> None:
    _, sencha = decode_fixture("notes-variant-two-recipients.eml").recipients
    assert sencha.diagnostic == "Message has exceeded maximum hop count"


def test_margin_recipient_s_reason_is_the_line_below_it() -> None:
    captain, _ = decode_fixture("exim-variant-margin-recipients.eml").recipients
    assert captain.diagnostic == "quota exceeded"


def test_x3_diagnostic_code_line_is_the_reply() -> None:
    (r,) = decode_fixture("x3-variant-diagnostic-code.eml").recipients
    assert r.diagnostic == "552 5.2.2 Mailbox over quota"


def test_expiries_and_delays_are_no_hard_bounces() -> None:
    for name in ("rfc3464-variant-action-expired.eml", "exim-variant-router-temporary.eml"):
        (r,) = decode_fixture(name).recipients
        assert not r.hard_bounce
