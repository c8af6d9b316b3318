"""Google Workspace / Gmail bounces that carry no machine-readable part (``mailer-daemon@googlemail.com``).

Google's current bounces are ``multipart/report`` mails with an HTML and a text version of a notice, and usually
an RFC 3464 part (read by the standard decoder). Some lack that part, notably failures of the "Send mail as"
feature (relaying through the user's own SMTP server). The text version reads: a heading between asterisks
("** Message not delivered **", "** Address not found **"), a paragraph of explanation, "Learn more here: ..."
and then "The response was:" followed by the reply or Google's own error ("Unspecified Error (SENT_SECOND_EHLO):
..."). The recipient is in ``X-Failed-Recipients``; a notice without that field (subject "Delivery Status
Notification (Failure)") names it only in the ``To:`` of the returned message.

When the explanation says the "Send mail as" settings are wrong, the failure is the sender's own account's
(its outgoing server refused or could not be used), so the format decides the reason.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, parse_date, response_under_heading
from smtplens.bounce.mime import Mail, addresses
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "googleworkspace"

_HEADING = re.compile(r"^[ \t]*\*\*[ \t]*([^*\n]{3,80}?)[ \t]*\*\*[ \t]*$", re.M)
_LEARN = re.compile(r"Learn more (?:here|at)\b[^\n]*", re.I)
_SEND_AS = "'send mail as'"
MAX_TEXT = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mailer-daemon@google",)


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    if "mailer-daemon@google" not in sender:
        return False
    if "x-failed-recipients" not in mail.headers and "delivery status notification" not in mail.lowered("subject"):
        return False
    dsn = mail.find("message/delivery-status", "message/global-delivery-status")
    if dsn is not None and "recipient" in dsn.text().lower():
        return False  # a complete RFC 3464 report: read by the standard decoder
    return _HEADING.search(mail.text[:MAX_TEXT]) is not None


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    heading = _HEADING.search(text)
    if heading is None:
        return []
    body = text[heading.end() :]
    response = response_under_heading(body)
    explanation = " ".join(_LEARN.sub(" ", body[: response[0]] if response else body).split())
    diagnostic = (response[1] if response else "") or explanation
    reason = "sender_rejected" if _SEND_AS in explanation.lower() else None
    date = parse_date(mail.headers.get("date"))
    recipients = addresses(mail.headers.get("x-failed-recipients"))
    if not recipients and mail.original is not None:
        recipients = addresses(mail.original.get("to"))
    return [
        Finding(recipient=r, action=Action.FAILED, diagnostic=diagnostic or None, reason=reason, timestamp=date)
        for r in recipients[: MAX_RECIPIENTS + 1]
    ]
