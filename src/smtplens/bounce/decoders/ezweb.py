"""au by KDDI's EZweb mobile mail (``ezweb.ne.jp``) returned-mail notices.

Sent by ``Postmaster@ezweb.ne.jp`` (since the move to the au.com domain also ``Postmaster@au.com``, with a
Message-ID at ``….au.com``) with the subject ``Mail System Error - Returned Mail``: plain text, or a
``multipart/mixed`` whose first part is the notice (often a Japanese paragraph first, then English). The
English lines explain the failure ("The user(s) account is disabled.", "The user(s) account is temporarily
over quota.", "Your message was not delivered within 0 days and 1 hours.", "Each of the following recipients
was rejected by a remote mail server.") and the recipients stand alone in angle brackets, or as ``Recipient:
<address>`` followed by the SMTP transcript (``>>> RCPT TO:<…>`` and ``<<< 550 …``), or, as Postfix writes
them, as ``<address>: 550 user unknown (in reply to RCPT TO command)`` with the reply on the same line. In the
oldest form the original message follows a line of dashes.

A recipient "rejected by a remote mail server" without any SMTP reply is refused by the recipient's own
reception filter (EZweb's domain/address filter), which answers with this notice and no reply text. The
gateway marks a notice of its filter with the header field ``X-SPASIGN: NG``.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address, looks_like_bounce
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["decode", "detect", "name"]

name = "ezweb"

_DOMAIN = "ezweb.ne.jp"
_AU_SENDER = "postmaster@au.com"  # the same service's notices after the move to the au.com domain
_RECIPIENT = re.compile(r"^\s*(?:Recipient:\s*)?<([^\s<>@\"]+@[^\s<>\"]+)>\s*$", re.I)
# Postfix's layout: the recipient and the remote reply on one line ("<a@ezweb.ne.jp>: 550 user unknown (in reply
# to RCPT TO command)"); the reply's own "in reply to" words name the stage.
_RECIPIENT_REPLY = re.compile(r"^\s*<([^\s<>@\"]+@[^\s<>\"]+)>:[ \t]*(\S.*?)\s*$")
_SENT = re.compile(r"^\s*>>>\s*([A-Za-z]{4})\b")
_REPLY = re.compile(r"^\s*<<<\s*(.*)$")
_SEPARATOR = re.compile(r"^-{5,}\s*$", re.M)
_FILTER_WORDS = ("rejected by a remote mail server", "rejected by the domain filter")
_STAGES = {"HELO": Stage.HELO, "EHLO": Stage.HELO, "MAIL": Stage.MAIL, "RCPT": Stage.RCPT, "DATA": Stage.DATA}
MAX_TEXT = 100_000
FILTERED = "content_rejected"


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mail system error - returned mail", _DOMAIN, _AU_SENDER)


def filter_marked(mail: Mail) -> bool:
    """Whether the carrier's gateway marked the notice as its filter's refusal (``X-SPASIGN: NG``)."""
    return mail.lowered("x-spasign").strip() == "ng"


def detect(mail: Mail) -> bool:
    if mail.lowered("subject").strip() == "mail system error - returned mail":
        return True
    sender = mail.lowered("from")
    return (_DOMAIN in sender or _AU_SENDER in sender) and looks_like_bounce(mail)


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    end = _SEPARATOR.search(text)
    if end is not None:
        text = text[: end.start()]  # the returned message follows the line of dashes
    findings: list[Finding] = []
    replies: list[list[str]] = []
    explanation: list[str] = []
    for line in text.split("\n"):
        m = _RECIPIENT.match(line) or _RECIPIENT_REPLY.match(line)
        if m is not None:
            address = clean_address(m.group(1))
            if address is None or len(findings) > MAX_RECIPIENTS:
                continue
            findings.append(Finding(recipient=address, action=Action.FAILED))
            replies.append([m.group(2)] if m.re is _RECIPIENT_REPLY else [])
            continue
        sent = _SENT.match(line)
        if sent is not None and findings:
            findings[-1].stage = _STAGES.get(sent.group(1).upper())
            continue
        reply = _REPLY.match(line)
        if reply is not None and findings:
            replies[-1].append(reply.group(1).strip())
            continue
        stripped = line.strip()
        if stripped and stripped.isascii():
            explanation.append(stripped)
    general = " ".join(explanation) or None
    marked = filter_marked(mail)
    filtered = bool(general and any(word in general.lower() for word in _FILTER_WORDS))
    for finding, lines in zip(findings, replies, strict=True):
        finding.diagnostic = " ".join(lines) if lines else general
        if marked or (filtered and not lines):
            finding.reason = FILTERED
    return findings
