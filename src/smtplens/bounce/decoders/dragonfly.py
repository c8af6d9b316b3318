"""Bounces of the DragonFly Mail Agent (dma), the small MTA of DragonFly BSD.

dma sends a plain-text mail (From ``MAILER-DAEMON``, its own ``Received:`` line naming "DragonFly Mail Agent")
with one failed recipient per bounce. The body opens with "This is the DragonFly Mail Agent vX at HOST.",
then "There was an error delivering your mail to <ADDRESS>." and a paragraph with the reason: for a refusal
by the remote server, "HOST [IP] did not like our COMMAND:" followed by the server's reply (all its lines), where
COMMAND is "connect" (the greeting), "EHLO", "MAIL FROM", "RCPT TO", "DATA" or "final DATA"; some versions do not
name the server and write "remote host did not like our COMMAND:"; otherwise dma's own words ("Could not deliver
for the last N seconds. Giving up.", "DNS lookup failure: host HOST not found"). "Message headers follow."
or "Original message follows." ends the report; the returned header (or message) comes after it, unmarked.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import clean_address, parse_date
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["decode", "detect", "name"]

name = "dragonfly"

_MARK = "DragonFly Mail Agent"
_MARK_WORD = "DragonFly"  # the mark's first word
_INTRO = re.compile(r"^This is the DragonFly Mail Agent\b[^\n]*? at ([^\s]+?)\.?[ \t]*$", re.M)
_RECIPIENT = re.compile(r"^There was an error delivering your mail to <([^<>\n]*)>", re.M)
_END = re.compile(r"^(?:Message headers follow|Original message follows)\.?[ \t]*$", re.M)
_REMOTE = re.compile(r"^(?:remote host|(\S+)(?: \[([^\]\s]*)\])?) did not like our ([^:\n]+):[ \t]*$", re.M)
_STAGES = {
    "connect": Stage.CONNECT,
    "helo": Stage.HELO,
    "ehlo": Stage.HELO,
    "starttls": Stage.STARTTLS,
    "auth": Stage.AUTH,
    "mail from": Stage.MAIL,
    "rcpt to": Stage.RCPT,
    "data": Stage.DATA,
    "final data": Stage.END_OF_DATA,
    "quit": Stage.QUIT,
}
# dma's own words when a message stayed in its queue past the maximum time (dma.c: "Could not deliver for the
# last %d seconds. Giving up."): the format decides the reason, no remote reply is quoted.
_EXPIRED = re.compile(r"Could not deliver for the last \d+ seconds\b", re.I)
# dma's words when the recipient's domain (or its MX host) does not resolve (net.c: "DNS lookup failure: host %s not
# found"); dma bounces at once only when the resolver's answer is final (NXDOMAIN, host not found), and retries a
# transient lookup failure until the message expires, so in a bounce these words mean a domain that does not exist.
_NO_DOMAIN = re.compile(r"DNS lookup failure: host \S+ not found", re.I)
_BLANK = re.compile(r"\n[ \t]*\n")
MAX_BODY = 200_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = (_MARK.lower(), "mailer-daemon")
# ... and unless the mark is in its readable text, or its first word in the header (the Received field) (dispatch.py)
TEXT_GATE = (_MARK.lower(),)
HEADER_SIGNS = (_MARK_WORD.lower(),)


def detect(mail: Mail) -> bool:
    # (the mark's first word stands in the raw header if the mark stands in the unfolded Received field)
    if mail.in_header(_MARK_WORD) and _MARK in (mail.headers.get("received") or ""):
        return True
    sender = mail.lowered("from")
    if "mailer-daemon" not in sender:
        return False
    return mail.text.find(_MARK, 0, 2000) >= 0  # in the first 2,000 characters, without copying them


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_BODY]
    intro = _INTRO.search(text)
    if intro is None:
        return []
    findings: list[Finding] = []
    matches = list(_RECIPIENT.finditer(text, intro.end()))
    for i, m in enumerate(matches):
        recipient = clean_address(m.group(1))
        if not recipient:
            continue
        limit = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        end = _END.search(text, m.end(), limit)
        block = text[m.end() : end.start() if end else limit]
        diagnostic, remote_host, stage = _reason(block)
        findings.append(
            Finding(
                recipient=recipient,
                action=Action.FAILED,
                diagnostic=diagnostic,
                remote_host=remote_host,
                reporting_mta=intro.group(1).rstrip("."),
                stage=stage,
                reason=_own_reason(diagnostic),
                timestamp=parse_date(mail.headers.get("date")),
            )
        )
    return findings


def _own_reason(diagnostic: str | None) -> str | None:
    """The reason dma's own words decide (no remote reply is quoted), else None."""
    if not diagnostic:
        return None
    if _EXPIRED.match(diagnostic):
        return "expired"
    if _NO_DOMAIN.match(diagnostic):
        return "domain_invalid"
    return None


def _reason(block: str) -> tuple[str | None, str | None, Stage | None]:
    """The explanation after the recipient line: the remote reply (its lines joined), host and command."""
    block = block.split("\n", 1)[1] if "\n" in block else ""
    remote = _REMOTE.search(block)
    if remote is None:
        diagnostic = " ".join(_paragraph(block).split())
        return diagnostic or None, None, None
    reply = " ".join(_paragraph(block[remote.end() :]).split())
    stage = _STAGES.get(" ".join(remote.group(3).lower().split()))
    return reply or None, remote.group(1), stage


def _paragraph(text: str) -> str:
    """The first paragraph of ``text`` (leading blank lines skipped)."""
    text = text.lstrip(" \t\n")
    end = _BLANK.search(text)
    return text[: end.start()] if end else text
