"""The classification pipeline: parse, recognise the provider, match phrases, fall back to codes, decide.

Speed matters here (the classifier issue asks for 100,000 distinct replies per second on one core): what does
not depend on the reply (evidence lines, ranks of phrases, reason texts) is built once when the tables load, and
a call builds few objects. Every reply is parsed and scanned; the decision that follows is a pure function of a
small key (:data:`~smtplens.classifier.verdict.DecisionKey`) and is remembered per key, so most calls end with
one dictionary look-up and one tuple.
"""

from __future__ import annotations

from smtplens._accel import install as install_accelerator
from smtplens.classifier.matcher import Pattern, normalise
from smtplens.classifier.tables import CodeRule, Provider, Tables, tables
from smtplens.classifier.verdict import Decision, DecisionKey, Evidence, Verdict
from smtplens.i18n import ui
from smtplens.knowledge.catalogue import resolve_language
from smtplens.knowledge.reasons import Nature, Reason, reason_table
from smtplens.model import Reply, ReplyClass, Stage
from smtplens.reply import parse_reply

__all__ = ["classify"]

UNDEFINED = "undefined"
EXPIRED, NETWORK_ERROR = "expired", "network_error"
WEAK = -1  # the priority of weak phrases (rules/generic.toml)
NOT_FAILURES = frozenset({"delivered", "auto_reply", "feedback"})
RECIPIENT_REASONS = frozenset(
    {"user_unknown", "mailbox_disabled", "mailbox_full", "mailbox_moved", "too_many_recipients"}
)
# What a refusal of MAIL FROM means when its words name a recipient's or a local policy's reason: no recipient is
# known yet at that stage (RFC 5321 section 3.3), so "does not exist", "access denied" or "domain not found" there
# are about the envelope sender. Reasons about the client (blocklisted, rate_limited, auth_failed …) stay.
SENDER_AT_MAIL = frozenset(
    {"user_unknown", "mailbox_disabled", "mailbox_moved", "domain_invalid", "domain_no_mail", "policy_rejected"}
)
SENDER_REJECTED = "sender_rejected"
AFTER_DATA = frozenset({Stage.DATA, Stage.END_OF_DATA})
UNDEFINED_STATUS = "X.0.0"  # RFC 3463 section 3.1: other undefined status
DEFAULT_RETRY_AFTER = 1800  # RFC 5321 section 4.5.4.1: wait at least 30 minutes before retrying


def _match_text(lines: tuple[str, ...], raw: str) -> str:
    """What phrases are matched against: the whole input ``raw``, plus, for a multi-line reply, its ``lines``
    joined without their ``550-5.7.1`` prefixes so that phrases may cross line breaks."""
    if len(lines) > 1:
        return normalise(" ".join(lines) + " \n " + raw)
    return normalise(raw)


def _provider_by_host(tab: Tables, host: str) -> str | None:
    """The id of the provider of the longest host suffix of ``host`` in the tables (a suffix of two labels or
    more)."""
    name = host.lower().rstrip(".")
    at = 0
    while (dot := name.find(".", at)) >= 0:  # name[at:] still has two labels
        found = tab.host_index.get(name[at:])
        if found:
            return found.id
        at = dot + 1
    return None


def _provider_by_text(tab: Tables, markers: list[Pattern]) -> Provider:
    best = markers[0] if len(markers) == 1 else max(markers, key=lambda p: p.specificity)
    return tab.provider_index[best.reason]


def _best(hits: list[Pattern], provider: Provider | None) -> Pattern:
    """Highest priority, then the recognised provider's own phrase, then the longest; the first of equals.

    ``Pattern.rank`` orders the phrases as the key (priority, specificity) would; the provider's own phrases get
    ``OWN_PROVIDER`` on top, which ranks them between those two fields."""
    if len(hits) == 1:
        return hits[0]
    name = provider.name if provider is not None else None
    best, best_rank = hits[0], Pattern.RANK_FLOOR
    for p in hits:
        rank = p.rank + Pattern.OWN_PROVIDER if name is not None and p.provider == name else p.rank
        if rank > best_rank:
            best, best_rank = p, rank
    return best


def _speaking(hits: list[Pattern], provider: Provider) -> list[Pattern]:
    """The phrases found that may decide where the host or a marker names ``provider``: the generic ones and its
    own. Another provider's phrase says what that provider means by its words (QQ's "Mailbox unavailable or access
    denied" is its frequency limit; Cox means a mailbox it refuses)."""
    name = provider.name
    return [p for p in hits if p.provider is None or p.provider == name]


