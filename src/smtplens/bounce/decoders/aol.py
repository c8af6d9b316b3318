"""AOL's own delivery-failure notices of its AIRmail system (``MAILER-DAEMON@aol.com``, subject "Mail Delivery
Problem", a ``Mailer: AIRmail [v…]`` header field), used until AOL's mail moved to Yahoo's systems.

Plain text, no returned message: "Sorry SENDER. Your mail to the following recipients could not be delivered
because REASON:" and then one recipient per line, indented with a tab. A recipient on AOL's own service is its
screen name without a domain ("exampleuser" is exampleuser@aol.com); others are full addresses. The REASON is
AOL's sentence, such as "they are not accepting mail with attachments or embedded images" (a recipient's own
setting): it is the diagnostic the classifier reads. Later AOL bounces are standard DSNs (rfc3464).
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "aol"

_SENDER = "mailer-daemon@aol.com"
_SENTENCE = "Your mail to the following recipients could not be delivered"
_NOTICE = re.compile(r"^[^\n]*?(" + _SENTENCE + r"\b[^\n]*?):?[ \t]*\n((?:[ \t]+\S[^\n]*\n?)+)", re.I | re.M)
_DOMAIN = "aol.com"  # the service of a screen name given without one
MAX_TEXT = 20_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = (_SENDER,)


def detect(mail: Mail) -> bool:
    return _SENDER in mail.lowered("from") and _SENTENCE.lower() in mail.head(MAX_TEXT)


def decode(mail: Mail) -> list[Finding]:
    notice = _NOTICE.search(mail.text[:MAX_TEXT])
    if notice is None:
        return []
    diagnostic = " ".join(notice.group(1).split())
    findings: list[Finding] = []
    for line in notice.group(2).splitlines()[:MAX_RECIPIENTS]:
        recipient = clean_address(_address(line.strip()))
        if recipient:
            findings.append(Finding(recipient=recipient, action=Action.FAILED, diagnostic=diagnostic))
    return findings


def _address(token: str) -> str:
    """A recipient line's address: an AOL screen name gets AOL's domain (screen names may hold spaces, which
    addresses do not)."""
    return token if "@" in token else token.replace(" ", "").lower() + "@" + _DOMAIN
