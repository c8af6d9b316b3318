"""Error notices of the fml mailing list manager (fml 4 and earlier).

Not a delivery report: the list itself answers a post it refused. The mail comes from the list's ``…-admin@``
address, carries an ``X-MLServer: fml [fml 4.0.3 …]`` header and a Message-ID with ``.FML`` in it, and its
subject says what happened ("You a@example.org are not member (list ML)", "NOT MEMBER article from …", "Loop
Alert: …", "fml system error message"). The body explains in a sentence naming the list's address in angle
brackets ("You are not a member of this mailing list <list@example.org>.") and may end with "Original mail as
follows:" and the refused post. The list's address is reported as the recipient, the reason decided by the
notice: the sender refused (not a member, a rejected or spam sender), a mail loop, or a duplicate Message-ID.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name"]

name = "fml"

_ADDRESS = re.compile(r"<([^\s<>@]+@[^\s<>]+)>")
_END = re.compile(r"^Original mail as follows:", re.M | re.I)
# What the notice says → the taxonomy's reason (docs: notes/taxonomy.md); the body first, then the subject.
_REASONS = (
    ("duplicated message-id", "not_rfc_compliant"),
    ("loop", "system_error"),
    ("fml system error", "system_error"),
    ("security alert", "policy_rejected"),
    ("not a member", "sender_rejected"),
    ("not member", "sender_rejected"),
    ("reject mail", "sender_rejected"),
    ("reject spammers", "sender_rejected"),
    ("spam mail from a spammer", "sender_rejected"),
)
MAX_BODY = 50_000
_ADMIN = "-admin"  # the list administrator's address, which signs fml's notices


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("-admin@",)


def detect(mail: Mail) -> bool:
    return mail.lowered("x-mlserver").startswith("fml") and "-admin@" in mail.lowered("from")


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_BODY]
    end = _END.search(text)
    if end is not None:
        text = text[: end.start()]
    subject = (mail.headers.text("subject") or "").lower()
    # each paragraph's first address in angle brackets; the list's own is reported, not its administrator's that
    # signs the notice ("fml <list-admin@…> has detected a loop condition …", then "Duplicated Message-ID in
    # <list@…>.")
    named: list[tuple[str, str]] = []
    for paragraph in re.split(r"\n[ \t]*\n", text):
        first = next((a for a in map(clean_address, _ADDRESS.findall(paragraph)) if a), None)
        if first is not None:
            named.append((first, paragraph))
    found = next((n for n in named if not n[0].partition("@")[0].endswith(_ADMIN)), named[0] if named else None)
    if found is None:
        return []
    recipient, paragraph = found
    diagnostic = " ".join(paragraph.split())
    lower = diagnostic.lower()
    reason = next((r for words, r in _REASONS if words in lower), None)
    reason = reason or next((r for words, r in _REASONS if words in subject), None)
    return [Finding(recipient=recipient, action=Action.FAILED, diagnostic=diagnostic, reason=reason)]