def _code_rule(tab: Tables, provider: Provider | None, basic: str | None, enhanced: str | None) -> CodeRule | None:
    """The first strong code rule (provider table before generic; concrete enhanced, detail, basic), else the
    first weak one. An enhanced code whose detail no table knows ("5.7.515" without its provider) says at least
    its subject (RFC 3463 section 2: the subject classifies the status, the detail refines it): the subject's
    "other or undefined" code (X.7.0) then stands before the basic code."""
    tables = (provider.codes, tab.codes) if provider is not None else (tab.codes,)
    if enhanced:
        detail = "X" + enhanced[1:]
        if not any(enhanced in table or detail in table for table in tables):
            subject = "X" + enhanced[1 : enhanced.index(".", 2)] + ".0"
            if subject != UNDEFINED_STATUS and subject in tab.codes:
                return tab.codes[subject]
        # "X.0.0" says only that the status is undefined: the basic code, where there is one, says more
        keys: tuple[str | None, ...] = (
            (basic, enhanced, detail) if detail == UNDEFINED_STATUS else (enhanced, detail, basic)
        )
    else:
        keys = (basic,)
    weak = None
    for table in tables:
        for key in keys:
            rule = table.get(key) if key else None
            if rule is not None:
                if rule.strong:
                    return rule
                weak = weak or rule
    return weak


def _decide(
    reason: Reason, reply_class: ReplyClass | None, code: str, lang: str, title: str
) -> tuple[bool, bool, int | None, tuple[str, ...]]:
    """permanent, retry, retry_after, notes (``code`` is the reply's codes as a note quotes them)."""
    if reason.id in NOT_FAILURES:
        return False, False, None, ()
    if reason.id == "expired":
        return True, False, None, ()
    if reason.nature is Nature.SOFT:
        notes: tuple[str, ...] = ()
        if reply_class is ReplyClass.PERMANENT:
            notes = (ui(lang, "note_soft_over_permanent", code=code, reason=title),)
        return False, True, reason.retry_after or DEFAULT_RETRY_AFTER, notes
    if reply_class is ReplyClass.TRANSIENT:
        notes = ()
        if reason.nature is Nature.HARD:
            notes = (ui(lang, "note_hard_but_transient", code=code, reason=title),)
        return False, True, DEFAULT_RETRY_AFTER, notes
    if reply_class is None and reason.id == UNDEFINED:
        return False, False, None, ()
    return True, False, None, ()


def _gave_up(pattern: Pattern, code_rule: CodeRule) -> bool:
    """A weak phrase saying the sending MTA gave up ("in the queue too long") outranks a code that names only a
    network failure (X.4.1 no answer from host): the failure lasted until the message expired, which is the
    more useful answer (the same reading as the bounce pipeline's for a ``failed`` 4.4.1 report). The lowest
    tier ("timed out", priority -2) does not: one attempt that timed out is no expiry."""
    return pattern.reason == EXPIRED and pattern.priority == WEAK and code_rule.reason == NETWORK_ERROR


SPECIFIC_PHRASE = 0.85  # the confidence of a verdict a phrase decided that is not weak (above: the provider's own)


def _phrase_confidence(pattern: Pattern, provider: Provider | None) -> float:
    if pattern.priority < 0:
        return 0.6
    return 0.95 if provider is not None and pattern.provider == provider.name else SPECIFIC_PHRASE


