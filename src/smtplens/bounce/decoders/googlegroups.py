"""Google Groups' refusals of a post (``mailer-daemon@googlemail.com``, a plain-text body in the sender's
language).

Sent when a message to a group address was not accepted: the group does not exist, or the sender may not post
to it. The body is a localised letter ("Hello sender, we're writing to let you know that the group you tried to
contact (name) may not exist, or you may not have permission to post messages to the group ...") that links to
the Groups help centre and is signed "Google Groups", followed by "----- Original message -----". No SMTP reply
and no status: the group address is in ``X-Failed-Recipients``, and the reason is always the same refusal of the
sender, so the format decides it rather than the (localised) text.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, parse_date
from smtplens.bounce.mime import Mail, addresses
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "googlegroups"

REASON = "sender_rejected"  # the sender may not post to the group (or the group does not exist)
_END = re.compile(r"^-{3,}\s*Original message\s*-*", re.I | re.M)
MAX_TEXT = 100_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mailer-daemon@google",)


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    if "mailer-daemon@google" not in sender or "x-failed-recipients" not in mail.headers:
        return False
    text = mail.text[:MAX_TEXT]
    return "groups.google.com" in text and "Google Groups" in text


def decode(mail: Mail) -> list[Finding]:
    recipients = addresses(mail.headers.get("x-failed-recipients"))[: MAX_RECIPIENTS + 1]
    text = mail.text[:MAX_TEXT]
    end = _END.search(text)
    letter = " ".join(text[: end.start() if end else len(text)].split())
    date = parse_date(mail.headers.get("date"))
    return [
        Finding(recipient=r, action=Action.FAILED, diagnostic=letter or None, reason=REASON, timestamp=date)
        for r in recipients
    ]
