"""Shortcuts taken for speed give the answers of the general path they skip.

- An SMTP diagnostic that begins with a failure reply code is parsed as it stands, without its ``smtp;`` type
  in front (the reply parser's fast path); the reply read must be the one the typed text gives.
- ``Mail.original_identity`` reads five fields of the returned message without splitting its whole header; they
  must be what ``Mail.original`` gives, and the pattern that finds them after line breaks must find what the
  multi-line pattern finds.
- The compiled build reads a header block's extent and its identifying fields in one walk over its lines; they must
  be what the patterns find.
- The compiled build finds the fields of a delivery-status block by walking its lines; they must be what the
  pattern finds.
- ``Part.text`` returns an ASCII body without transfer encoding as it stands; it must be what decoding its bytes
  gives.
- The compiled build makes the line ends of a mail LF in one loop over its bytes; they must be what replacing
  CRLF, then CR, gives.
- ``Mail.in_header`` looks for a word in the raw header; it must be found wherever the word stands in an unfolded
  field value (DragonFly's ``detect`` asks it before unfolding the Received field).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtplens.bounce import _reply_text
from smtplens.bounce.mime import decode_bytes, parse_mail
from smtplens.reply import parse_reply

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
IDENTITY = ("from", "return-path", "message-id", "subject", "list-id")

DIAGNOSTICS = (
    "550 5.1.1 <bob@recipient.example>: Recipient address rejected: User unknown in virtual mailbox table",
    "552-5.2.2 The email account that you tried to reach is over quota. 552 5.2.2 Please direct the recipient",
    "421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to user complaints",
    "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
    "450 4.2.0 <carol@example.net>: Recipient address rejected: Greylisted, see https://example.net/grey",
    "550 Requested action not taken: mailbox unavailable",
    "451-4.3.0 Temporary failure - please try again later",
)


@pytest.mark.parametrize("diagnostic", DIAGNOSTICS)
def test_an_smtp_diagnostic_that_begins_with_a_code_reads_as_the_typed_text_does(diagnostic: str) -> None:
    assert _reply_text(diagnostic, "smtp") == diagnostic
    fast = parse_reply(_reply_text(diagnostic, "smtp"))
    typed = parse_reply(f"smtp; {diagnostic}")
    assert fast._replace(raw="") == typed._replace(raw="")


def test_other_types_and_other_texts_keep_their_type() -> None:
    assert _reply_text("77", "x-unix") == "x-unix; 77"
    assert _reply_text("220-banner 421 4.2.1 refused", "smtp") == "smtp; 220-banner 421 4.2.1 refused"
    assert _reply_text("Host not found", "smtp") == "smtp; Host not found"
    assert _reply_text("550 unknown user", None) == "550 unknown user"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.eml")), ids=lambda p: p.name)
def test_the_identity_of_the_returned_message_is_what_its_whole_header_says(path: Path) -> None:
    """Where the mail attaches the message (or its header), the identity read on the fast path is that of the
    whole header; where it attaches none, the identity may come from a copy quoted in the text."""
    data = path.read_bytes()
    fast, whole = parse_mail(data).original_identity(), parse_mail(data).original
    if whole is not None:
        assert fast is not None
        assert [fast.text(n) for n in IDENTITY] == [whole.text(n) for n in IDENTITY]


_header_pieces = st.sampled_from(
    [
        "\n",
        "From: a",
        "from:b",
        "Subject :x",
        " cont",
        "\tc",
        "X-Y: z",
        "message-id:<1>",
        "List-Id: l",
        ":",
        "é",
        "\n\n",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_header_pieces, max_size=20).map("".join), st.integers(0, 40), st.integers(0, 60))
def test_identity_fields_after_a_line_break_are_those_of_the_multi_line_pattern(src: str, start: int, end: int) -> None:
    from smtplens.bounce.mime import _IDENTITY_FIELDS, _identity_fields

    start = min(start, len(src))
    end = max(min(end, len(src)), start)
    assert _identity_fields(src, start, end) == _IDENTITY_FIELDS.findall(src, start, end)


@settings(max_examples=400, deadline=None)
@given(st.lists(_header_pieces, max_size=20).map("".join), st.integers(0, 40), st.integers(0, 60))
def test_identity_fields_read_while_a_block_is_walked_are_the_pattern_s(src: str, start: int, stop: int) -> None:
    """The compiled build finds a quoted block's extent and its identity fields in one walk over its lines."""
    from smtplens.bounce.mime import _IDENTITY_FIELDS, _IDENTITY_NAMES, _block_end, _header_fields

    start = min(start, len(src))
    stop = max(min(stop, len(src)), start)
    fields: list[tuple[str, str]] = []
    count, end = _header_fields(src, start, stop, fields, _IDENTITY_NAMES)
    assert end == _block_end(src, start, stop)
    assert fields == _IDENTITY_FIELDS.findall(src, start, end)
    assert count == _header_fields(src, start, stop, None)[0]


