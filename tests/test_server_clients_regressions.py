"""Regressions found by driving the server with real clients (tests/integration/test_server_*_live.py)."""

from __future__ import annotations

import pytest

from smtplens.server import SessionConfig
from smtplens.server.protocol import MailFrom, RcptTo, parse_mail, parse_rcpt


@pytest.mark.parametrize(
    ("argument", "orcpt"),
    [
        # what Postfix 3.7 sent for RCPT TO:<dbrød@lab.test> under SMTPUTF8: the UTF-8 octets as xtext
        ("TO:<dbrød@lab.test> ORCPT=rfc822;dbr+C3+B8d@lab.test", "rfc822;dbrød@lab.test"),
        ("TO:<b@r.test> ORCPT=rfc822;b+2Bx+40r.test", "rfc822;b+x@r.test"),
        # octets that are not UTF-8 are kept one character per octet rather than refused
        ("TO:<b@r.test> ORCPT=rfc822;b+F8@r.test", "rfc822;b\xf8@r.test"),
    ],
)
def test_orcpt_xtext_octets_are_read_as_utf8(argument: str, orcpt: str) -> None:
    result = parse_rcpt(argument, extended=True, smtputf8=True)
    assert isinstance(result, RcptTo)
    assert result.orcpt == orcpt


def test_envid_xtext_octets_are_read_as_utf8() -> None:
    result = parse_mail("FROM:<a@b.test> ENVID=caf+C3+A9-42", extended=True, config=SessionConfig())
    assert isinstance(result, MailFrom)
    assert result.envid == "café-42"
