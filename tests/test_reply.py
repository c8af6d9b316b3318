"""parse_reply through the public API: real reply shapes, warnings, strict mode."""

from __future__ import annotations

import pytest

from smtplens import ParseError, ReplyClass, Stage, parse_reply


def test_single_line_with_enhanced_code() -> None:
    r = parse_reply("421 4.7.0 Service not available, closing transmission channel")
    assert (r.basic, r.enhanced, r.reply_class) == ("421", "4.7.0", ReplyClass.TRANSIENT)
    assert r.text == ("Service not available, closing transmission channel",)
    assert r.warnings == ()


def test_multi_line_reply() -> None:
    r = parse_reply("250-mx.example.com Hello\r\n250-SIZE 10240000\r\n250-PIPELINING\r\n250 HELP\r\n")
    assert r.basic == "250"
    assert r.text == ("mx.example.com Hello", "SIZE 10240000", "PIPELINING", "HELP")
    assert r.warnings == ()


def test_gmail_multi_line_with_enhanced_on_each_line() -> None:
    r = parse_reply(
        "550-5.1.1 The email account that you tried to reach does not exist. Please try\n"
        "550-5.1.1 double-checking the recipient's email address for typos or\n"
        "550 5.1.1 unnecessary spaces. - gsmtp"
    )
    assert (r.basic, r.enhanced) == ("550", "5.1.1")
    assert len(r.text) == 3
    assert r.message.startswith("The email account")


def test_log_joined_multi_line() -> None:
    r = parse_reply(
        "host gmail-smtp-in.l.google.com[142.250.1.26] said: 550-5.1.1 The email account that you tried to "
        "reach does not exist. Please try 550-5.1.1 double-checking the recipient's email address 550 5.1.1 "
        "https://support.google.com/mail/?p=NoSuchUser - gsmtp (in reply to RCPT TO command)"
    )
    assert (r.basic, r.enhanced, r.stage) == ("550", "5.1.1", Stage.RCPT)
    assert (r.remote_host, r.remote_ip) == ("gmail-smtp-in.l.google.com", "142.250.1.26")
    assert len(r.text) == 3
    assert "550" not in r.message


@pytest.mark.parametrize(
    ("text", "enhanced"),
    [
        ("550 5.7.1 Transaction failed", "5.7.1"),
        ("550 #5.1.1 User unknown", "5.1.1"),
        ("550 (5.1.1) User unknown", "5.1.1"),
        ("550 [5.1.1] User unknown", "5.1.1"),
        ("#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##", "5.1.1"),
    ],
)
def test_enhanced_code_spellings(text: str, enhanced: str) -> None:
    r = parse_reply(text)
    assert r.basic == "550"
    assert r.enhanced == enhanced
    assert "5.1.1" not in r.message or enhanced != "5.1.1"


def test_dsn_diagnostic_code() -> None:
    r = parse_reply("Diagnostic-Code: smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown")
    assert (r.basic, r.enhanced) == ("550", "5.1.1")
    assert r.message == "<bob@example.com>: Recipient address rejected: User unknown"


def test_dsn_folded_diagnostic_code() -> None:
    r = parse_reply("Diagnostic-Code: smtp; 552 5.2.2 The email account that you tried to reach is\n    over quota.")
    assert (r.basic, r.enhanced) == ("552", "5.2.2")
    assert r.message.endswith("is over quota.")


def test_postfix_log_fragment() -> None:
    r = parse_reply(
        "to=<u@example.org>, relay=mx.example.com[192.0.2.1]:25, delay=1, dsn=5.1.1, status=bounced "
        "(host mx.example.com[192.0.2.1] said: 550 5.1.1 <u@example.org>: Recipient address rejected: "
        "User unknown in virtual mailbox table (in reply to RCPT TO command))"
    )
    assert (r.basic, r.enhanced, r.stage) == ("550", "5.1.1", Stage.RCPT)
    assert (r.remote_host, r.remote_ip) == ("mx.example.com", "192.0.2.1")
    assert r.message.endswith("User unknown in virtual mailbox table")


def test_postfix_end_of_data_and_greeting() -> None:
    r = parse_reply("host mx.example.com[192.0.2.1] said: 554 5.7.1 spam (in reply to end of DATA command)")
    assert r.stage is Stage.END_OF_DATA
    g = parse_reply("host mx.example.com[192.0.2.1] refused to talk to me: 554 5.7.1 Service unavailable")
    assert (g.basic, g.stage) == ("554", Stage.CONNECT)


def test_exim_log_fragment() -> None:
    r = parse_reply(
        "SMTP error from remote mail server after RCPT TO:<bob@example.com>: "
        "host mx.example.com [192.0.2.7]: 550 5.1.1 <bob@example.com>... User unknown"
    )
    assert (r.basic, r.enhanced, r.stage) == ("550", "5.1.1", Stage.RCPT)
    assert (r.remote_host, r.remote_ip) == ("mx.example.com", "192.0.2.7")


def test_exim_after_end_of_data() -> None:
    r = parse_reply("SMTP error from remote mail server after end of data: 552 5.3.4 Message too big")
    assert (r.basic, r.stage) == ("552", Stage.END_OF_DATA)


