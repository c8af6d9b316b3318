"""Bounce decoding on the project's own fixture mails: DSNs, feedback reports, auto-replies, broken and plain
mail, line endings and charsets; the MIME reader, the inputs, the registry and the CLI."""

from __future__ import annotations

import base64
import io
import json
import pkgutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import smtplens.bounce.decoders as decoders_pkg
from smtplens.bounce import Action, InputError, Kind, decode_bounce, iter_mails
from smtplens.bounce.decoders import clean_address, looks_like_bounce
from smtplens.bounce.inputs import expand
from smtplens.bounce.mime import (
    _split_multipart,
    content_type,
    decode_bytes,
    decode_words,
    field_blocks,
    first_address,
    html_text,
    parse_mail,
)
from smtplens.bounce.registry import DECODERS, by_name
from smtplens.cli.main import cli
from smtplens.model import Stage
from tests.conftest import FIXTURES

BOUNCES = FIXTURES / "bounces"


def fixture(name: str) -> bytes:
    return (BOUNCES / name).read_bytes()


# --- decoding ------------------------------------------------------------------------------------------------


def test_postfix_dsn_every_field() -> None:
    result = decode_bounce(fixture("postfix-dsn.eml"))
    assert result.kind is Kind.BOUNCE and result.decoder == "rfc3464" and result.is_bounce
    (r,) = result.recipients
    assert r.recipient == "bob@recipient.example"
    assert r.original_recipient is None  # the same address as Final-Recipient
    assert r.sender == "alice@sender.example"
    assert (r.reason, r.status, r.reply_code, r.action) == ("user_unknown", "5.1.1", "550", Action.FAILED)
    assert r.hard_bounce is True
    assert r.stage is Stage.RCPT  # from the text part: "(in reply to RCPT TO command)"
    assert r.remote_host == "mx.recipient.example"
    assert r.reporting_mta == "mx1.sender.example"
    assert r.diagnostic_type == "smtp"
    assert r.diagnostic is not None and "User unknown in virtual mailbox table" in r.diagnostic  # folded line joined
    assert r.timestamp == datetime(2026, 3, 10, 8, 15, 1, tzinfo=UTC)
    assert (r.message_id, r.subject, r.list_id) == (
        "quarterly-2026-03@sender.example",
        "Quarterly report",
        "team.sender.example",
    )
    assert r.verdict is not None and r.verdict.reason == "user_unknown" and r.verdict.permanent
    assert r.sisimai == "userunknown"


def test_recipient_json_fields() -> None:
    (r,) = decode_bounce(fixture("postfix-dsn.eml")).recipients
    data = r.to_dict()
    for key in (
        "kind",
        "decoder",
        "recipient",
        "sender",
        "reason",
        "status",
        "reply_code",
        "diagnostic",
        "remote_host",
        "stage",
        "action",
        "hard_bounce",
        "timestamp",
        "message_id",
        "subject",
        "list_id",
        "feedback_type",
        "permanent",
        "retry",
        "retry_after",
        "provider",
        "evidence",
        "sender_action",
    ):
        assert key in data, key
    assert json.loads(json.dumps(data)) == data
    assert data["timestamp"] == "2026-03-10T09:15:01+01:00"


def test_multi_recipient_dsn_in_order() -> None:
    result = decode_bounce(fixture("multi-recipient.eml"))
    assert result.kind is Kind.BOUNCE
    got = [(r.recipient, r.action, r.status, r.reason, r.hard_bounce) for r in result.recipients]
    assert got == [
        ("carol@one.example", Action.FAILED, "5.2.1", "mailbox_disabled", True),  # Action written first
        ("dave@two.example", Action.DELAYED, "4.4.1", "network_error", False),  # the Status comment explains
        ("erin@three.example", Action.DELIVERED, "2.0.0", "delivered", False),  # no blank line before it
    ]
    carol, dave, erin = result.recipients
    assert carol.timestamp == datetime(2026, 3, 11, 13, 59, tzinfo=UTC)  # Last-Attempt-Date
    assert dave.timestamp == datetime(2026, 3, 11, 13, 0, tzinfo=UTC)  # Arrival-Date
    assert dave.verdict is not None and dave.verdict.retry
    assert erin.kind is Kind.DELIVERY_NOTICE and erin.reply_code == "250" and erin.verdict is None
    assert {r.message_id for r in result.recipients} == {"march-news@sender.example"}  # text/rfc822-headers
    assert {r.list_id for r in result.recipients} == {"news.sender.example"}


