"""The SMTP server's protocol core: a sans-I/O session, its protocol rules and the decisions policies give.

``Session`` turns received bytes into actions (docs/server.md); ``Decision`` and ``reply_for`` are the one place
where a policy's answer becomes a stage's reply. The asyncio adapter, the policy pipeline and the store build on
these names.
"""

from __future__ import annotations

from smtplens.server.decisions import Decision, DecisionError, Outcome, accepted_reply, reply_for
from smtplens.server.protocol import (
    DECISION_STAGES,
    BodyFacts,
    BodyType,
    Limits,
    MailFrom,
    RcptTo,
    Replies,
    SessionConfig,
    ehlo_keywords,
    encode_reply,
)
from smtplens.server.session import (
    Action,
    Close,
    Context,
    Deliver,
    Direction,
    Envelope,
    NeedDecision,
    Send,
    Session,
    SessionError,
    StartTls,
    TranscriptLine,
)

__all__ = [
    "DECISION_STAGES",
    "Action",
    "BodyFacts",
    "BodyType",
    "Close",
    "Context",
    "Decision",
    "DecisionError",
    "Deliver",
    "Direction",
    "Envelope",
    "Limits",
    "MailFrom",
    "NeedDecision",
    "Outcome",
    "RcptTo",
    "Replies",
    "Send",
    "Session",
    "SessionConfig",
    "SessionError",
    "StartTls",
    "TranscriptLine",
    "accepted_reply",
    "ehlo_keywords",
    "encode_reply",
    "reply_for",
]
