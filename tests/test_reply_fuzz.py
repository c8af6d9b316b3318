"""Property-based: lenient parsing never raises, whatever the input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smtplens import Reply, parse_reply

_pieces = st.sampled_from(
    [
        "550",
        "421",
        "250-",
        "250 ",
        "5.1.1",
        "#4.7.0",
        "(5.",
        "[",
        "said:",
        "Diagnostic-Code: smtp;",
        "\r\n",
        "\n",
        "host a[1.2.3.4]",
        "(in reply to RCPT TO command)",
        "<<< ",
        ">>> DATA",
        " ",
        "-",
        ".",
        "\x00",
        "é",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_any_text(text: str) -> None:
    assert isinstance(parse_reply(text), Reply)


@settings(max_examples=400, deadline=None)
@given(st.binary())
def test_any_bytes(data: bytes) -> None:
    assert isinstance(parse_reply(data), Reply)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(_pieces, st.text(max_size=5)), max_size=30).map("".join))
def test_reply_like_text(text: str) -> None:
    reply = parse_reply(text)
    assert reply.basic is None or len(reply.basic) == 3
    assert reply.reply_class is not None or (reply.basic is None and reply.enhanced is None)


_line_pieces = st.sampled_from(
    [
        "550 ",
        "421 ",
        "250 ",
        "5.1.1 ",
        "4.7.0",
        "#5.7.1",
        "(5.1.1)",
        "[4.2.0]",
        ": ",
        "550-",
        " said: ",
        "host ",
        "mx.example[192.0.2.1]",
        "(in reply to RCPT TO command)",
        "after RCPT TO:",
        "refused to talk to me",
        "x",
        " ",
    ]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_line_pieces, min_size=1, max_size=12).map("".join))
def test_fast_path_agrees_with_general_parser(text: str) -> None:
    from smtplens.reply import _parse_general

    assert parse_reply(text) == _parse_general(text)


_split_pieces = st.sampled_from([" ", "\t", "\n", "\xa0", "\u2003", "-", "#", "(", "5", "550", "550-", "5.7.1", "x"])


@settings(max_examples=600, deadline=None)
@given(
    st.lists(_split_pieces, max_size=30).map("".join),
    st.sampled_from(["550", "421"]),
    st.sampled_from([None, "5.7.1", "4.7.0"]),
)
def test_joined_lines_split_as_the_regular_expression_would(line: str, basic: str, enhanced: str | None) -> None:
    """The split of log-joined reply lines (a search for the code, a look back for blanks) gives what splitting
    at white space followed by the code gives."""
    import re

    from smtplens.reply import _line_prefix, _split_at_codes

    enh = re.escape(enhanced) + r"\s" if enhanced else ""
    reference = re.compile(rf"\s+{basic}(?:-[#(\[]?{enh}|-| {enh})" if enh else rf"\s+{basic}-")
    assert _split_at_codes(line, _line_prefix(basic, enhanced)) == reference.split(line)