def test_delivery_notice_alone() -> None:
    only_success = fixture("multi-recipient.eml").replace(b"Action: failed", b"Action: relayed")
    only_success = only_success.replace(b"Action: delayed", b"Action: expanded").replace(b"Status: 5.2.1", b"")
    only_success = only_success.replace(b"Status: 4.4.1 (connection timed out)", b"Status: 2.0.0")
    result = decode_bounce(only_success)
    assert result.kind is Kind.DELIVERY_NOTICE
    assert [r.reason for r in result.recipients] == ["delivered"] * 3


def test_arf_feedback_report() -> None:
    result = decode_bounce(fixture("arf.eml"))
    assert result.kind is Kind.FEEDBACK and result.decoder == "arf"
    (r,) = result.recipients
    assert (r.recipient, r.sender, r.feedback_type, r.reason) == (
        "frank@isp.example",
        "bounces@sender.example",
        "abuse",
        "feedback",
    )
    assert r.hard_bounce is False and r.verdict is None
    assert r.message_id == "offer-42@sender.example" and r.subject == "Spring offers"
    assert r.timestamp == datetime(2026, 3, 12, 9, 30, tzinfo=UTC)
    assert r.to_dict()["reason_title"]  # texts come from the taxonomy when no reply was classified


def test_arf_without_a_named_recipient_uses_the_reported_message() -> None:
    data = fixture("arf.eml").replace(b"Original-Rcpt-To: <frank@isp.example>\n", b"")
    (r,) = decode_bounce(data).recipients
    assert r.recipient == "frank@isp.example"  # the To of the reported message
    hidden = data.replace(b"To: frank@isp.example", b"To: undisclosed-recipients:;")
    (r,) = decode_bounce(hidden).recipients
    assert r.recipient == "" and r.reason == "feedback"


def test_auto_reply() -> None:
    result = decode_bounce(fixture("auto-reply.eml"))
    assert result.kind is Kind.AUTO_REPLY and result.decoder == "rfc3834"
    (r,) = result.recipients
    assert (r.recipient, r.sender, r.reason, r.hard_bounce) == (
        "grace@office.example",
        "alice@sender.example",
        "auto_reply",
        False,
    )
    assert r.diagnostic is not None and r.diagnostic.startswith("I am out of the office")


def test_auto_reply_that_says_the_mailbox_is_gone_is_a_failure() -> None:
    data = fixture("auto-reply.eml").replace(
        b"I am out of the office until Monday and will read your message when I return.",
        b"This mailbox is no longer in use. Please write to office@office.example instead.",
    )
    result = decode_bounce(data)
    assert result.kind is Kind.BOUNCE and result.decoder == "rfc3834"
    assert result.recipients[0].reason in ("mailbox_disabled", "mailbox_moved", "user_unknown")


@pytest.mark.parametrize(
    "headers",
    [
        b"X-Autoreply: yes\n",
        b"Precedence: auto_reply\n",
        b"Subject: Automatic reply: Quarterly report\n",
        b"Subject: Abwesenheitsnotiz: Quarterly report\n",
    ],
)
def test_auto_reply_markers(headers: bytes) -> None:
    data = fixture("auto-reply.eml").replace(b"Auto-Submitted: auto-replied\n", b"")
    data = data.replace(b"Subject: Out of Office: Quarterly report\n", b"Subject: Re: report\n" + headers, 1)
    if headers.startswith(b"Subject:"):
        data = data.replace(b"Subject: Re: report\n", b"")
    assert decode_bounce(data).kind is Kind.AUTO_REPLY