@pytest.mark.parametrize("extra", ["", "caf\u00e9 "])
def test_a_quoted_header_is_found_in_any_case_in_ascii_and_other_text(extra: str) -> None:
    """An ASCII text is searched in lower case for where a quoted header begins; any other text case-folded."""
    notice = f"From: MAILER-DAEMON@example.net\nSubject: failure notice\n\n{extra}Sorry.\n\n"
    quoted = "RECEIVED: by x\nFROM: Alice <alice@example.org>\nMESSAGE-ID: <m1@example.org>\nSUBJECT: Hi\n\nbody\n"
    identity = parse_mail((notice + quoted).encode()).original_identity()
    assert identity is not None
    assert identity.get("message-id") == "<m1@example.org>"
    assert identity.get("from") == "Alice <alice@example.org>"


_report_pieces = st.sampled_from(
    ["\n", "Action: failed", "status:5.1.1", "X-Y :z", " cont", "\tc", "not a field", ":", "a b: c", "é", "\n\n", " "]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_report_pieces, max_size=20).map("".join))
def test_fields_found_by_walking_lines_are_the_pattern_s(chunk: str) -> None:
    """The compiled build walks a delivery-status block's lines for its fields, passing over lines that are not."""
    from smtplens.bounce.mime import _FIELD_LINE, _header_fields

    fields: list[tuple[str, str]] = []
    _header_fields(chunk, 0, len(chunk), fields, None, True)
    assert fields == _FIELD_LINE.findall(chunk)


_bodies = st.lists(st.sampled_from(["abc", "\n", " ", "=3D", "\x1b$B", "\xe9", "QUJD", "--b", "é"]), max_size=12)
_encodings = st.sampled_from(["", "7bit", "8bit", "base64", " Quoted-Printable ", "binary"])
_charsets = st.sampled_from(["", "us-ascii", "utf-8", "iso-2022-jp", "utf-16", "shift_jis"])


@settings(max_examples=400, deadline=None)
@given(_bodies.map("".join), _encodings, _charsets, st.booleans())
def test_part_text_is_its_decoded_payload(body: str, cte: str, charset: str, crlf: bool) -> None:
    ctype = f"text/plain; charset={charset}" if charset else "text/plain"
    head = f"Content-Type: {ctype}\nContent-Transfer-Encoding: {cte}\n" if cte else f"Content-Type: {ctype}\n"
    mail = f"{head}\n{body}"
    part = parse_mail(mail.replace("\n", "\r\n").encode() if crlf else mail.encode()).root
    # the decoded text with its line ends made LF, as the mail's own were (base64 text comes with CRLF)
    assert part.text() == decode_bytes(part.payload(), part.charset).replace("\r\n", "\n").replace("\r", "\n")


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.eml")), ids=lambda p: p.name)
def test_a_word_of_an_unfolded_field_is_in_the_raw_header(path: Path) -> None:
    mail = parse_mail(path.read_bytes())
    for _, value in mail.headers:
        for word in value.split()[:20]:
            assert mail.in_header(word)
    assert not mail.in_header("\0not in any header")


def test_a_folded_received_field_still_names_dragonfly() -> None:
    mail = parse_mail(b"Received: by DragonFly\n  Mail Agent;\n  Mon, 1 Jan 2024\nFrom: MAILER-DAEMON\n\nbody\n")
    assert mail.in_header("DragonFly")
    assert "DragonFly Mail Agent" in (mail.headers.get("received") or "")
    assert not mail.in_header("body")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"a", b" ", b"\xe9", b"\0"]), max_size=40).map(b"".join))
def test_line_ends_are_made_lf_as_the_replaces_make_them(data: bytes) -> None:
    # (the compiled build copies the bytes in one loop; the interpreted one replaces CRLF, then CR)
    assert parse_mail(data).raw == data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").decode("latin-1")