def test_sendmail_transcript() -> None:
    r = parse_reply(
        "... while talking to mx.example.com.:\n>>> DATA\n<<< 554 5.7.1 Message rejected as spam\n"
        "554 5.0.0 Service unavailable"
    )
    assert (r.basic, r.enhanced, r.stage, r.remote_host) == ("554", "5.7.1", Stage.DATA, "mx.example.com")


def test_enhanced_only() -> None:
    r = parse_reply("5.1.1 User unknown")
    assert (r.basic, r.enhanced, r.reply_class) == (None, "5.1.1", ReplyClass.PERMANENT)
    assert r.text == ("User unknown",)


def test_qmail_style_enhanced_in_text() -> None:
    r = parse_reply("Sorry, no mailbox here by that name. (#5.1.1)")
    assert (r.basic, r.enhanced) == (None, "5.1.1")


def test_class_mismatch_warns_and_strict_raises() -> None:
    r = parse_reply("450 5.1.1 mailbox unavailable")
    assert r.reply_class is ReplyClass.TRANSIENT
    assert any("transient" in w and "permanent" in w for w in r.warnings)
    with pytest.raises(ParseError, match=r"5\.1\.1"):
        parse_reply("450 5.1.1 mailbox unavailable", strict=True)


def test_unknown_code_warns() -> None:
    r = parse_reply("599 weird")
    assert any("not a registered" in w for w in r.warnings)


def test_vendor_detail_is_a_note_not_a_problem() -> None:
    r = parse_reply("550 5.7.606 Access denied, banned sending IP [192.0.2.1]", strict=True)
    assert r.enhanced == "5.7.606"
    assert any("IANA" in w for w in r.warnings)


def test_inconsistent_multiline_codes() -> None:
    r = parse_reply("250-first\n251 second")
    assert any("line 2 has code 251" in w for w in r.warnings)
    with pytest.raises(ParseError):
        parse_reply("250-first\n251 second", strict=True)


@pytest.mark.parametrize(
    "text",
    [
        "220-mx.example.fr 421 4.2.1 Service refuse. Veuillez essayer plus tard. LPN006_107",
        "220-mx.example.fr ESMTP\n421 4.2.1 Service refused, please try later",
        "smtp; 220-mx.example.fr 421 4.2.1 Service refused, please try later",
    ],
)
def test_a_banner_line_caught_with_the_reply_after_it(text: str) -> None:
    """The first banner line reported together with the refusal that followed: the refusal is the reply."""
    r = parse_reply(text)
    assert (r.basic, r.enhanced) == ("421", "4.2.1")
    assert r.text[0].startswith("Service refus")
    assert not any("220" in w for w in r.warnings)


def test_a_multi_line_banner_alone_stays_a_banner() -> None:
    r = parse_reply("220-mx.example.com ESMTP Postfix\n220 mx.example.com ready")
    assert r.basic == "220"
    assert r.text == ("mx.example.com ESMTP Postfix", "mx.example.com ready")


def test_garbage() -> None:
    r = parse_reply("this is not a reply at all")
    assert (r.basic, r.enhanced, r.reply_class) == (None, None, None)
    assert r.warnings
    with pytest.raises(ParseError, match="no reply code"):
        parse_reply("", strict=True)


def test_bytes_and_overlong_input() -> None:
    r = parse_reply(b"550 5.1.1 caf\xe9 unknown")
    assert r.basic == "550"
    assert any("UTF-8" in w for w in r.warnings)
    big = parse_reply("550 " + "x" * 2_000_000)
    assert big.basic == "550"
    assert any("longer" in w for w in big.warnings)


def test_to_dict_contract() -> None:
    d = parse_reply(
        "host a.example[192.0.2.1] said: 452 4.5.3 Too many recipients (in reply to RCPT TO command)"
    ).to_dict()
    assert set(d) >= {"basic", "enhanced", "class", "text", "remote_host", "stage", "warnings"}
    assert d["stage"] == "rcpt"
    assert d["class"] == "transient"


@pytest.mark.parametrize(
    ("text", "basic", "enhanced"),
    [
        ("550 cuda_nsu 5.1.1 <email@example.com> Recipient address rejected: User unknown", "550", "5.1.1"),
        (
            "failed,5.1.1 (bad destination mailbox address),553 Relaying disallowed,mx.zoho.com",
            "553",
            "5.1.1",
        ),
        ("550: 5.2.2 <mailboxfull@example.org>... Mailbox Full", "550", "5.2.2"),
        (
            "Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <k@example.co.jp>... User Unknown",
            "550",
            "5.1.1",
        ),
        (
            "5.1.0 - Unknown address error 550-'5.7.1 <x@example.com>... Access denied' (delivery attempts: 0)",
            "550",
            "5.7.1",
        ),
        ("553 Mail from 192.0.2.1 not allowed - 5.7.1 ", "553", "5.7.1"),
        ("553 you are trying to use me as a relay (#5.7.1)", "553", "5.7.1"),
        (
            "421 4.1.1 <e@example.com>: unverified address: host example.com[192.0.2.1] said: 450 4.1.1 no",
            "421",
            "4.1.1",
        ),
        (
            "3/09/2016 7:58:27 PM - Remote Server at mx.example.edu (192.0.2.3) returned '441 4.4.1 Error'",
            "441",
            "4.4.1",
        ),
    ],
)
def test_real_world_shapes(text: str, basic: str, enhanced: str) -> None:
    r = parse_reply(text)
    assert (r.basic, r.enhanced) == (basic, enhanced)
