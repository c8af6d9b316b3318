"""Plain-text bounces of mailers that no other decoder knows: the last resort, asked after every other decoder.

Old and rare MTAs write a short notice without a machine-readable part, the failed address and the reason on one
line: Smail's "Failed addresses follow:" list (``kijitora@example.com ... unknown host``), one-line notices such
as "User's mailbox is full: <kijitora@example.jp>". Such a mail is read only when it shows the outward signs of a
bounce (:func:`~smtplens.bounce.decoders.looks_like_bounce`: sent by a mailer daemon or postmaster, or a subject
that reports a delivery problem). The notice is the text before the returned message (its first header field line
ends the notice); each address there, other than the bounce's own recipient and the mail system's addresses, is a
failed recipient, once, and its line is the diagnostic (with the next line when the address stands alone, past
one blank line). A notice that says the mail system is still trying ("has not yet been delivered", "will continue
to attempt delivery") reports a delay.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address, looks_like_bounce
from smtplens.bounce.mime import Mail, addresses
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "plaintext"

MAX_NOTICE = 5000  # characters of the text read: such a notice is a few lines
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# The returned message's header (its first field line) or the line that announces it ends the notice.
_NOTICE_END = re.compile(
    r"^(?:(?:Received|Return-Path|From|To|Date|Subject|Message-Id|References|In-Reply-To)[ \t]*:"
    r"|(?!.*\btranscript\b).*\b(?:message|text) follows\b)",  # not "a transcript of … the message follows"
    re.M | re.I,
)
_REPLY = re.compile(r"(?<![\w.])[245][0-9][0-9](?![\w.])")  # a reply code
_SYSTEM_USERS = frozenset({"postmaster", "mailer-daemon", "mail-daemon", "root", "abuse", "noreply", "no-reply"})
# A notice that the mail system is still trying: a delay warning, not a failure.
_STILL_TRYING = re.compile(
    r"not yet been delivered|will continue to (?:attempt|try)|delivery attempts will continue|this is just a warning"
    r"|has been postponed",
    re.I,
)


def detect(mail: Mail) -> bool:
    return looks_like_bounce(mail)


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_NOTICE]
    end = _NOTICE_END.search(text)
    lines = (text[: end.start()] if end else text).split("\n")
    known = {a.lower() for a in addresses(mail.headers.get("to"))}
    action = Action.DELAYED if _STILL_TRYING.search(text) else Action.FAILED
    findings: list[Finding] = []
    found: dict[str, Finding] = {}
    for i, line in enumerate(lines):
        for m in _ADDRESS.finditer(line):
            recipient = clean_address(m.group(0).rstrip("."))
            if not recipient:
                continue
            lower = recipient.lower()
            earlier = found.get(lower)
            if earlier is not None and _REPLY.search(line) and not _REPLY.search(earlier.diagnostic or ""):
                # named again with the server's reply ("a@b: [192.0.2.1], 550 a@b... No such user"), after a line
                # that named it only ("Addressed To: a@b")
                earlier.diagnostic = " ".join(line.split())
                continue
            if lower in known or lower.partition("@")[0] in _SYSTEM_USERS:
                continue
            known.add(lower)
            diagnostic = " ".join(line.split())
            if len(diagnostic.replace(m.group(0), "").strip(" <>.:;,()-\"'")) < 4:
                diagnostic = f"{diagnostic} {_next_line(lines, i)}".strip()
            finding = found[lower] = Finding(recipient=recipient, action=action, diagnostic=diagnostic)
            findings.append(finding)
            if len(findings) > MAX_RECIPIENTS:
                return findings
    return findings


def _next_line(lines: list[str], i: int) -> str:
    """The line that explains an address standing alone on line ``i``: the next one, or the one after a blank
    line ("Your message to:", the address, a blank line, "has not yet been delivered because …")."""
    for line in lines[i + 1 : i + 3]:
        if line.strip():
            return " ".join(line.split())
    return ""
