"""Microsoft Exchange Server 5.5 / 2000 / 2003 non-delivery reports (the "Internet Mail Service" connector).

The report is plain text, sometimes inside a ``multipart/mixed`` with the returned message attached. It quotes
the original message's To/Subject/Sent, then says ``did not reach the following recipient(s):`` and lists each
recipient as ``address on <date>`` followed by indented lines: the explanation ("The recipient name is not
recognized"), sometimes the MTS-ID of the original, and an ``MSEXCH:…`` line with Exchange's hexadecimal error
code and a short reason ("Unknown Recipient"). The mail carries ``X-Mailer: Internet Mail Service (5.5…)``,
``X-MS-Embedded-Report`` or an ``Internet Mail Service`` Received line.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address, parse_date
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "exchange2003"

_MARKER = "did not reach the following recipient"
_CONNECTOR = "with Internet Mail Service"
_RECIPIENT = re.compile(r"^\s*<?([^\s<>@\"]+@[^\s<>\"]+?)>?(?:\s+on\s+(.+?))?\s*$")
_MTS_ID = re.compile(r"The MTS-ID of the original message is:.*?(?=MSEXCH:|$)", re.I | re.S)
MAX_TEXT = 200_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("x-ms-embedded-report", "internet mail service", "undeliverable")


def detect(mail: Mail) -> bool:
    headers = mail.headers
    if "x-ms-embedded-report" in headers:
        return True
    if "Internet Mail Service" in (headers.get("x-mailer") or ""):
        return True
    if _CONNECTOR in mail.root.header_text():  # a Received line of the connector
        return True
    subject = mail.lowered("subject")
    return subject.startswith("undeliverable") and mail.raw.find(_MARKER, 0, MAX_TEXT) >= 0  # as written


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    at = text.find(_MARKER)
    if at < 0:
        return []
    lines = text[text.find("\n", at) + 1 :].split("\n")
    findings: list[Finding] = []
    current: list[str] = []

    def close() -> None:
        if findings and current:
            diagnostic = " ".join(" ".join(current).split())
            diagnostic = " ".join(_MTS_ID.sub(" ", diagnostic).split())
            findings[-1].diagnostic = diagnostic or None
        current.clear()

    for line in lines:
        if not line.strip():
            if findings and current:
                break  # the recipient list ends with a blank line after the last explanation
            continue
        m = _RECIPIENT.match(line) if not line[:1].isspace() else None
        if m is not None:
            close()
            address = clean_address(m.group(1))
            if address is None or len(findings) > MAX_RECIPIENTS:
                break
            findings.append(Finding(recipient=address, action=Action.FAILED, timestamp=parse_date(m.group(2))))
        elif findings:
            current.append(line.strip())
        else:
            break  # text that is neither a recipient nor its explanation
    close()
    return findings
