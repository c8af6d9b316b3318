"""Mail.Ru's bounces (``mailer-daemon@corp.mail.ru``, subject "... Mail failure.").

Mail.Ru runs Exim and sends its report twice in one plain-text body: first in Russian ("К сожалению, Ваше письмо
не может быть доставлено одному или нескольким получателям:"), then Exim's English text ("A message that you
sent could not be delivered to one or more of its recipients. ... The following address(es) failed:"), after a
line of asterisks. In each, a recipient stands on a line indented by two spaces and its explanation follows,
indented further: the remote reply with the command and host ("SMTP error from remote mail server after RCPT
TO:<...>: host mx.example.org [192.0.2.1]: 550 5.1.1 ...") or Exim's own words ("Unrouteable address", "retry
timeout exceeded"). "------ This is a copy of the message, including all the headers. ------" ends it. The
English section is read (else the Russian one), so each recipient is counted once.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import parse_date, sections
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "mailru"

_ENGLISH = re.compile(r"The following address(?:\(es\)|es)? failed:[ \t]*\n", re.I)
_RUSSIAN = re.compile("получател[а-я]*:[ \t]*\n", re.I)
_END = re.compile(
    r"^(?:-{3,}[ \t]*This is a copy of|\*{5,}|Рекомендуем|-{3,}[ \t]*The header of the original)", re.I | re.M
)
_RECIPIENT = re.compile(r"^ {1,3}<?([^\s<>@]+@[^\s<>]+?)>?:?[ \t]*$", re.M)
MAX_TEXT = 200_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mailer-daemon@",)
# ... and unless this is in its readable text (dispatch.py); the Russian sentence is never in an ASCII text, and
# a text that is not ASCII opens every text gate
TEXT_GATE = ("the following address",)


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    if "mailer-daemon@" not in sender:
        return False
    if "mail.ru" not in sender and "mail.ru" not in mail.lowered("message-id"):
        return False
    text = mail.text[:MAX_TEXT]
    return _ENGLISH.search(text) is not None or _RUSSIAN.search(text) is not None


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    start = _ENGLISH.search(text) or _RUSSIAN.search(text)
    if start is None:
        return []
    end = _END.search(text, start.end())
    report = text[start.end() : end.start() if end else len(text)]
    permanent = "permanent error" in text[: start.start()].lower() or start.re is _RUSSIAN
    date = parse_date(mail.headers.get("date"))
    findings = []
    for m, stop in sections(_RECIPIENT, report):
        diagnostic = " ".join(report[m.end() : stop].split())
        findings.append(
            Finding(
                recipient=m.group(1),
                action=Action.FAILED if permanent else None,
                diagnostic=diagnostic or None,
                timestamp=date,
            )
        )
    return findings
