"""Bounces of Sendmail 5 and its derivatives (IDA Sendmail, early Sendmail 8 without DSN).

A plain-text mail, "Returned mail: …" from the Mail Delivery Subsystem, with no machine-readable part: the
body is "----- Transcript of session follows -----" with the SMTP dialogue (``While talking to HOST:``,
``>>> RCPT To:<…>``, ``<<< 550 …``) and Sendmail's verdict lines, either about a recipient
(``550 <address>... User unknown``) or about a whole host (``421 example.org (smtp)... Deferred: …``), then
"----- Unsent message follows -----" and the returned message (or "----- No message was collected -----" when
the session failed before the message was received). A recipient's reason is the remote reply
quoted before its verdict line, else the verdict itself. When only host lines are written, the recipients are
the returned message's addresses at that host. A temporary error (``4xx``) on such a host line in a mail
whose subject says "Cannot send message for 4 days" is the last deferral before Sendmail's queue lifetime ran
out: the delivery expired.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import clean_address, parse_date, rfc3464, sendmail
from smtplens.bounce.mime import Mail, addresses, parse_headers
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "v5sendmail"

_UNSENT = re.compile(r"^[ \t]*-+[ \t]*(?:Unsent message follows|No message was collected)[ \t]*-+[ \t]*$", re.M | re.I)
# "421 example.org (smtp)... Deferred: …", or with the mailer's name appended: "421 mx.example.org.tcp... Deferred"
_HOST_VERDICT = re.compile(r"^([245]\d\d) ([\w.-]+?)(?: \(\w+\)|\.tcp)\.\.\.[ \t]*(.*)$", re.M)
# Sendmail's subject when a message stayed queued past its lifetime (Timeout.queuereturn)
_TIMED_OUT = re.compile(r"cannot send (?:the )?message for \d+ (?:days?|hours?)")


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = sendmail.GATE
# ... and unless this is in its readable text (dispatch.py)
TEXT_GATE = sendmail.TEXT_GATE


def detect(mail: Mail) -> bool:
    if not sendmail.from_sendmail(mail):
        return False
    text = mail.text
    if "Transcript of session follows" not in text:
        return False
    # the other ending, "No message was collected": Sendmail 5 wrote no delivery-status part (one is Sendmail 8's)
    if "Unsent message follows" not in text and (
        "No message was collected" not in text or mail.find(*rfc3464.DSN_TYPES) is not None
    ):
        return False
    return _UNSENT.search(text) is not None


def decode(mail: Mail) -> list[Finding]:
    text = mail.text
    unsent = _UNSENT.search(text)
    if unsent is None:
        return []
    report = text[: unsent.start()]
    findings = sendmail.decode(mail)
    if findings:
        return findings
    # Host lines only ("421 example.com (smtp)... Deferred: …"): the returned message's recipients there.
    original = parse_headers(text[unsent.end() :].lstrip("\n"))
    wanted = [a for field in ("to", "cc") for a in addresses(original.get(field))]
    timestamp = parse_date(mail.headers.get("date"))
    expired = _TIMED_OUT.search(mail.lowered("subject")) is not None
    out: list[Finding] = []
    for m in _HOST_VERDICT.finditer(report):
        code, host, rest = m.groups()
        host = host.lower().rstrip(".")
        for address in wanted:
            domain = address.rpartition("@")[2].lower()
            if domain == host or host.endswith("." + domain):
                recipient = clean_address(address)
                if recipient and all(f.recipient != recipient for f in out):
                    diagnostic = " ".join(f"{code} {rest}".split())
                    reason = "expired" if expired and code[0] == "4" else None
                    out.append(
                        Finding(
                            recipient, action=Action.FAILED, diagnostic=diagnostic, timestamp=timestamp, reason=reason
                        )
                    )
    return out
