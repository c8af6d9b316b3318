"""classify through the public API: verdict fields, text over code, providers, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtplens import Verdict, classify, parse_reply
from smtplens.knowledge.reasons import reason_table
from tests.conftest import EXPLAIN_FIELDS


def test_unknown_user_is_a_hard_bounce() -> None:
    v = classify("550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in virtual mailbox table")
    assert v.reason == "user_unknown"
    assert (v.permanent, v.hard_bounce, v.retry, v.retry_after) == (True, True, False, None)
    assert v.evidence and v.evidence[-1].kind in ("phrase", "code")
    assert v.action and v.operator_action


def test_421_greeting_is_transient_and_retried() -> None:
    v = classify("421 4.3.2 Service not available, closing transmission channel")
    assert not v.permanent
    assert v.retry
    assert v.retry_after is not None and v.retry_after >= 60


def test_text_outweighs_code_for_rate_limits() -> None:
    v = classify("550 5.4.5 Daily user sending limit exceeded. You have sent to too many recipients this hour")
    assert v.reason == "rate_limited"
    assert not v.permanent and v.retry
    assert v.notes, "the verdict must say that the text outweighed the 5xx code"


@pytest.mark.parametrize(
    ("reply", "reason", "code"),
    [
        # a detail that no table knows: the subject of the enhanced code speaks before the basic code
        ("550 5.7.999 Rejected", "policy_rejected", "X.7.0"),
        ("550 5.2.99 Rejected", "mailbox_disabled", "X.2.0"),
        ("550 5.4.99 Rejected", "network_error", "X.4.0"),
        # a known detail and an undefined subject stay as they were
        ("550 5.7.1 Rejected", "policy_rejected", "X.7.1"),
        ("550 5.0.947 Rejected", "user_unknown", "550"),
        # "X.0.0" says only that the status is undefined: the basic code says more
        ("552 5.0.0 Account(s) <a@example.org> cannot take this", "mailbox_full", "552"),
        ("451 4.0.0 Try later", "system_error", "451"),
        ("5.0.0 Rejected", "undefined", "X.0.0"),
    ],
)
def test_an_unknown_or_undefined_detail_falls_back(reply: str, reason: str, code: str) -> None:
    v = classify(reply)
    assert v.reason == reason
    assert [e.detail for e in v.evidence if e.kind == "code"] == [code]


def test_greylisting_retries_after_minutes() -> None:
    v = classify("450 4.2.0 <bob@example.com>: Recipient address rejected: Greylisted, see http://postgrey.example/")
    assert v.reason == "greylisted"
    assert v.retry and v.retry_after is not None and 60 <= v.retry_after <= 3600


def test_full_mailbox_retries_after_hours() -> None:
    v = classify("552 5.2.2 The email account that you tried to reach is over quota.")
    assert v.reason == "mailbox_full"
    assert v.retry and v.retry_after is not None and v.retry_after >= 3600
    assert not v.hard_bounce


def test_provider_from_host_and_text() -> None:
    v = classify("550 5.7.1 rejected", remote_host="gmail-smtp-in.l.google.com")
    assert v.provider is not None and "Google" in v.provider
    w = classify("421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to user complaints")
    assert w.provider is not None and "Yahoo" in w.provider
    assert w.retry


def test_stage_from_caller() -> None:
    v = classify("550 5.1.1 no such user", stage="rcpt")
    assert v.reply.stage is not None and v.reply.stage.value == "rcpt"


def test_languages() -> None:
    en = classify("550 5.1.1 User unknown")
    de = classify("550 5.1.1 User unknown", lang="de")
    assert en.reason == de.reason and en.action != de.action
    assert de.lang == "de"


def test_parsed_reply_accepted() -> None:
    assert classify(parse_reply("552 5.3.4 Message size exceeds fixed limit")).reason == "message_too_large"


def test_json_contract() -> None:
    d = classify("host mx.example.com[192.0.2.1] said: 550 5.1.1 no such user (in reply to RCPT TO command)").to_dict()
    for key in EXPLAIN_FIELDS:
        assert key in d
    assert d["stage"] == "rcpt"


@pytest.mark.parametrize("bad", ["", " ", "\x00\x00", "garbage without code", "é" * 1000, "5" * 1_000_000])
def test_bad_input_is_undefined_or_classified(bad: str) -> None:
    v = classify(bad)
    assert v.reason in reason_table().reasons


def test_bytes_non_utf8() -> None:
    v = classify(b"550 5.1.1 caf\xe9 unknown user")
    assert v.reason == "user_unknown"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary()))
def test_never_raises(data: str | bytes) -> None:
    assert isinstance(classify(data), Verdict)


def test_every_reason_has_texts_in_every_language() -> None:
    table = reason_table()
    for rid in table.reasons:
        for lang in ("en", "de", "fr", "es"):
            info = table.info(rid, lang)
            assert info.fallback == (), (rid, lang)


def _fixture_rows() -> list[tuple[str, str]]:
    from tests.conftest import FIXTURES

    rows = []
    for line in (FIXTURES / "replies-classified.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            text, reason = line.split("\t")
            rows.append((text.replace("\\n", "\n"), reason))
    return rows


@pytest.mark.parametrize(("text", "reason"), _fixture_rows())
def test_own_samples(text: str, reason: str) -> None:
    assert classify(text).reason == reason


# Rule samples that show a phrase inside a reply where something stronger decides: the reason they get instead.
_SAMPLES_DECIDED_ELSEWHERE = {
    # the first reply of the transcript decides
    "550 5.1.1 <userunknown@bouncehammer.jp>... User Unknown 503 5.0.0 Need RCPT (recipient)": "user_unknown",
    # a weak phrase: the code 421 decides
    "421 Temporary failure, please try again later.": "service_unavailable",
    # NXDOMAIN: the domain does not exist
    "DNS Error: 80335577 DNS type 'mx' lookup of example.jp responded with code NXDOMAIN Domain name not found: "
    "example.jp": "domain_invalid",
}


def _rule_samples() -> list[tuple[str, str, str | None]]:
    """(sample, the rule's reason, a host of the rule's provider) of every rule with a sample."""
    import tomllib

    from tests.conftest import ROOT

    rows = []
    for path in sorted((ROOT / "src" / "smtplens" / "classifier" / "rules").rglob("*.toml")):
        table = tomllib.loads(path.read_text(encoding="utf-8"))
        host = f"mx.{table['hosts'][0]}" if table.get("hosts") else None
        rows += [(rule["sample"], rule["reason"], host) for rule in table.get("rule", []) if "sample" in rule]
    return rows


@pytest.mark.parametrize(("sample", "reason", "host"), _rule_samples())
def test_a_rule_s_sample_gets_the_rule_s_reason(sample: str, reason: str, host: str | None) -> None:
    """A rule's sample (a real reply the rule was written for) is classified as the rule says, from its
    provider's host where the rule is a provider's: a phrase of one rule must not be taken over by a broader
    one elsewhere (a provider's phrase too generic for other servers' replies, for one)."""
    assert classify(sample, remote_host=host).reason == _SAMPLES_DECIDED_ELSEWHERE.get(sample, reason)


def test_corpus_agreement_does_not_regress() -> None:
    """Agreement with the undisputed labels of ../shared/corpus/replies (bench/accuracy_replies.py has details)."""
    import json
    import tomllib

    from tests.conftest import ROOT, shared_path

    path = shared_path("corpus", "replies", "replies-dev.jsonl")
    review = tomllib.loads((ROOT / "bench" / "label_review.toml").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [r for r in rows if r["id"] not in review]
    agree = sum(classify(r["reply"]).reason == r["label"] for r in kept)
    assert agree / len(kept) >= 0.95
    disputed_ok = sum(classify(r["reply"]).reason == review[r["id"]]["ours"] for r in rows if r["id"] in review)
    assert disputed_ok == len(review), "a disputed label's documented answer changed: update bench/label_review.toml"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("554 mx.example.com ESMTP not accepting messages", "blocklisted"),
        ("554 No SMTP service here", "blocklisted"),
        ("421 mx.example.com busy, try later", "service_unavailable"),
        ("521 5.3.2 mx.example.net does not accept mail", "domain_no_mail"),
    ],
)
def test_greeting_failures(text: str, reason: str) -> None:
    """At the greeting no recipient exists yet: a refusal concerns the client, not a mailbox."""
    assert classify(text, stage="connect").reason == reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("550 Go away", "blocklisted"),
        ("550 5.7.1 Unknown user or bad client", "blocklisted"),
        ("504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname", "reverse_dns"),
        ("421 4.3.2 Service shutting down", "service_unavailable"),
    ],
)
def test_helo_failures(text: str, reason: str) -> None:
    """A refused HELO/EHLO comes before any recipient too (Exim's "SMTP error from remote mail server after HELO
    …: 550 Go away"): it refuses the client, not a mailbox."""
    assert classify(text, stage="helo").reason == reason


@pytest.mark.parametrize(
    ("text", "at_rcpt"),
    [
        ("553 5.1.0 alice example.net does not exist", "user_unknown"),
        ("550 5.7.1 Access denied", "policy_rejected"),
        ("550 5.1.2 <x@nowhere.example>: Domain not found", "domain_invalid"),
    ],
)
def test_a_refused_mail_from_is_about_the_sender(text: str, at_rcpt: str) -> None:
    """At MAIL FROM no recipient is known yet (RFC 5321 section 3.3): words that would name a missing mailbox or a
    local policy there refuse the envelope sender, and the recipient's address is not suppressed."""
    assert classify(text, stage="rcpt").reason == at_rcpt
    v = classify(text, stage="mail")
    assert v.reason == "sender_rejected"
    assert not v.hard_bounce
    assert "MAIL FROM" in v.evidence[-1].detail
    assert classify(f"{text} (in reply to MAIL FROM command)").reason == "sender_rejected"


def test_client_reasons_at_mail_from_stay() -> None:
    blocked = "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"
    assert classify(blocked, stage="mail").reason == "blocklisted"
    text = "421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to unexpected volume or user complaints"
    assert classify(text, stage="mail").reason == "rate_limited"


# The classifier remembers its decision per key (patterns found, codes, class, greeting or not, provider of the
# host, language). If that key missed something a decision depends on, two replies sharing a key would get the
# verdict of whichever came first: classifying the same replies in two orders, each time from an empty memory,
# must give the same verdicts.

_MEMO_CASES: list[dict[str, str]] = [
    {},
    {"lang": "de"},
    {"stage": "connect"},
    {"stage": "mail"},
    {"remote_host": "mx.google.com"},
]


def _verdicts_in_order(items: list[tuple[str | bytes, dict[str, str]]]) -> list[Verdict]:
    from smtplens.classifier.tables import tables

    tables().decisions.clear()
    return [classify(text, **kwargs) for text, kwargs in items]


def _assert_order_free(items: list[tuple[str | bytes, dict[str, str]]]) -> None:
    forward = _verdicts_in_order(items)
    backward = _verdicts_in_order(items[::-1])[::-1]
    assert forward == backward
    assert [v.to_dict() for v in forward] == [v.to_dict() for v in backward]


def test_remembered_decisions_do_not_depend_on_order() -> None:
    import json

    from tests.conftest import shared_path

    texts = [text for text, _ in _fixture_rows()]
    path = shared_path("corpus", "replies", "replies-dev.jsonl")
    texts += [json.loads(line)["reply"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    _assert_order_free([(text, kwargs) for text in texts for kwargs in _MEMO_CASES])


_reply_pieces = st.sampled_from(
    [
        "550 ",
        "421 ",
        "5.1.1 ",
        "4.7.0 ",
        "user unknown ",
        "mailbox full ",
        "rate limit ",
        "spam ",
        "gmail ",
        "[TS03] ",
        "host mx.example[192.0.2.1] said: ",
        "(in reply to RCPT TO command)",
        "\n",
        "x",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_reply_pieces, max_size=8).map("".join), min_size=2, max_size=8))
def test_remembered_decisions_do_not_depend_on_order_generated(texts: list[str]) -> None:
    _assert_order_free([(text, kwargs) for text in texts for kwargs in _MEMO_CASES])


def test_another_provider_s_phrase_does_not_decide_where_the_host_names_a_provider() -> None:
    """QQ's frequency limit reads "Mailbox unavailable or access denied"; Cox writes the same for a mailbox it
    refuses. The host decides whose words they are; without one, QQ's table still names QQ."""
    text = "550 Mailbox unavailable or access denied - <kate@cox.com>"
    cox = classify(text, remote_host="post1.cox.com")
    assert (cox.provider, cox.reason) == ("Cox", "user_unknown")
    qq = classify(text, remote_host="mx3.qq.com")
    assert (qq.provider, qq.reason) == ("Tencent QQ", "rate_limited")
    assert classify(text).reason == "rate_limited"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("1", "relay_denied"),
        ("2", "user_unknown"),
        ("3", "mailbox_disabled"),
        ("4", "mailbox_full"),
        ("5", "rate_limited"),
        ("9", "blocklisted"),
        ("10", "content_rejected"),
    ],
)
def test_i_ua_error_page_number_decides(number: str, reason: str) -> None:
    """I.UA's refusals name an error page; its number is the cause, whatever short text stands before it (and
    err/10/ is not err/1/)."""
    verdict = classify(f"550 Message rejected. See http://mail.i.ua/err/{number}/", remote_host="mx3.email.ua")
    assert (verdict.provider, verdict.reason) == ("I.UA", reason)
