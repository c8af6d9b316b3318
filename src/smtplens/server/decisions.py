"""What a policy answers at a stage, and the one place that turns that answer into the stage's reply.

A :class:`Decision` accepts, rejects (5yz) or defers (4yz), optionally disconnecting, optionally with its own
code, enhanced code and text. :func:`reply_for` picks the standard code of the stage, as Haraka's hooks and
Postfix's restrictions do: connect 554/421, helo, mail and rcpt 550/450, auth 535/454 (RFC 4954 section 6), data
and end of data 554/451; a deferral that disconnects is always a 421, the only code after which a server may
close (RFC 5321 3.8).

A decision may also carry connection-level effects, which the adapter (``net.py``) and the session perform and
the scenarios (``smtplens.server.scenarios``) use to imitate misbehaving servers: ``delay`` (seconds before the
reply is sent), ``slow`` (a slow link: octets per second for this reply and everything after it, both ways),
``drop`` (close the connection with no reply at all; a refusal that the client sees as a broken connection, which
RFC 5321 3.8 tells it to treat as a transient failure) and ``cut_after`` (accept DATA with 354, then close after
that many octets of message data, never answering the message). :func:`combine_accepted` keeps the effects of
every accepting decision of a stage.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from smtplens.errors import SmtplensError
from smtplens.model import Reply, Stage
from smtplens.server.protocol import make_reply

__all__ = ["ACCEPTED", "Decision", "DecisionError", "Outcome", "accepted_reply", "combine_accepted", "reply_for"]


class DecisionError(SmtplensError, ValueError):
    """A decision is inconsistent (a 4yz code on a rejection, an enhanced code of another class, …)."""


class Outcome(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    DEFER = "defer"


_DIGIT = {Outcome.ACCEPT: "2", Outcome.REJECT: "5", Outcome.DEFER: "4"}
_CODE = re.compile(r"[2-5][0-9][0-9]")
_ENHANCED = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")


@dataclass(frozen=True, slots=True)
class Decision:
    """A policy's answer. ``policy`` names who decided; the transcript shows it beside the reply.

    ``code``, ``enhanced`` and ``text`` replace the stage's standard reply parts; their class must agree with
    the outcome. ``text`` may hold several lines. An accepting decision's text replaces the success text at
    connect (the greeting after the host name), mail and rcpt; its code and enhanced code are not used.
    ``headers`` are complete header fields (``"Authentication-Results: …"``, no line end) that an accepting
    decision at end of data prepends to the stored message, in order.

    Effects (see the module docstring): ``delay`` >= 0 seconds, ``slow`` > 0 octets per second (0: full speed),
    ``drop`` (a refusal with ``disconnect`` and no reply), ``cut_after`` > 0 (an acceptance, at the data stage).
    """

    outcome: Outcome = Outcome.ACCEPT
    disconnect: bool = False
    code: str | None = None
    enhanced: str | None = None
    text: str | None = None
    policy: str | None = None
    headers: tuple[str, ...] = ()
    delay: float = 0.0
    slow: float = 0.0
    drop: bool = False
    cut_after: int | None = None

    def __post_init__(self) -> None:
        digit = _DIGIT[self.outcome]
        if self.code is not None and not (_CODE.fullmatch(self.code) and self.code[0] == digit):
            raise DecisionError(f"{self.outcome} needs a {digit}yz code, not {self.code!r}")
        if self.enhanced is not None and not (_ENHANCED.fullmatch(self.enhanced) and self.enhanced[0] == digit):
            raise DecisionError(f"{self.outcome} needs a {digit}.x.y enhanced code, not {self.enhanced!r}")
        if self.disconnect and self.outcome is Outcome.ACCEPT:
            raise DecisionError("an accepting decision cannot disconnect")
        if self.headers and self.outcome is not Outcome.ACCEPT:
            raise DecisionError("only an accepting decision adds header fields")
        for header in self.headers:
            name, colon, _ = header.partition(":")
            unfolded = header.replace("\r\n\t", "\t").replace("\r\n ", " ")
            if not colon or not name.strip() or " " in name or "\r" in unfolded or "\n" in unfolded:
                raise DecisionError(f"not a header field: {header!r}")
        if not (math.isfinite(self.delay) and self.delay >= 0):
            raise DecisionError(f"delay must be a finite number of seconds >= 0, not {self.delay!r}")
        if not (math.isfinite(self.slow) and self.slow >= 0):
            raise DecisionError(f"slow must be a finite number of octets per second >= 0, not {self.slow!r}")
        if self.drop and not self.disconnect:
            raise DecisionError("a dropping decision must disconnect (and be a refusal)")
        if self.cut_after is not None and (self.outcome is not Outcome.ACCEPT or self.cut_after < 1):
            raise DecisionError(f"cut_after needs an accepting decision and a positive octet count: {self.cut_after!r}")

    @property
    def effects(self) -> bool:
        """True when the decision asks for a connection-level effect (delay, slow link, drop, cut)."""
        return bool(self.delay or self.slow or self.drop or self.cut_after is not None)

    @classmethod
    def accept(cls, *, text: str | None = None, policy: str | None = None, headers: tuple[str, ...] = ()) -> Decision:
        return cls(Outcome.ACCEPT, text=text, policy=policy, headers=headers)

    @classmethod
    def reject(
        cls,
        *,
        code: str | None = None,
        enhanced: str | None = None,
        text: str | None = None,
        disconnect: bool = False,
        policy: str | None = None,
    ) -> Decision:
        return cls(Outcome.REJECT, disconnect, code, enhanced, text, policy)

    @classmethod
    def defer(
        cls,
        *,
        code: str | None = None,
        enhanced: str | None = None,
        text: str | None = None,
        disconnect: bool = False,
        policy: str | None = None,
    ) -> Decision:
        return cls(Outcome.DEFER, disconnect, code, enhanced, text, policy)

    @classmethod
    def dropped(cls, *, delay: float = 0.0, policy: str | None = None) -> Decision:
        """Close the connection without any reply (after ``delay`` seconds)."""
        return cls(Outcome.DEFER, True, policy=policy, delay=delay, drop=True)


ACCEPTED = Decision()
"""The plain acceptance (no text, no header fields, no effects), shared: the session recognises it by identity and
skips the general handling of a decision."""


def combine_accepted(first: Decision, then: Decision) -> Decision:
    """Two accepting decisions of one stage as one: the first text, all header fields in order, the longest
    delay, the slowest link and the first cut (used by the pipeline when every policy accepts)."""
    kept = first if first.text or not then.text else then
    slows = [rate for rate in (first.slow, then.slow) if rate]
    return dataclasses.replace(
        kept,
        policy=kept.policy or (then.policy if then.effects else None),
        headers=first.headers + then.headers,
        delay=max(first.delay, then.delay),
        slow=min(slows) if slows else 0.0,
        cut_after=first.cut_after if first.cut_after is not None else then.cut_after,
    )


class _Standard(NamedTuple):
    code: str
    enhanced: str
    text: str


# Per stage: (reject, defer). Texts follow Postfix's "<what> rejected: <why>" shape.
_STANDARD: dict[Stage, tuple[_Standard, _Standard]] = {
    Stage.CONNECT: (
        _Standard("554", "5.7.1", "Service unavailable; access denied"),
        _Standard("421", "4.3.2", "Service not available, closing transmission channel"),
    ),
    Stage.HELO: (
        _Standard("550", "5.7.1", "Helo command rejected: Access denied"),
        _Standard("450", "4.7.1", "Helo command rejected: Try again later"),
    ),
    Stage.AUTH: (  # RFC 4954 section 6, RFC 3463 (the codes of a failed and of a temporarily failed AUTH)
        _Standard("535", "5.7.8", "Authentication credentials invalid"),
        _Standard("454", "4.7.0", "Temporary authentication failure"),
    ),
    Stage.MAIL: (
        _Standard("550", "5.7.1", "Sender address rejected: Access denied"),
        _Standard("450", "4.7.1", "Sender address rejected: Try again later"),
    ),
    Stage.RCPT: (
        _Standard("550", "5.7.1", "Recipient address rejected: Access denied"),
        _Standard("450", "4.7.1", "Recipient address rejected: Try again later"),
    ),
    Stage.DATA: (
        _Standard("554", "5.7.1", "Data command rejected"),
        _Standard("451", "4.7.1", "Data command deferred: Try again later"),
    ),
    Stage.END_OF_DATA: (
        _Standard("554", "5.7.1", "Message content rejected"),
        _Standard("451", "4.7.1", "Message deferred: Try again later"),
    ),
}
_OTHER = (
    _Standard("554", "5.7.1", "Command rejected"),
    _Standard("451", "4.7.1", "Command deferred: Try again later"),
)
_CLOSING_TEXT = "Service not available, closing transmission channel"


def reply_for(stage: Stage, decision: Decision) -> Reply | None:
    """The reply a rejection or deferral gives at ``stage``; None for an acceptance (see :func:`accepted_reply`)."""
    if decision.outcome is Outcome.ACCEPT:
        return None
    reject, defer = _STANDARD.get(stage, _OTHER)
    standard = reject if decision.outcome is Outcome.REJECT else defer
    code = decision.code or standard.code
    text = decision.text or standard.text
    if decision.outcome is Outcome.DEFER and decision.disconnect and code != "421":
        code = "421"
        text = decision.text or _CLOSING_TEXT
    return make_reply(code, decision.enhanced or standard.enhanced, text)


def accepted_reply(success: Reply, decision: Decision) -> Reply:
    """The success reply of a stage with an accepting decision's text, when it has one."""
    if decision.outcome is not Outcome.ACCEPT or not decision.text:
        return success
    return make_reply(success.basic or "250", success.enhanced, decision.text)