def test_bounce_marked_auto_replied_is_not_an_auto_reply() -> None:
    """Exim marks its bounces ``Auto-Submitted: auto-replied``; they come from the mailer daemon."""
    data = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.example>\nTo: a@sender.example\n"
        b"Subject: Mail delivery failed: returning message to sender\nAuto-Submitted: auto-replied\n\n"
        b"This message was created automatically by mail delivery software.\n"
    )
    result = decode_bounce(data)
    assert result.kind is Kind.NOT_BOUNCE and result.decoder is None
    assert result.warnings == ("looks like a bounce, but no decoder recognised its format",)


def test_plain_mail_is_not_a_bounce() -> None:
    result = decode_bounce(fixture("plain.eml"))
    assert result.kind is Kind.NOT_BOUNCE and result.recipients == () and result.warnings == ()
    assert result.to_dict() == {"kind": "not_bounce", "decoder": None, "recipients": [], "warnings": []}


def test_broken_mail_gives_what_can_be_read() -> None:
    result = decode_bounce(fixture("broken.eml"))
    (r,) = result.recipients
    assert r.recipient == "henry@far.example"  # "<henry@far.example" without its closing bracket
    assert r.status == "5.1.2"  # quoted-printable soft line break inside the Status field
    assert r.reply_code == "550"
    assert r.subject == "café"  # unknown-8bit encoded word read as UTF-8, else Windows-1252
    mail = parse_mail(fixture("broken.eml"))
    assert mail.find("text/plain") is not None
    assert isinstance(mail.text, str)  # undecodable base64 and an unknown charset still give text


@pytest.mark.parametrize("variant", ["postfix-dsn-crlf.eml", "postfix-dsn-cr.eml"])
def test_line_endings_do_not_matter(variant: str) -> None:
    raw = fixture(variant)
    assert (b"\r\n" in raw) == variant.endswith("crlf.eml") and b"\r" in raw
    assert decode_bounce(raw) == decode_bounce(fixture("postfix-dsn.eml"))


def test_white_space_lines_before_the_header_are_skipped() -> None:
    """Copies of mails pasted into files may begin with lines of white space; a header field after them is still
    the header. A mail that begins with its blank line and no field after it has no header."""
    data = fixture("postfix-dsn.eml")
    assert decode_bounce(b"   \n\t\n" + data).recipients == decode_bounce(data).recipients
    body_only = parse_mail(b"\n\nJust a body line.\n")
    assert (len(body_only.headers), body_only.text) == (0, "\nJust a body line.\n")


def test_iso_2022_jp() -> None:
    raw = fixture("iso-2022-jp.eml")
    assert raw.isascii() and b"\x1b$B" in raw  # 7-bit JIS with escape sequences
    result = decode_bounce(raw)
    (r,) = result.recipients
    assert (r.recipient, r.reason, r.subject) == ("hanako@recipient.example.jp", "user_unknown", "会議の案内")
    mail = parse_mail(raw)
    assert "配送に失敗しました" in mail.text
    assert mail.headers.text("subject") == "配送エラー"


