"""Spam rules at end of data: a scored rules table, optionally a real filter (spamd or rspamd), one verdict.

``SpamPolicy(rules=DEFAULT_RULES, threshold=5.0, spam_filter=None)`` adds the scores of the rules that match;
at or over ``threshold`` the message is refused with ``554 5.7.1 Message rejected as spam (<rule names>)``
(the rule names show in the reply and so in the transcript; Proton Mail's ``550 5.7.1 Rejected by spam filter``,
corpus reply r0126, is the same idea). A :class:`SpamRule` matches a substring (case-insensitive) or a regular
expression in one header field, the body or the whole message; :data:`DEFAULT_RULES` holds GTUBE, the test
string every SpamAssassin and rspamd install knows.

With ``spam_filter`` (:class:`~smtplens.server.policies.spamd.SpamdClient`,
:class:`~smtplens.server.policies.rspamd.RspamdClient`) the message is also sent there when the local rules did
not decide: its reject gives the same 554 with its symbols, its deferral (rspamd's soft reject or greylist)
``451 4.7.1 Try again later``, its "add header" an accepted message with ``X-Spam-Flag: YES``. A filter that
cannot be reached defers with ``451 4.7.1 Spam filter unavailable, try again later`` (or accepts, with
``on_filter_error="accept"``): a broken filter is never a permanent refusal. Accepted messages get an
``X-Spam-Status`` field (SpamAssassin's layout: ``No, score=0.0 required=5.0 tests=none``) when
``add_status`` is true.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.policies.headers import header_fields
from smtplens.server.policies.spamfilter import SpamAction, SpamFilter, SpamFilterError, SpamVerdict
from smtplens.server.session import Context

__all__ = ["DEFAULT_RULES", "GTUBE", "SpamPolicy", "SpamRule", "matching_rules"]

log = logging.getLogger("smtplens.server.spam")

#: The Generic Test for Unsolicited Bulk Email (SpamAssassin's GTUBE page; rspamd knows it too).
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

Where = Literal["header", "body", "message"]
_REPLY_NAMES = 8  # rule names shown in the reply; the X-Spam-Status field lists all


@dataclass(frozen=True, slots=True)
class SpamRule:
    """One rule: ``pattern`` looked for in ``where`` (``header`` needs ``header``, the field name)."""

    name: str
    score: float
    pattern: str
    where: Where = "body"
    header: str | None = None
    regex: bool = False
    source: str = ""
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.where == "header" and not self.header:
            raise ValueError(f"spam rule {self.name}: a header rule needs the header field's name")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"spam rule name {self.name!r}: use letters, digits, '_', '.' and '-'")
        flags = re.IGNORECASE
        compiled = re.compile(self.pattern if self.regex else re.escape(self.pattern), flags)
        object.__setattr__(self, "_compiled", compiled)

    def matches(self, text: str) -> bool:
        return self._compiled.search(text) is not None


DEFAULT_RULES: tuple[SpamRule, ...] = (
    SpamRule("GTUBE", 1000.0, GTUBE, "message", source="SpamAssassin GTUBE test string (spamassassin.apache.org)"),
)


def matching_rules(rules: Iterable[SpamRule], message: bytes) -> tuple[SpamRule, ...]:
    """The rules that match ``message``. Pure."""
    text = message.decode("utf-8", "replace")
    _, sep, body = text.partition("\r\n\r\n")
    if not sep:
        _, _, body = text.partition("\n\n")
    headers = header_fields(message)
    hits: list[SpamRule] = []
    for rule in rules:
        if rule.where == "header":
            values = [str(value) for value in headers.get_all(rule.header or "") or []]
            found = any(rule.matches(value) for value in values)
        else:
            found = rule.matches(body if rule.where == "body" else text)
        if found:
            hits.append(rule)
    return tuple(hits)


class SpamPolicy:
    """See the module docstring."""

    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.END_OF_DATA})

    def __init__(
        self,
        rules: Iterable[SpamRule] = DEFAULT_RULES,
        *,
        threshold: float = 5.0,
        spam_filter: SpamFilter | None = None,
        on_filter_error: Literal["defer", "accept"] = "defer",
        add_status: bool = True,
        timeout: float | None = None,
        name: str = "spam",
    ) -> None:
        self.name = name
        self.timeout = timeout  # the pipeline's budget for this policy; None: the pipeline's own
        self.rules = tuple(rules)
        self.threshold = threshold
        self.spam_filter = spam_filter
        self.on_filter_error = on_filter_error
        self.add_status = add_status

    def _spam(self, names: tuple[str, ...]) -> Decision:
        listed = ", ".join(names[:_REPLY_NAMES]) + (", ..." if len(names) > _REPLY_NAMES else "")
        listed = listed or "filter"
        return Decision.reject(
            code="554", enhanced="5.7.1", text=f"Message rejected as spam ({listed})", policy=self.name
        )

    def _accepted(self, score: float, threshold: float, names: tuple[str, ...], flag: bool) -> Decision:
        headers: list[str] = []
        if flag:
            headers.append("X-Spam-Flag: YES")
        if self.add_status:
            tests = ",\r\n\t".join(",".join(names[i : i + 6]) for i in range(0, len(names), 6)) or "none"
            verdict = "Yes" if flag else "No"
            headers.append(f"X-Spam-Status: {verdict}, score={score:.1f} required={threshold:.1f} tests={tests}")
        return Decision.accept(headers=tuple(headers), policy=self.name)

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        if stage is not Stage.END_OF_DATA or context.message is None:
            return None
        hits = matching_rules(self.rules, context.message)
        score = sum(rule.score for rule in hits)
        names = tuple(rule.name for rule in hits)
        if hits and score >= self.threshold:
            return self._spam(names)
        if self.spam_filter is None:
            return self._accepted(score, self.threshold, names, False)
        try:
            verdict = await self.spam_filter.scan(context.message, context.envelope)
        except SpamFilterError as exc:
            log.warning("spam filter %s failed: %s", self.spam_filter.name, exc)
            if self.on_filter_error == "accept":
                return self._accepted(score, self.threshold, names, False)
            return Decision.defer(
                code="451", enhanced="4.7.1", text="Spam filter unavailable, try again later", policy=self.name
            )
        return self._filtered(verdict, score, names)

    def _filtered(self, verdict: SpamVerdict, score: float, names: tuple[str, ...]) -> Decision:
        symbols = names + verdict.symbols
        if verdict.action is SpamAction.REJECT:
            return self._spam(symbols)
        if verdict.action is SpamAction.DEFER:
            return Decision.defer(code="451", enhanced="4.7.1", text="Try again later", policy=self.name)
        flag = verdict.action is SpamAction.ADD_HEADER
        return self._accepted(score + verdict.score, verdict.threshold, symbols, flag)
