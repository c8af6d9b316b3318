"""Sendmail reports of a failed local delivery program: the DSN's ``Diagnostic-Code: X-Unix; 73`` gives only the
program's exit status, while the transcript has what the program printed before Sendmail's verdict line; that is
the recipient's diagnostic. A remote dialogue's lines are not taken for a program's output."""

from __future__ import annotations

from pathlib import Path

from smtplens.bounce import Action, decode_bounce
from smtplens.bounce.decoders.sendmail import read_transcript

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"


def test_the_programs_output_is_the_diagnostic_of_an_exit_status() -> None:
    result = decode_bounce((FIXTURES / "sendmail-local-program-output.eml").read_bytes())
    assert result.decoder == "sendmail"
    (r,) = result.recipients
    assert r.recipient == "alice@mail.example.org"
    assert r.action is Action.FAILED
    assert r.status == "5.3.0"
    assert r.diagnostic_type == "x-unix"
    assert r.diagnostic == 'procmail: Quota exceeded while writing "/var/mail/alice"'
    assert r.sender == "bob@sender.example"


def test_a_diagnostic_with_words_is_kept() -> None:
    data = (FIXTURES / "sendmail-local-program-output.eml").read_bytes()
    data = data.replace(b"Diagnostic-Code: X-Unix; 73", b"Diagnostic-Code: X-Unix; Can't create output")
    (r,) = decode_bounce(data).recipients
    assert r.diagnostic == "Can't create output"


def test_only_lines_outside_a_remote_dialogue_are_program_output() -> None:
    heading = "   ----- Transcript of session follows -----\n"
    (remote,) = read_transcript(
        heading + "... while talking to mx.example.net.:\n"
        ">>> RCPT To:<carol@example.net>\n"
        "<<< 550 5.1.1 No such user\n"
        "a line the remote side printed\n"
        "550 5.1.1 <carol@example.net>... User unknown\n"
    )
    assert remote.recipient == "carol@example.net" and remote.output == []
    (local,) = read_transcript(
        heading + "maildrop: maildir over quota.\n550 5.0.0 <dan@example.org>... Insufficient permission\n"
    )
    assert local.recipient == "dan@example.org" and local.output == ["maildrop: maildir over quota."]