def test_decode_accepts_text() -> None:
    text = fixture("postfix-dsn.eml").decode("ascii")
    assert decode_bounce(text) == decode_bounce(fixture("postfix-dsn.eml"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_decode_without_exception(data: bytes) -> None:
    result = decode_bounce(data)
    assert result.kind in Kind


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_cut_fixtures_decode_without_exception(data: st.DataObject) -> None:
    raw = fixture(data.draw(st.sampled_from(sorted(p.name for p in BOUNCES.glob("*.eml")))))
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    decode_bounce(raw[:cut])
    decode_bounce(raw[cut:])


# --- the MIME reader -----------------------------------------------------------------------------------------


def test_content_type_parameters() -> None:
    assert content_type('Multipart/Report; report-type="delivery-status";\n boundary="a b;c"') == (
        "multipart/report",
        {"report-type": "delivery-status", "boundary": "a b;c"},
    )
    assert content_type("text/plain; charset*=utf-8''%E2%82%AC") == ("text/plain", {"charset": "€"})
    assert content_type("nonsense")[0] == "text/plain"  # RFC 2045 section 5.2
    assert content_type(None) == ("text/plain", {})


def test_boundary_that_prefixes_a_nested_boundary() -> None:
    body = "pre\n--b\n\none\n--b-inner\ninside\n--b\n\ntwo\n--b--\nepilogue"
    assert _split_multipart(body, "b") == ["\none\n--b-inner\ninside", "\ntwo"]
    assert _split_multipart("--b\n\nonly part, never closed", "b") == ["\nonly part, never closed"]
    assert _split_multipart("no delimiter at all", "b") == []


def test_headers_fold_case_and_order() -> None:
    mail = parse_mail(b"Subject: one\n  two\nX-A: 1\nx-a: 2\nNot a field line\nBody: not a header\n")
    assert mail.headers.get("subject") == "one two"
    assert mail.headers.get_all("x-a") == ["1", "2"]
    assert "body" not in mail.headers and mail.text.startswith("Not a field line")


def test_mbox_from_line_is_skipped() -> None:
    mail = parse_mail(b"From MAILER-DAEMON  Mon Sep 20 19:29:27 2021\nSubject: hi\n\nbody\n")
    assert mail.headers.get("subject") == "hi" and mail.text == "body\n"


def test_field_blocks() -> None:
    blocks = field_blocks("A: 1\nB: 2\n  cont\n\n\nnot a field\nC: 3\n")
    assert [list(b) for b in blocks] == [[("a", "1"), ("b", "2 cont")], [("c", "3")]]


@pytest.mark.parametrize(
    ("data", "charset", "text"),
    [
        ("café".encode(), "us-ascii", "café"),  # mislabelled UTF-8
        ("café".encode("cp1252"), "utf-8", "café"),  # mislabelled Windows-1252
        ("日本".encode("cp932"), "x-sjis", "日本"),
        ("日本".encode("iso2022_jp"), None, "日本"),  # escape sequences without a label
        (b"abc", "no-such-charset", "abc"),
    ],
)
def test_decode_bytes(data: bytes, charset: str | None, text: str) -> None:
    assert decode_bytes(data, charset) == text


def test_encoded_words() -> None:
    assert decode_words("=?ISO-2022-JP?B?GyRCRnxLXBsoQg==?=") == "日本"
    assert decode_words("=?utf-8?Q?caf=C3=A9?= ok") == "café ok"
    assert decode_words("=?no-such-charset?Q?abc?=") == "abc"  # an unknown charset falls back
    assert isinstance(decode_words("=?utf-8?B?***?= =?utf-8?Q?=ZZ?="), str)  # malformed words never raise


def test_html_text_reads_as_a_browser_shows_it() -> None:
    markup = (
        "<html><head><style>p { margin: 0 }</style></head><body><p>Delivery has failed to:<br>\n"
        "  &lt;bob@example.org&gt;&nbsp;</p><!-- a comment --><div>550 5.1.<b>1</b> User unknown</div>"
        "<table><tr><td>Status</td><td>5.1.1</td></tr></table><pre>  kept\n  as written</pre></body></html>"
    )
    assert html_text(markup) == (
        "Delivery has failed to:\n<bob@example.org>\n\n550 5.1.1 User unknown\nStatus 5.1.1\n  kept\n  as written"
    )
    # an address in angle brackets written unescaped is text, not a tag
    assert html_text("<div>to <carol@example.org></div>") == "to <carol@example.org>"
    # what is left open: a script hides the rest, a <pre> runs to the end, a tag without ">" ends at the next "<"
    assert html_text("<p>shown<script>never closed</p>") == "shown"
    assert html_text("<p>shown</p><pre>  open\n  block") == "shown\n\n  open\n  block"
    assert html_text("<div>a <b class='x' </div><div>b</div>") == "a\nb"
    # no tag that ends a line: plain text with an HTML label keeps its lines
    assert html_text("I'm afraid I wasn't able to deliver it.\n\ndave@example.org\nNo such user") == (
        "I'm afraid I wasn't able to deliver it.\n\ndave@example.org\nNo such user"
    )


def test_an_html_only_notice_and_a_base64_body() -> None:
    """A notice whose only text is HTML, and one whose body is base64 in its canonical form (CRLF line ends)."""
    html_only = (
        b"From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\nMIME-Version: 1.0\n"
        b'Content-Type: text/html; charset="utf-8"\n\n'
        b"<p>Hi. This is the qmail-send program at mx.example.net.<br>\nI'm afraid I wasn't able to deliver your "
        b"message to the following addresses.<br>\nThis is a permanent error; I've given up.</p>\n"
        b"<p>&lt;erin@example.org&gt;:<br>\nSorry, no mailbox here by that name. (#5.1.1)</p>\n"
    )
    assert [(r.recipient, r.reason) for r in decode_bounce(html_only).recipients] == [
        ("erin@example.org", "user_unknown")
    ]
    text = (
        "This is the DragonFly Mail Agent v0.13 at df.example.net.\r\n\r\n"
        "There was an error delivering your mail to <frank@example.org>.\r\n\r\n"
        "mx.example.org [192.0.2.7] did not like our RCPT TO:\r\n550 5.1.1 <frank@example.org>: User unknown\r\n\r\n"
        "Message headers follow.\r\n"
    )
    encoded = (
        b"Received: from MAILER-DAEMON id 1a by df.example.net (DragonFly Mail Agent v0.13);\n"
        b"\tMon, 3 Jun 2024 10:00:00 +0900\nFrom: MAILER-DAEMON <>\nSubject: Mail delivery failed\n"
        b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(text.encode())
    )
    [recipient] = decode_bounce(encoded).recipients
    assert (recipient.recipient, recipient.reason, recipient.stage) == ("frank@example.org", "user_unknown", Stage.RCPT)


def test_addresses() -> None:
    assert first_address('"Neko, Cat" <neko@example.jp>') == "neko@example.jp"
    assert first_address("MAILER-DAEMON@host.example (Mail Delivery System)") == "MAILER-DAEMON@host.example"
    assert first_address("undisclosed-recipients:;") is None
    assert clean_address("RFC822; <Neko@Example.JP>") == "Neko@Example.JP"
    assert clean_address("rfc822;") is None
    assert clean_address('"user@example.com"') == "user@example.com"  # an address in quotes
    # a quoted local part keeps its quotes (RFC 5321 section 4.1.2)
    assert clean_address('rfc822; <"john smith"@example.org>') == '"john smith"@example.org'
    assert clean_address('"neko....nyaan"@example.org') == '"neko....nyaan"@example.org'


def test_attached_message_is_not_confused_with_the_report() -> None:
    """The returned message may itself be a multipart/report; only the outer report's parts are the bounce's."""
    outer = fixture("postfix-dsn.eml")
    inner_report = fixture("multi-recipient.eml")
    data = outer.replace(b"Return-Path: <alice@sender.example>\n", inner_report + b"\n", 1)
    result = decode_bounce(data)
    assert [r.recipient for r in result.recipients] == ["bob@recipient.example"]


# --- inputs --------------------------------------------------------------------------------------------------


def test_directories_maildir_and_errors(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.host").write_bytes(fixture("postfix-dsn.eml"))
    (maildir / "cur" / "2.host:2,S").write_bytes(fixture("arf.eml"))
    (maildir / "tmp" / "3.host").write_bytes(b"being delivered")
    (maildir / ".hidden").write_bytes(b"x")
    names = expand([maildir])
    assert [Path(n).name for n in names] == ["2.host:2,S", "1.host"]
    items = list(iter_mails([maildir, tmp_path / "missing.eml"]))
    assert [type(d) for _, d in items] == [bytes, bytes, InputError]
    error = items[-1][1]
    assert isinstance(error, InputError) and error.path.endswith("missing.eml") and error.problem


def test_mbox(tmp_path: Path) -> None:
    one = b"From a@b  Mon Sep 20 19:29:27 2021\n" + fixture("plain.eml")
    two = b"From c@d  Mon Sep 20 19:30:00 2021\n" + fixture("postfix-dsn.eml")
    box = tmp_path / "box.mbox"
    box.write_bytes(one + b"\n" + two + b"\n")
    items = list(iter_mails([box]))
    assert [name for name, _ in items] == [f"{box}#1", f"{box}#2"]
    results = [decode_bounce(data) for _, data in items if isinstance(data, bytes)]
    assert [r.kind for r in results] == [Kind.NOT_BOUNCE, Kind.BOUNCE]
    single = tmp_path / "single.eml"
    single.write_bytes(one)
    assert [name for name, _ in iter_mails([single])] == [str(single)]


def test_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.eml"
    big.write_bytes(fixture("postfix-dsn.eml") + b"x" * 5000)
    warnings: list[tuple[str, str]] = []
    ((_, data),) = iter_mails([big], limit=1000, on_warning=lambda n, m: warnings.append((n, m)))
    assert isinstance(data, bytes) and len(data) == 1000
    assert warnings == [(str(big), "larger than 1000 bytes: only the first 1000 bytes were read")]
    box = tmp_path / "big.mbox"
    box.write_bytes(b"From x  Mon Sep 20 19:29:27 2021\n" + b"y" * 5000 + b"\n\nFrom z  Tue\nSubject: s\n\nb\n")
    warnings.clear()
    items = list(iter_mails([box], limit=1000, on_warning=lambda n, m: warnings.append((n, m))))
    assert next(len(d) for _, d in items if isinstance(d, bytes)) == 1000
    assert len(items) == 2 and warnings and warnings[0][0] == f"{box}#1"


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.TextIOWrapper(io.BytesIO(fixture("postfix-dsn.eml")))
    monkeypatch.setattr(sys, "stdin", fake)
    ((name, data),) = iter_mails(["-"])
    assert name == "-" and data == fixture("postfix-dsn.eml")


# --- registry ------------------------------------------------------------------------------------------------


def test_every_decoder_module_is_registered() -> None:
    modules = {m.name for m in pkgutil.iter_modules(decoders_pkg.__path__)}
    registered = {d.__name__.rsplit(".", 1)[-1] for d in DECODERS}  # type: ignore[attr-defined]
    assert modules == registered
    names = [d.name for d in DECODERS]
    assert len(names) == len(set(names))
    assert by_name("rfc3464").name == "rfc3464"
    with pytest.raises(KeyError):
        by_name("nope")


def test_standard_decoders_come_last_in_this_order() -> None:
    names = [d.name for d in DECODERS]
    assert names[-5:] == ["arf", "mdn", "rfc3464", "rfc3834", "plaintext"]


def test_looks_like_bounce() -> None:
    assert looks_like_bounce(parse_mail(fixture("postfix-dsn.eml")))
    assert not looks_like_bounce(parse_mail(fixture("plain.eml")))


# --- CLI -----------------------------------------------------------------------------------------------------


def _run(*args: str, stdin: bytes | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["bounce", *args], input=stdin, catch_exceptions=False, standalone_mode=False)
    code = result.return_value if isinstance(result.return_value, int) else result.exit_code
    return code, result.stdout


def test_cli_json_lines(tmp_path: Path) -> None:
    code, out = _run("--json", str(BOUNCES / "multi-recipient.eml"), str(BOUNCES / "plain.eml"))
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["recipient"] for r in rows] == ["carol@one.example", "dave@two.example", "erin@three.example", None]
    assert all(r["file"].endswith(".eml") for r in rows)
    assert rows[-1]["kind"] == "not_bounce"


def test_cli_unreadable_file_does_not_stop_the_batch(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.eml")
    code, out = _run("--json", missing, str(BOUNCES / "arf.eml"))
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert rows[0] == {"file": missing, "error": "No such file or directory"}
    assert rows[1]["reason"] == "feedback"


def test_cli_csv_and_text() -> None:
    code, out = _run("--csv", str(BOUNCES / "postfix-dsn.eml"))
    header, row = out.splitlines()
    assert code == 0 and header.startswith("file,kind,decoder,recipient")
    assert "bob@recipient.example" in row and ",user_unknown,5.1.1,550,failed,true," in row
    code, out = _run(str(BOUNCES / "postfix-dsn.eml"))
    assert "bob@recipient.example user_unknown 5.1.1 550 failed hard" in out


def test_cli_stdin_and_usage() -> None:
    code, out = _run("--json", "-", stdin=fixture("arf.eml"))
    assert code == 0 and json.loads(out)["file"] == "-"
    from smtplens.cli.main import main

    assert main(["bounce", "--json", "--csv", str(BOUNCES / "arf.eml")]) == 2
