"""Microsoft Exchange Server 4.0 / 5.5 / 2000 / 2003 non-delivery reports in their text form.

Exchange 4.0 to 5.5 (the "Internet Mail Connector", later "Internet Mail Service") quote the original
message's To/Subject/Sent, then say ``did not reach the following recipient(s):`` and list each recipient as
``address on <date>`` followed by indented lines: the explanation ("The recipient name is not recognized"),
sometimes the MTS-ID of the original, and an ``MSEXCH:…`` line with Exchange's hexadecimal error code and a
short reason ("(000C05A6) Unknown Recipient"). A notice of one recipient may name it on the same line ("Did not
reach the following recipient: user@example.com"). The recipient line may be indented, its date in the local form
(``4/29/99 9:19:59 AM``), and the address may be written in its X.400 form with the SMTP address as one
attribute (``c=US;a= ;p=Org;o=Site;dda:SMTP=user@example.com; on <date>``).

Exchange 2000 and 2003 write ``Your message did not reach some or all of the intended recipients.`` and
``The following recipient(s) could not be reached:`` (or ``cannot be reached``), then per recipient, indented
and separated by blank lines, ``address on <date>``, a sentence of explanation and the server's line
``<host #5.1.1 smtp;550 5.1.1 … reply>`` (the status it gave and, after ``smtp;``, the remote reply).

The mail carries ``X-Mailer: Internet Mail Service (5.5…)`` or ``… Internet Mail Connector …``,
``X-MS-Embedded-Report``, an ``Internet Mail Service`` Received line or ``X-MimeOLE: Produced By Microsoft
Exchange V6.5``; its subject begins ``Undeliverable:``. Reports that carry a delivery-status part are left to the
RFC 3464 decoder unless an Exchange 5.5 header names them.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address, parse_date
from smtplens.bounce.decoders.rfc3464 import DSN_TYPES
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "exchange2003"

_MARKER = re.compile(
    r"did not reach the following recipient|following recipient\(s\) (?:could not|cannot) be reached", re.I
)
_CONNECTOR = "with Internet Mail Service"
# "user@example.com on <date>", "<user@example.com>", or an X.400 address whose SMTP attribute is the address
_RECIPIENT = re.compile(
    r"^\s*(?:[^\n]*?\bSMTP=)?<?([^\s<>@\";]+@[^\s<>\";]+?)>?;?(?:\s+on\s+(.+?))?\s*$",
    re.I,
)
_MTS_ID = re.compile(r"The MTS-ID of the original message is:.*?(?=MSEXCH:|$)", re.I | re.S)
# Exchange 2000/2003: "<mail.example.com #5.1.1 smtp;550 5.1.1 User unknown>" (the reply part is optional)
_SERVER_LINE = re.compile(r"<([A-Za-z0-9.-]+) #([245]\.\d{1,3}\.\d{1,3})(?:\s+smtp;\s*(.*?))?>\s*$", re.I)
MAX_TEXT = 200_000
# a body in base64 or quoted-printable (a gateway or a mail store may have re-encoded the notice): the markers are
# looked for in its decoded text
_ENCODED = re.compile(r"^content-transfer-encoding:[ \t]*(?:base64|quoted-printable)", re.I | re.M)


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = (
    "x-ms-embedded-report",
    "internet mail service",
    "internet mail connector",
    "produced by microsoft exchange",
    "undeliverable",
)
# ... and unless one of these is in its readable text, or its field or the connector's name in the header (dispatch.py)
TEXT_GATE = ("did not reach the following recipient", "following recipient(s) c")
HEADER_SIGNS = ("x-ms-embedded-report", "internet mail service", "internet mail connector")


def detect(mail: Mail) -> bool:
    headers = mail.headers
    if "x-ms-embedded-report" in headers:
        return True
    mailer = headers.get("x-mailer") or ""
    if "Internet Mail Service" in mailer or "Internet Mail Connector" in mailer:
        return True
    if _CONNECTOR in mail.root.header_text():  # a Received line of the connector
        return True
    exchange = mail.lowered("x-mimeole").startswith("produced by microsoft exchange")
    if not exchange and not mail.lowered("subject").startswith("undeliverable"):
        return False
    raw = mail.raw  # the markers as written: a cheap look before the parts are decoded (unless they are encoded)
    unmarked = raw.find("id not reach the following", 0, MAX_TEXT) < 0 and raw.find(" be reached", 0, MAX_TEXT) < 0
    if unmarked and (mail.find(*DSN_TYPES) is not None or _ENCODED.search(raw, 0, MAX_TEXT) is None):
        return False
    return mail.find(*DSN_TYPES) is None and _MARKER.search(mail.text[:MAX_TEXT]) is not None


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    marker = _MARKER.search(text)
    if marker is None:
        return []
    line_end = text.find("\n", marker.end())
    line_end = len(text) if line_end < 0 else line_end
    lines = text[line_end + 1 :].split("\n")
    rest = text[marker.end() : line_end].lstrip("(s):").strip()  # "… recipient: user@example.com" on one line
    if "@" in rest:
        lines.insert(0, rest)
    findings: list[Finding] = []
    current: list[str] = []
    gap = False  # a blank line was seen since the last recipient line or explanation

    for line in lines:
        if not line.strip():
            gap = bool(findings)
            continue
        m = _RECIPIENT.match(line)
        # a recipient line stands at the left margin, or is indented and names the date ("… on <date>")
        if m is not None and (not line[:1].isspace() or m.group(2)):
            _close(findings, current)
            address = clean_address(m.group(1))
            if address is None or len(findings) > MAX_RECIPIENTS:
                break
            findings.append(Finding(recipient=address, action=Action.FAILED, timestamp=parse_date(m.group(2))))
            gap = False
        elif findings and (not gap or line[:1].isspace()):
            current.append(line.strip())  # the explanation; a wrapped MSEXCH line may go on at the margin
            gap = False
        else:
            break  # text that is neither a recipient nor its explanation
    _close(findings, current)
    return findings


def _close(findings: list[Finding], current: list[str]) -> None:
    """Give the last recipient the explanation read after it."""
    if findings and current:
        finding = findings[-1]
        text = " ".join(_MTS_ID.sub(" ", " ".join(current)).split())
        server = _SERVER_LINE.search(text)
        if server is not None:
            finding.reporting_mta = server.group(1).rstrip(".")
            finding.status = server.group(2)
            reply = (server.group(3) or "").strip()
            if reply:
                finding.diagnostic, finding.diagnostic_type = reply, "smtp"
            else:
                finding.diagnostic = text[: server.start()].strip() or None
        else:
            finding.diagnostic = text or None
    current.clear()
