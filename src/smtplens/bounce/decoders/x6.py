"""Bounces of an unidentified MTA (Sisimai's "X6"): one sentence per group of recipients.

From ``mailer-daemon`` with the subject "There was an error sending your mail", a multipart mail whose first
part says "We had trouble delivering your message. Full details follow:", repeats the subject and date of the
message, counts the errors ("1 error(s):") and then writes, per group, one sentence: "The following recipients
returned permanent errors: ADDRESS[, ADDRESS…]. Reason: SMTP Server <HOST> refused to accept your message
(COMMAND), with the following error message: [REPLY]". A second part, an attachment, holds the header of the
returned message.

Another version writes one sentence per refused recipient instead: "SMTP Server <HOST> rejected recipient
<ADDRESS> (Error following RCPT command). It responded as follows: [REPLY]", wrapped over two lines.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["decode", "detect", "name"]

name = "x6"

_GROUP = re.compile(
    r"The following recipients? returned (permanent|temporary|transient) errors?:[ \t]*(.+?)\.[ \t]+Reason:[ \t]*"
    r"(.+?)(?=\n[ \t]*\n|\nThe following recipients? returned|\Z)",
    re.I | re.S,
)
_REJECTED = re.compile(
    r"SMTP Server <\[?([^<>\s\]]+)\]?>\s+rejected recipient\s+<([^<>\s]+)>\s*\(Error following\s+([A-Za-z ]+?)"
    r"\s+command\)\.?\s*It responded as follows:\s*\[([^\]]*)\]",
    re.I,
)
_REFUSED = re.compile(r"<\[?([^<>\s\]]+)\]?>[^()\n]*?\(([A-Za-z ]+)\)")
_REPLY = re.compile(r"error message:[ \t]*\[(.+)\][ \t.]*$", re.S | re.I)
_STAGES = {
    "CONNECT": Stage.CONNECT,
    "HELO": Stage.HELO,
    "EHLO": Stage.HELO,
    "MAIL FROM": Stage.MAIL,
    "MAIL": Stage.MAIL,
    "RCPT TO": Stage.RCPT,
    "RCPT": Stage.RCPT,
    "DATA": Stage.DATA,
}
MAX_BODY = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("there was an error sending your mail",)


def detect(mail: Mail) -> bool:
    subject = mail.lowered("subject").strip()
    if not subject.startswith("there was an error sending your mail"):
        return False
    head = mail.head(MAX_BODY)
    return "returned" in head or "rejected recipient" in head


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_BODY]
    findings: list[Finding] = []
    for group in _GROUP.finditer(text):
        permanent = group.group(1).lower() == "permanent"
        reason = " ".join(group.group(3).split())
        refused = _REFUSED.search(reason)
        reply = _REPLY.search(reason)
        for address in re.split(r"[,;\s]+", group.group(2)):
            recipient = clean_address(address)
            if not recipient or "@" not in recipient or len(findings) > MAX_RECIPIENTS:
                continue
            findings.append(
                Finding(
                    recipient=recipient,
                    action=Action.FAILED if permanent else Action.DELAYED,
                    diagnostic=(reply.group(1).strip() if reply else reason) or None,
                    remote_host=refused.group(1) if refused else None,
                    stage=_STAGES.get(refused.group(2).strip().upper()) if refused else None,
                )
            )
    for m in _REJECTED.finditer(text):
        recipient = clean_address(m.group(2))
        if not recipient or "@" not in recipient or len(findings) > MAX_RECIPIENTS:
            continue
        findings.append(
            Finding(
                recipient=recipient,
                action=Action.FAILED,
                diagnostic=" ".join(m.group(4).split()) or None,
                remote_host=m.group(1),
                stage=_STAGES.get(" ".join(m.group(3).split()).upper()),
            )
        )
    return findings
