"""Bounces of an unidentified gateway (Sisimai's "X5") that forwards another MTA's report inside its own.

A ``multipart/mixed`` from ``MAILER-DAEMON`` (subject such as ``Returned mail: User unknown``) whose text part
holds only a sendmail-like heading, "The original message was received at DATE" and ``----- The following
addresses had permanent delivery errors -----``, with no address under it. The recipients and the reasons are
in the attached ``message/rfc822``: the delivery status notification the next MTA sent back (an RFC 3464
``multipart/report``), which this decoder reads with the standard decoder.
"""

from __future__ import annotations

from smtplens.bounce.decoders import rfc3464
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Finding

__all__ = ["decode", "detect", "name"]

name = "x5"

_MARKER = "the following addresses had permanent delivery errors"


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mailer-daemon",)
# ... and unless this is in its readable text (dispatch.py)
TEXT_GATE = (_MARKER,)


def detect(mail: Mail) -> bool:
    sender = mail.lowered("from")
    if "mailer-daemon" not in sender or mail.ctype != "multipart/mixed":
        return False
    if mail.find(*rfc3464.DSN_TYPES) is not None:
        return False
    return _MARKER in mail.head(5000)


def decode(mail: Mail) -> list[Finding]:
    for part in mail.parts:
        if part.ctype != "message/rfc822" or not part.children:
            continue
        inner = Mail(part.children[0], part.body)
        if inner.find(*rfc3464.DSN_TYPES) is None:
            continue
        return rfc3464.decode(inner)
    return []
