"""Layouts that the format modules of Sisimai 4.25 know and smtplens read wrongly, found by writing notices in
those layouts and reading them with both tools: each here as a fixture mail of our own."""

from __future__ import annotations

from smtplens.bounce import Action
from tests.bounce_fixtures import decode_fixture


def test_exchange_s_remote_host_on_the_line_of_its_reply() -> None:
    """ "mx1.terminal.example #550 4.4.7 QUEUE.Expired; … ##": the host that answered, then the reply."""
    result = decode_fixture("exchange2007-variant-host-hash.eml")
    (r,) = result.recipients
    assert (result.decoder, r.recipient, r.reason, r.status, r.reply_code) == (
        "exchange2007",
        "crane-desk@terminal.example",
        "expired",
        "4.4.7",
        "550",
    )
    assert r.remote_host == "mx1.terminal.example"


def test_sendgrid_s_action_expired_is_a_failure_that_expired() -> None:
    (r,) = decode_fixture("rfc3464-variant-action-expired.eml").recipients
    assert (r.recipient, r.action, r.reason, r.hard_bounce) == ("pat@garden.example", Action.FAILED, "expired", False)


def test_mxlogic_recipients_without_a_blank_line_between_them() -> None:
    assessor, treasurer = decode_fixture("mxlogic-variant-two-recipients.eml").recipients
    assert (assessor.recipient, assessor.reason, assessor.reply_code) == ("assessor@county.test", "mailbox_full", "452")
    assert (treasurer.recipient, treasurer.reply_code) == ("treasurer@county.test", "554")
    assert treasurer.diagnostic is not None and "content policy" in treasurer.diagnostic
    assert assessor.diagnostic is not None and "content policy" not in assessor.diagnostic


def test_interscan_s_summary_line_names_no_second_recipient() -> None:
    (r,) = decode_fixture("trendmicro-variant-summary-line.eml").recipients
    assert (r.recipient, r.reason, r.reply_code) == ("picker@orchard.example", "user_unknown", "550")


def test_domino_with_an_encoded_subject_and_a_section_per_reason() -> None:
    result = decode_fixture("domino-variant-encoded-subject.eml")
    renee, sculpteur = result.recipients
    assert result.decoder == "domino"
    assert (renee.recipient, renee.reason) == ("renee@atelier.example", "user_unknown")  # French "non répertorié"
    assert (sculpteur.recipient, sculpteur.reason) == ("sculpteur@atelier.example", "system_error")


def test_notes_gives_each_recipient_the_reason_above_it() -> None:
    matcha, sencha = decode_fixture("notes-variant-two-recipients.eml").recipients
    assert (matcha.recipient, matcha.reason) == ("matcha@kobo.example", "user_unknown")  # Japanese Notes wording
    assert (sencha.recipient, sencha.reason) == ("sencha@kobo.example", "routing_loop")
    assert sencha.diagnostic == "Message has exceeded maximum hop count"


def test_a_qmail_clone_s_he_her_opening_trace_and_to_prefix() -> None:
    """ "He/Her is not DOMAIN user, …" opens the report; qmail's "(qmail N invoked for bounce)" trace stands for a
    subject of its own; a recipient line may read "To:<address>:"."""
    result = decode_fixture("x4-variant-he-her.eml")
    glaze, wheel = result.recipients
    assert result.decoder == "x4"
    assert (glaze.recipient, glaze.reason, glaze.reply_code) == ("glaze@pottery.example", "mailbox_full", "552")
    assert (wheel.recipient, wheel.reason, wheel.status) == ("wheel@clay.example", "domain_invalid", "5.1.2")


def test_activehunter_recipient_with_a_name() -> None:
    (r,) = decode_fixture("activehunter-variant-display-name.eml").recipients
    assert (r.recipient, r.reason, r.reply_code) == ("yumi.tanaka@ryokan.example", "mailbox_full", "552")


