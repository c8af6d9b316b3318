"""GMX's and mail.com's bounces (``MAILER-DAEMON@mail.gmx.com``, subject "Mail delivery failed: returning
message to sender").

Worded like Exim's report ("This message was created automatically by mail delivery software. A message that
you sent could not be delivered to one or more of its recipients. This is a permanent error. The following
address failed:") but laid out differently: each recipient in double quotes followed by a colon on its own line,
then the command ("SMTP error from remote server after RCPT command:"), the remote host ("host: mx.example.org")
and the reply, each on its own line. When GMX itself gave up, the recipient stands in angle brackets without a
colon, and a "Reason:" line introduces GMX's words on the next line ("delivery retry timeout exceeded"). "--- The
header of the original message is following. ---" ends the report and only the returned message's header follows.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import parse_date, sections
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["decode", "detect", "name"]

name = "gmx"

_START = re.compile(r"The following addresse?s?\s+failed:|could not be delivered to one or more of", re.I)
_END = re.compile(r"^-{2,}[ \t]*The header of the original message is following", re.I | re.M)
# "kijitora@example.org": (the remote server's reply follows) or <kijitora@example.org> (GMX's reason follows)
_RECIPIENT = re.compile(r"^[ \t]*(?:\"?<?([^\s\"<>@]+@[^\s\"<>]+?)>?\"?:|<([^\s\"<>@]+@[^\s\"<>]+?)>)[ \t]*$", re.M)
_REASON = re.compile(r"^[ \t]*Reason:[ \t]*$", re.I | re.M)
_COMMAND = re.compile(r"^[^\n]*\bafter ([A-Z]{4}|end of data|RCPT TO|MAIL FROM)\b[^\n]*:[ \t]*$", re.I | re.M)
_HOST = re.compile(r"^[ \t]*host:?[ \t]+([A-Za-z0-9][\w.-]*)[^\n]*$", re.I | re.M)
_STAGES = {
    "rcpt": Stage.RCPT,
    "rcpt to": Stage.RCPT,
    "mail": Stage.MAIL,
    "mail from": Stage.MAIL,
    "data": Stage.DATA,
    "end of data": Stage.END_OF_DATA,
    "helo": Stage.HELO,
    "ehlo": Stage.HELO,
}
MAX_TEXT = 200_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mailer-daemon@",)
# ... and unless this is in its readable text (dispatch.py)
TEXT_GATE = ("the header of the original message is following",)


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    if "mailer-daemon@" not in sender or not ("gmx" in sender or "mail.com" in sender):
        return False
    return "The header of the original message is following" in mail.text[:MAX_TEXT]


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    start = _START.search(text)
    if start is None:
        return []
    end = _END.search(text, start.end())
    report = text[start.end() : end.start() if end else len(text)]
    date = parse_date(mail.headers.get("date"))
    findings = []
    for m, stop in sections(_RECIPIENT, report):
        block = report[m.end() : stop]
        stage = None
        command = _COMMAND.search(block)
        if command:
            stage = _STAGES.get(command.group(1).lower())
            block = block[: command.start()] + block[command.end() :]
        remote = None
        host = _HOST.search(block)
        if host:
            remote = host.group(1).rstrip(".").lower()
            block = block[: host.start()] + block[host.end() :]
        diagnostic = " ".join(_REASON.sub("", block).split())
        findings.append(
            Finding(
                recipient=m.group(1) or m.group(2),
                action=Action.FAILED,
                diagnostic=diagnostic or None,
                remote_host=remote,
                stage=stage,
                timestamp=date,
            )
        )
    return findings
