"""SPF (RFC 7208): the record parser, macro expansion and check_host() over an in-memory resolver."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress

import pytest

from smtplens.diagnose.dns import Answer, DnsTempError
from smtplens.diagnose.spf import (
    Qualifier,
    SpfError,
    SpfLimits,
    SpfOutcome,
    SpfResult,
    SpfSyntaxError,
    check_host,
    expand,
    is_spf_record,
    mail_from_identity,
    parse_domain_spec,
    parse_macro_string,
    parse_record,
    spf_records,
)
from smtplens.diagnose.spf.names import ip_macro, truncate
from smtplens.errors import SmtplensError

# -- records ------------------------------------------------------------------------------------------------


def test_parse_record_terms() -> None:
    record = parse_record(
        "v=spf1 +a mx/24 -ip4:192.0.2.0/24 ip6:2001:DB8::/32 include:_spf.example.com"
        " ~exists:%{i}.bl.example.com ptr a:mail.example.com/28//64 ?all redirect=example.net exp=why.%{d} x-foo=bar"
    )
    kinds = [(m.kind, m.qualifier) for m in record.mechanisms]
    assert kinds == [
        ("a", Qualifier.PASS),
        ("mx", Qualifier.PASS),
        ("ip4", Qualifier.FAIL),
        ("ip6", Qualifier.PASS),
        ("include", Qualifier.PASS),
        ("exists", Qualifier.SOFTFAIL),
        ("ptr", Qualifier.PASS),
        ("a", Qualifier.PASS),
        ("all", Qualifier.NEUTRAL),
    ]
    mx, ip4, ip6, a = record.mechanisms[1], record.mechanisms[2], record.mechanisms[3], record.mechanisms[7]
    assert (mx.domain, mx.cidr4, mx.cidr6) == (None, 24, 128)
    assert ip4.network == ipaddress.ip_network("192.0.2.0/24")
    assert ip6.network == ipaddress.ip_network("2001:db8::/32")
    assert a.domain is not None and (a.domain.text, a.cidr4, a.cidr6) == ("mail.example.com", 28, 64)
    assert record.redirect is not None and record.redirect.text == "example.net"
    assert record.exp is not None and record.exp.letters == {"d"}
    assert [m.name for m in record.unknown_modifiers] == ["x-foo"]
    # a, mx, include, exists, ptr, a and redirect query DNS (RFC 7208 section 4.6.4); ip4, ip6, all, exp do not
    assert record.dns_terms == 7
    assert str(record.mechanisms[5]) == "~exists:%{i}.bl.example.com"
    assert record.mechanisms[5].position == record.text.index("~exists")


def test_terms_are_case_insensitive_and_spaces_repeat() -> None:
    record = parse_record("V=SPF1  A:Example.COM   -ALL   REDIRECT=example.org ")
    assert [m.kind for m in record.mechanisms] == ["a", "all"]
    assert record.redirect is not None


@pytest.mark.parametrize(
    ("text", "spf"),
    [
        ("v=spf1", True),
        ("V=Spf1 -all", True),
        ("v=spf1 ", True),
        ("v=spf10", False),
        ("v=spf1-all", False),
        ("spf2.0/pra -all", False),
        (" v=spf1 -all", False),
    ],
)
def test_is_spf_record(text: str, spf: bool) -> None:
    assert is_spf_record(text) is spf


def test_spf_records_picks_only_spf() -> None:
    assert spf_records(["google-site-verification=x", "v=spf1 -all", "v=spf10"]) == ["v=spf1 -all"]


@pytest.mark.parametrize(
    ("record", "problem", "term", "column"),
    [
        ("v=spf1 ip4:192.0.2.1/33 -all", "CIDR length 33 is larger than 32", "ip4:192.0.2.1/33", 21),
        ("v=spf1 a/024", "leading zero", "a/024", 9),
        ("v=spf1 a/24/64", "malformed CIDR length", "a/24/64", 9),
        ("v=spf1 ip4:192.0.2", "not a complete IPv4 address", "ip4:192.0.2", 12),
        ("v=spf1 ip6:2001:db8::/64//64", "malformed CIDR length", "ip6:2001:db8::/64//64", 22),
        ("v=spf1 -all moo", "unknown mechanism 'moo'", "moo", 13),
        ("v=spf1 all:x", "'all' takes no argument", "all:x", 11),
        ("v=spf1 include", "needs ':' and a domain-spec", "include", 15),
        ("v=spf1 exists:example.com/24", "takes no CIDR length", "exists:example.com/24", 26),
        ("v=spf1 a:192.0.2.1", "use ip4:192.0.2.1", "a:192.0.2.1", 10),
        ("v=spf1 mx:example.123", "all numeric", "mx:example.123", 11),
        ("v=spf1 a:%{x}.example.com", "unknown macro letter 'x'", "a:%{x}.example.com", 10),
        ("v=spf1 a:%{c}.example.com", "allowed only in explanation text", "a:%{c}.example.com", 10),
        ("v=spf1 exists:%{l0}.example.com", "keeps zero parts", "exists:%{l0}.example.com", 15),
        ("v=spf1 exists:foo%.example.com", "'%' must be followed by", "exists:foo%.example.com", 18),
        ("v=spf1 exp=a.example.com exp=b.example.com", "'exp' modifier appears more than once", None, 26),
        ("v=spf1 redirect=", "redirect= needs a domain-spec", "redirect=", 17),
        ("v=spf1 1x=y", "a modifier name starts with a letter", "1x=y", 8),
        ("v=spf1 x=%y", "'%' must be followed by", "x=%y", 10),
        ("v=spf1 -all\tmx", "control character '\\t'", None, 12),
        ("v=spf1 a:exämple.com", "non-ASCII character", None, 12),
    ],
)
def test_syntax_errors_say_what_and_where(record: str, problem: str, term: str | None, column: int) -> None:
    with pytest.raises(SpfSyntaxError) as info:
        parse_record(record)
    error = info.value
    assert problem in error.problem
    assert error.text == record
    if term is not None:
        assert error.term == term
    assert error.position is not None and error.position + 1 == column, str(error)
    assert f"column {column}" in str(error)
    assert isinstance(error, SmtplensError)


@pytest.mark.parametrize(
    "spec", ["example.com", "example.com.", "%{d}", "%{ir}.%{v}._spf.%{d2}", "foo:bar/baz.example.com", "a.xn--p1ai"]
)
def test_valid_domain_specs(spec: str) -> None:
    assert parse_domain_spec(spec).text == spec


@pytest.mark.parametrize("spec", ["", "museum", "museum.", "example.-com", "example.com:25", "%{d}.123"])
def test_invalid_domain_specs(spec: str) -> None:
    with pytest.raises(SpfSyntaxError):
        parse_domain_spec(spec)


# -- macros -------------------------------------------------------------------------------------------------

# RFC 7208 section 7.4: sender strong-bad@email.example.com, client 192.0.2.3 (or 2001:db8::cb01).
RFC_VALUES = {
    "s": "strong-bad@email.example.com",
    "l": "strong-bad",
    "o": "email.example.com",
    "d": "email.example.com",
    "i": "192.0.2.3",
    "v": "in-addr",
}


@pytest.mark.parametrize(
    ("macro", "expansion"),
    [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
    ],
)
def test_rfc7208_section_7_4_examples(macro: str, expansion: str) -> None:
    assert expand(parse_macro_string(macro), RFC_VALUES) == expansion


def test_rfc7208_section_7_4_ipv6_example() -> None:
    values = {
        **RFC_VALUES,
        "i": ip_macro(ipaddress.IPv6Address("2001:db8::cb01")),
        "v": "ip6",
    }
    assert (
        expand(parse_macro_string("%{ir}.%{v}._spf.%{d2}"), values)
        == "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    )


def test_escapes_delimiters_and_url_encoding() -> None:
    assert expand(parse_macro_string("a%%b%_c%-d"), {}) == "a%b c%20d"
    assert expand(parse_macro_string("%{l2r+-}"), {"l": "foo-bar+zip+quux"}) == "bar.foo"
    assert expand(parse_macro_string("%{L}"), {"l": "~jack&jill=up-a_b3.c"}) == "~jack%26jill%3Dup-a_b3.c"
    assert expand(parse_macro_string("%{d127}"), {"d": "a.b"}) == "a.b"


def test_c_r_t_only_in_explanation_text() -> None:
    tokens = parse_macro_string("%{c} is not allowed by %{r} at %{t}", explanation=True)
    assert expand(tokens, {"c": "192.0.2.3", "r": "mx.example.org", "t": "1"}) == (
        "192.0.2.3 is not allowed by mx.example.org at 1"
    )
    with pytest.raises(SpfSyntaxError, match="only in explanation text"):
        parse_macro_string("%{t}.example.com")
    with pytest.raises(SpfSyntaxError, match="not allowed in a macro string"):
        parse_macro_string("with space")


def test_long_names_lose_left_labels() -> None:
    name = ".".join(["label"] * 60)
    short = truncate(name)
    assert len(short) <= 253 and name.endswith(short) and not short.startswith(".")


# -- check_host ---------------------------------------------------------------------------------------------


class DictResolver:
    """Records by (type, name); names in ``broken`` time out; a name with no record at all is NXDOMAIN."""

    def __init__(self, records: dict[tuple[str, str], list[str]], broken: frozenset[str] = frozenset()) -> None:
        self.records = {(t, n.lower()): v for (t, n), v in records.items()}
        self.broken = broken
        self.delay = 0.0
        self.asked: list[tuple[str, str]] = []

    async def _get(self, rtype: str, name: str) -> Answer:
        self.asked.append((rtype, name))
        if self.delay:
            await asyncio.sleep(self.delay)
        name = name.lower().removesuffix(".")
        if name in self.broken:
            raise DnsTempError(f"timeout: {name}")
        if (rtype, name) in self.records:
            return Answer(tuple(self.records[rtype, name]))
        return Answer((), nxdomain=all(n != name for _, n in self.records))

    async def txt(self, name: str) -> Answer:
        return await self._get("txt", name)

    async def a(self, name: str) -> Answer:
        return await self._get("a", name)

    async def aaaa(self, name: str) -> Answer:
        return await self._get("aaaa", name)

    async def mx(self, name: str) -> Answer:
        return await self._get("mx", name)

    async def ptr(self, ip: str) -> Answer:
        return await self._get("ptr", ipaddress.ip_address(ip).reverse_pointer)

    async def cname(self, name: str) -> Answer:
        return Answer(())


ZONE: dict[tuple[str, str], list[str]] = {
    ("txt", "example.com"): ["v=spf1 include:_spf.example.com mx -all exp=why.example.com", "other text"],
    ("txt", "_spf.example.com"): ["v=spf1 ip4:192.0.2.0/28 ip6:2001:db8::/48 ~all"],
    ("txt", "why.example.com"): ["%{c} may not send mail for %{d} (as %{s}); asked %{r}."],
    ("mx", "example.com"): ["10 mx1.example.com", "20 mx2.example.com"],
    ("a", "mx1.example.com"): ["198.51.100.10"],
    ("a", "mx2.example.com"): ["198.51.100.20"],
    ("txt", "broken.example"): ["v=spf1 include:down.example -all"],
    ("txt", "voids.example"): ["v=spf1 a:n1.example a:n2.example a:n3.example +all"],
    ("txt", "deep.example"): ["v=spf1 a mx include:example.com -all"],
    ("txt", "twice.example"): ["v=spf1 -all", "v=spf1 +all"],
}


def run(ip: str, mail_from: str, helo: str = "client.example.org", **kwargs: object) -> SpfResult:
    sender, domain = mail_from_identity(mail_from, helo)
    resolver = kwargs.pop("resolver", DictResolver(ZONE, frozenset({"down.example"})))
    return asyncio.run(check_host(ip, domain, sender, helo=helo, resolver=resolver, **kwargs))  # type: ignore[arg-type]


def test_pass_through_include() -> None:
    result = run("192.0.2.5", "alice@example.com")
    assert result.result is SpfOutcome.PASS
    assert str(result.result) == "pass"
    assert result.mechanism is not None and result.mechanism.text == "include:_spf.example.com"
    assert (result.lookups, result.void_lookups, result.explanation) == (1, 0, None)


def test_pass_through_mx_over_ipv4_mapped_ipv6() -> None:
    result = run("::ffff:198.51.100.20", "alice@example.com")
    assert result.result is SpfOutcome.PASS
    assert result.mechanism is not None and result.mechanism.kind == "mx"
    assert result.lookups == 2


def test_fail_with_expanded_explanation() -> None:
    result = run("203.0.113.7", "bob@example.com", receiver="mx.example.net")
    assert result.result is SpfOutcome.FAIL
    assert result.mechanism is not None and result.mechanism.text == "-all"
    assert (
        result.explanation
        == "203.0.113.7 may not send mail for example.com (as bob@example.com); asked mx.example.net."
    )


def test_null_sender_checks_postmaster_at_helo() -> None:
    assert mail_from_identity("<>", "mx.example.org") == ("postmaster@mx.example.org", "mx.example.org")
    assert mail_from_identity("<bob@example.com>", "x") == ("bob@example.com", "example.com")
    result = asyncio.run(
        check_host("2001:db8::1", "example.com", "example.com", helo="h.example", resolver=DictResolver(ZONE))
    )
    assert result.result is SpfOutcome.PASS


def test_temperror_from_an_included_timeout() -> None:
    result = run("192.0.2.5", "a@broken.example")
    assert result.result is SpfOutcome.TEMPERROR
    assert any("down.example" in p for p in result.problems)


def test_void_lookup_limit() -> None:
    result = run("192.0.2.5", "a@voids.example")
    assert result.result is SpfOutcome.PERMERROR and result.void_lookups == 3
    assert any("void lookups" in p for p in result.problems)
    relaxed = run("192.0.2.5", "a@voids.example", limits=SpfLimits(void_lookups=3))
    assert relaxed.result is SpfOutcome.PASS


def test_dns_term_limit_is_configurable() -> None:
    assert run("192.0.2.5", "a@deep.example").result is SpfOutcome.PASS
    result = run("192.0.2.5", "a@deep.example", limits=SpfLimits(dns_terms=3))
    assert result.result is SpfOutcome.PERMERROR and result.lookups == 4
    assert any("more than 3 DNS-querying terms" in p for p in result.problems)


def test_several_records_and_missing_records() -> None:
    assert run("192.0.2.5", "a@twice.example").result is SpfOutcome.PERMERROR
    none = run("192.0.2.5", "a@nowhere.example")
    assert none.result is SpfOutcome.NONE and none.problems == ("nowhere.example does not exist",)
    assert run("192.0.2.5", "a@[192.0.2.1]").result is SpfOutcome.NONE
    assert run("192.0.2.5", "", helo="localhost").result is SpfOutcome.NONE


def test_overall_time_limit_gives_temperror() -> None:
    resolver = DictResolver(ZONE)
    resolver.delay = 0.2
    result = run("192.0.2.5", "a@example.com", resolver=resolver, limits=SpfLimits(timeout=0.05))
    assert result.result is SpfOutcome.TEMPERROR
    assert any("longer than" in p for p in result.problems)


def test_bad_ip_is_an_argument_error() -> None:
    with pytest.raises(SpfError, match="not an IP address"):
        run("192.0.2.300", "a@example.com")


def test_result_is_a_frozen_value() -> None:
    result = run("192.0.2.5", "alice@example.com")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.result = SpfOutcome.FAIL  # type: ignore[misc]