def test_x3_reply_in_a_diagnostic_code_line() -> None:
    (r,) = decode_fixture("x3-variant-diagnostic-code.eml").recipients
    assert (r.recipient, r.reason, r.status, r.diagnostic) == (
        "sommelier@vineyard.example",
        "mailbox_full",
        "5.2.2",
        "552 5.2.2 Mailbox over quota",
    )


def test_a_plain_notice_that_names_the_recipient_again_with_the_reply() -> None:
    """ "Addressed To: a@b", then "a@b: [192.0.2.170], 550 a@b... No such user" (SurfControl's layout): the line with
    the reply is the diagnostic; and "A transcript of the attempts … follows" does not end the notice, as "the
    message follows" would."""
    result = decode_fixture("plaintext-variant-named-again.eml")
    (r,) = result.recipients
    assert (result.decoder, r.recipient, r.reason, r.reply_code) == (
        "plaintext",
        "registrar@museum.example",
        "user_unknown",
        "550",
    )


def test_exim_notice_with_recipients_at_the_margin_and_a_wrapped_opening() -> None:
    """1&1's Exim wraps "The following addresses\\nfailed:" and writes each recipient at the margin ("a@b:") with
    its reason on the next line."""
    result = decode_fixture("exim-variant-margin-recipients.eml")
    captain, purser = result.recipients
    assert result.decoder == "exim"
    assert (captain.recipient, captain.reason, captain.diagnostic) == (
        "captain@island.example",
        "mailbox_full",
        "quota exceeded",
    )
    assert (purser.recipient, purser.reason) == ("purser@island.example", "user_unknown")


def test_an_exim_router_error_in_a_temporary_notice_is_a_delay() -> None:
    (r,) = decode_fixture("exim-variant-router-temporary.eml").recipients
    assert (r.recipient, r.action, r.hard_bounce) == ("tenor@choir.example", Action.DELAYED, False)


def test_kddi_s_notice_through_its_relays_marked_by_its_filter() -> None:
    result = decode_fixture("kddi-variant-relayed-filtered.eml")
    (r,) = result.recipients
    assert (result.decoder, r.recipient, r.reason, r.hard_bounce) == (
        "kddi",
        "hojicha@ezweb.example.jp",
        "content_rejected",
        False,
    )


def test_exchange_2003_encapsulated_address_and_an_ambiguous_name() -> None:
    """ "IMCEASMTP-a+40b@host SMTP=a@b on <date>": the address after SMTP= is the recipient; "The recipient name is
    ambiguous" is the receiving directory's fault, not a missing mailbox."""
    archive, stacks = decode_fixture("exchange2003-variant-imcea.eml").recipients
    assert (archive.recipient, archive.reason, archive.reply_code) == ("archive@stacks.example", "relay_denied", "550")
    assert (stacks.recipient, stacks.reason, stacks.hard_bounce) == ("stacks@library.example", "system_error", False)


def test_a_local_recipient_takes_the_domain_its_reply_quotes() -> None:
    """Sendmail names a local user without a domain ("Final-Recipient: RFC822; baker"); the reply quotes the whole
    address ("<baker@bakery.example>")."""
    (r,) = decode_fixture("sendmail-variant-local-recipient.eml").recipients
    assert (r.recipient, r.reason) == ("baker@bakery.example", "user_unknown")


def test_a_refused_connection_reported_failed_with_a_transient_status_expired() -> None:
    """Exchange Online gives up on "4.4.316 Connection refused" after its retries: 'failed' with a 4.x.x status is
    an expiry."""
    (r,) = decode_fixture("rfc3464-variant-refused-expired.eml").recipients
    assert (r.recipient, r.action, r.status, r.reason) == ("member@marina.example", Action.FAILED, "4.4.316", "expired")


def test_sendmail_5_host_line_with_its_mailer_name() -> None:
    """ "421 mx.example.tcp... Deferred: …" names no recipient: the returned message's recipient at that host is."""
    result = decode_fixture("v5sendmail-variant-tcp-host.eml")
    (r,) = result.recipients
    assert (result.decoder, r.recipient, r.reason, r.reply_code) == (
        "v5sendmail",
        "night-shift@telescope.example",
        "expired",
        "421",
    )