_MEMO_SIZE = 8192  # decisions remembered; the store is emptied when full (real streams need a few hundred)


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

    Speed: the reply is parsed and its text scanned every time; what follows depends only on the patterns found,
    the codes, the class, the stage, the provider of the host and the language (the key
    of :func:`_decision`), so it is remembered per key: a pure function of a few small values, not a cache of
    texts.
    """
    if lang != "en":
        lang = resolve_language(lang)
    parsed = reply if isinstance(reply, Reply) else parse_reply(reply)
    if stage is not None and parsed.stage is None:
        parsed = parsed._replace(stage=Stage(stage))
    # one unpacking instead of an attribute look-up per field
    basic, enhanced, reply_class, lines, reply_host, _, reply_stage, _, raw = parsed
    tab = tables()
    host = remote_host or reply_host
    key = (
        tab.matcher.scan(_match_text(lines, raw)),
        _provider_by_host(tab, host) if host else None,
        basic,
        enhanced,
        reply_class,
        reply_stage,
        lang,
    )
    memo = tab.decisions
    decided = memo.get(key)
    if decided is None:
        decided = _decision(tab, key)
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[key] = decided
    return _new_verdict(Verdict, (parsed,) + decided)  # noqa: RUF005 (compiled, one tuple; no list in between)


_new_verdict = tuple.__new__  # Verdict(parsed, *decided) without the Python-level __new__ of a NamedTuple


def _decision(tab: Tables, key: DecisionKey) -> Decision:
    """Everything a verdict says beyond its reply, from the key that :func:`classify` builds: the patterns
    found in the text, the provider id of the remote host, the basic and enhanced codes, the class, the SMTP
    stage the reply answered, the language."""
    found, host_provider, basic, enhanced, reply_class, stage, lang = key
    before_recipients = stage is Stage.CONNECT or stage is Stage.HELO  # no recipient and no message named yet
    hits, markers = tab.matcher.expand(found)
    provider = tab.provider_index[host_provider] if host_provider is not None else None
    if provider is None and markers:
        provider = _provider_by_text(tab, markers)
    if hits and provider is not None:
        hits = _speaking(hits, provider)
    if hits and before_recipients:
        # At the greeting (or its HELO) there is no recipient yet: mailbox reasons cannot be what the server means.
        hits = [p for p in hits if p.reason not in RECIPIENT_REASONS]
    pattern = _best(hits, provider) if hits else None
    if provider is None and pattern is not None and pattern.provider is not None:
        # a phrase only one provider uses names it as well as a marker would
        provider = tab.provider_by_name[pattern.provider]
    # The codes matter only where no phrase or only a weak one was found.
    code_rule = None if pattern is not None and pattern.priority >= 0 else _code_rule(tab, provider, basic, enhanced)
    if before_recipients and (code_rule is None or not code_rule.strong):
        # What a failure reply at the greeting means when nothing more specific does (RFC 5321 section 3.1); a
        # refused HELO/EHLO refuses the client too, before any recipient or message.
        code = basic or enhanced
        code_rule = (tab.greeting.get(code[0]) if code else None) or code_rule
    if pattern is not None and (
        pattern.priority >= 0 or code_rule is None or not code_rule.strong or _gave_up(pattern, code_rule)
    ):
        reason_id, deciding, confidence = pattern.reason, pattern.evidence, _phrase_confidence(pattern, provider)
    elif code_rule is not None:
        reason_id, deciding, confidence = code_rule.reason, code_rule.evidence, 0.7 if code_rule.strong else 0.4
    else:
        reason_id, deciding, confidence = UNDEFINED, _NOTHING, 0.0
    if stage is Stage.MAIL and reason_id in SENDER_AT_MAIL:
        reason_id = SENDER_REJECTED
        deciding = deciding._replace(reason=SENDER_REJECTED, detail=_AT_MAIL + deciding.detail)
    after_data = provider.after_data.get(reason_id) if provider is not None and stage in AFTER_DATA else None
    if after_data is not None:
        # The provider accepted the address at RCPT TO: what its words say about the recipient means else here.
        reason_id = after_data.means
    info = tab.english[reason_id] if lang == "en" else reason_table().info(reason_id, lang)
    code_text = f"{basic or ''} {enhanced or ''}".strip()
    permanent, retry, retry_after, notes = _decide(info.reason, reply_class, code_text, lang, info.title)
    evidence: tuple[Evidence, ...] = (deciding,) if provider is None else (tab.provider_evidence[provider.id], deciding)
    if after_data is not None:
        evidence += (after_data.evidence,)
    if notes:
        evidence += tuple(Evidence("override", note, reason_id, "", "") for note in notes)
    return (
        info,
        permanent,
        retry,
        retry_after,
        provider.name if provider is not None else None,
        evidence,
        confidence,
        notes,
    )


_AT_MAIL = "in reply to MAIL FROM, so about the sender: "  # RFC 5321 section 3.3
_NOTHING = Evidence("none", "no phrase or code decided", UNDEFINED, "", "")


# The compiled accelerator (smtplens._accel): a Cython build of this very file replaces these entry points when it
# was built from this file as it is now; the interpreted ones stay reachable (tests compare both).
_pure_classify = classify
install_accelerator("engine", globals(), ("classify",))
