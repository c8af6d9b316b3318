"""The classification pipeline: parse, recognise the provider, match phrases, fall back to codes, decide."""

from __future__ import annotations

from smtplens.classifier.matcher import Pattern, normalise
from smtplens.classifier.tables import CodeRule, Provider, Tables, tables
from smtplens.classifier.verdict import Evidence, Verdict
from smtplens.i18n import ui
from smtplens.knowledge.catalogue import resolve_language
from smtplens.knowledge.reasons import Nature, Reason, reason_table
from smtplens.model import Reply, ReplyClass, Stage
from smtplens.reply import parse_reply

__all__ = ["classify"]

UNDEFINED = "undefined"
NOT_FAILURES = frozenset({"delivered", "auto_reply", "feedback"})
DEFAULT_RETRY_AFTER = 1800  # RFC 5321 section 4.5.4.1: wait at least 30 minutes before retrying


def _match_text(reply: Reply) -> str:
    """What phrases are matched against: the whole input, plus, for a multi-line reply, its lines joined without
    their ``550-5.7.1`` prefixes so that phrases may cross line breaks."""
    if len(reply.text) > 1:
        return normalise(" ".join(reply.text) + " \n " + reply.raw)
    return normalise(reply.raw)


def _provider_by_host(tab: Tables, host: str | None) -> Provider | None:
    if not host:
        return None
    labels = host.lower().rstrip(".").split(".")
    for i in range(len(labels) - 1):
        found = tab.host_index.get(".".join(labels[i:]))
        if found:
            return found
    return None


def _provider_by_text(tab: Tables, markers: list[Pattern]) -> Provider | None:
    if not markers:
        return None
    best = max(markers, key=lambda p: p.specificity)
    return tab.provider_index[best.reason]


def _best(hits: list[Pattern], provider: Provider | None) -> Pattern:
    """Highest priority, then the recognised provider's own phrase, then the longest."""
    if len(hits) == 1:
        return hits[0]
    name = provider.name if provider else None
    best, best_key = hits[0], (-99, 0, 0)
    for p in hits:
        key = (p.priority, p.provider is not None and p.provider == name, p.specificity)
        if key > best_key:
            best, best_key = p, key
    return best


def _code_rule(tab: Tables, provider: Provider | None, reply: Reply) -> CodeRule | None:
    """The first strong code rule (provider table before generic; concrete enhanced, detail, basic), else the
    first weak one."""
    enhanced, basic = reply.enhanced, reply.basic
    keys = (enhanced, "X" + enhanced[1:], basic) if enhanced else (basic,)
    weak = None
    for table in (provider.codes, tab.codes) if provider is not None else (tab.codes,):
        for key in keys:
            rule = table.get(key) if key else None
            if rule is not None:
                if rule.strong:
                    return rule
                weak = weak or rule
    return weak


def _decide(
    reason: Reason, reply_class: ReplyClass | None, lang: str, code: str | None, title: str
) -> tuple[bool, bool, int | None, list[str]]:
    """permanent, retry, retry_after, notes."""
    notes: list[str] = []
    if reason.id in NOT_FAILURES:
        return False, False, None, notes
    if reason.id == "expired":
        return True, False, None, notes
    if reason.nature is Nature.SOFT:
        if reply_class is ReplyClass.PERMANENT:
            notes.append(ui(lang, "note_soft_over_permanent", code=code or "", reason=title))
        return False, True, reason.retry_after or DEFAULT_RETRY_AFTER, notes
    if reply_class is ReplyClass.TRANSIENT:
        if reason.nature is Nature.HARD:
            notes.append(ui(lang, "note_hard_but_transient", code=code or "", reason=title))
        return False, True, DEFAULT_RETRY_AFTER, notes
    if reply_class is None and reason.id == UNDEFINED:
        return False, False, None, notes
    return True, False, None, notes


def _confidence(kind: str, pattern: Pattern | None, rule: CodeRule | None, provider_match: bool) -> float:
    if kind == "phrase" and pattern is not None:
        if pattern.priority < 0:
            return 0.6
        return 0.95 if provider_match else 0.85
    if kind == "code" and rule is not None:
        return 0.7 if rule.strong else 0.4
    return 0.0


def classify(
    reply: str | bytes | Reply,
    *,
    stage: Stage | str | None = None,
    remote_host: str | None = None,
    lang: str = "en",
) -> Verdict:
    """Classify a reply (text, bytes or a parsed :class:`Reply`) into a :class:`Verdict`.

    ``stage`` and ``remote_host`` add what the caller knows beyond the text. The text outweighs the code where
    they disagree (a ``550`` that says "rate limit" is retried), and the verdict's ``notes`` say so.
    Never raises for any reply content; unknown input gives the reason ``undefined``.
    """
    if lang != "en":
        lang = resolve_language(lang)
    parsed = reply if isinstance(reply, Reply) else parse_reply(reply)
    if stage is not None and parsed.stage is None:
        parsed = parsed._replace(stage=Stage(stage))
    tab = tables()
    hits, markers = tab.matcher.find(_match_text(parsed))
    host = remote_host or parsed.remote_host
    provider = _provider_by_host(tab, host) or _provider_by_text(tab, markers)
    evidence: list[Evidence] = [] if provider is None else [tab.provider_evidence[provider.id]]
    pattern = _best(hits, provider) if hits else None
    if provider is None and pattern is not None and pattern.provider is not None:
        # a phrase only one provider uses names it as well as a marker would
        provider = tab.provider_by_name[pattern.provider]
        evidence.append(tab.provider_evidence[provider.id])
    code_rule = _code_rule(tab, provider, parsed)
    if pattern is not None and (pattern.priority >= 0 or code_rule is None or not code_rule.strong):
        reason_id, kind = pattern.reason, "phrase"
        evidence.append(Evidence("phrase", pattern.phrase, pattern.reason, pattern.table, pattern.source))
    elif code_rule is not None:
        reason_id, kind = code_rule.reason, "code"
        evidence.append(Evidence("code", code_rule.code, code_rule.reason, code_rule.table, code_rule.source))
    else:
        reason_id, kind = UNDEFINED, "none"
        evidence.append(_NOTHING)
    info = reason_table().info(reason_id, lang)
    code = f"{parsed.basic or ''} {parsed.enhanced or ''}".strip()
    permanent, retry, retry_after, notes = _decide(info.reason, parsed.reply_class, lang, code, info.title)
    for note in notes:
        evidence.append(Evidence("override", note, reason_id, "", ""))
    provider_match = pattern is not None and provider is not None and pattern.provider == provider.name
    return Verdict(
        reply=parsed,
        info=info,
        permanent=permanent,
        retry=retry,
        retry_after=retry_after,
        provider=provider.name if provider else None,
        evidence=tuple(evidence),
        confidence=_confidence(kind, pattern, code_rule, provider_match),
        notes=tuple(notes),
    )


_NOTHING = Evidence("none", "no phrase or code decided", UNDEFINED, "", "")
