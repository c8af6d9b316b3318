"""``check ip`` and ``check domain``: the report base, the SPF tree, the IP and domain checks and the commands.

Every check runs against an in-memory resolver; one test drives the commands end to end against a small DNS
server of the test's own on 127.0.0.1 (real DNS servers are exercised in tests/integration/).
"""

from __future__ import annotations

import asyncio
import json
import socketserver
import threading
from collections.abc import Iterator
from enum import StrEnum
from typing import NamedTuple

import dns.message
import dns.rcode
import dns.rrset
import pytest

from smtplens.cli import check as check_cli
from smtplens.cli.check import parse_dns_server
from smtplens.cli.main import main
from smtplens.diagnose import dnsbl
from smtplens.diagnose.dns import DnsTempError
from smtplens.diagnose.domain import DomainReport, diagnose_domain
from smtplens.diagnose.findings import Finding, Severity
from smtplens.diagnose.ip import IpReport, diagnose_ip, looks_generic
from smtplens.diagnose.report import Report, jsonable
from smtplens.diagnose.spf import SpfOutcome
from smtplens.diagnose.spf.tree import NodeStatus, spf_tree
from tests.memory_dns import Data, MemoryResolver
from tests.test_diagnose_records import RSA_1024, RSA_2048


def codes(items: tuple[Finding, ...]) -> list[str]:
    return [item.code for item in items]


def finding(report: Report, code: str) -> Finding:
    matches = [item for item in report.findings if item.code == code]
    assert matches, f"no {code} in {codes(report.findings)}"
    return matches[0]


def ip_check(data: Data, ip: str = "192.0.2.2", zones: list[str] | None = None) -> IpReport:
    return asyncio.run(diagnose_ip(ip, MemoryResolver(data), zones=zones or ["zen.spamhaus.org", "bl.spamcop.net"]))


def domain_check(data: Data, domain: str = "example.test", **kwargs: object) -> DomainReport:
    return asyncio.run(diagnose_domain(domain, MemoryResolver(data), **kwargs))  # type: ignore[arg-type]


# --- the report base ---------------------------------------------------------------------------------------------


class _Colour(StrEnum):
    RED = "red"


class _Pair(NamedTuple):
    left: int
    right: bytes


def test_report_ok_only_without_errors_and_warnings() -> None:
    note = Finding(Severity.INFO, "x.note", "A note.", "Nothing urgent.")
    warn = Finding(Severity.WARNING, "x.warn", "A warning.", "Fix it.")
    assert Report(verdict="fine").ok
    assert Report(verdict="fine", findings=(note,)).ok
    assert not Report(verdict="not fine", findings=(note, warn)).ok
    assert Report(verdict="v", findings=(note, warn)).by_severity(Severity.WARNING) == (warn,)


def test_report_to_dict_is_json_data() -> None:
    warn = Finding(Severity.WARNING, "x.warn", "A warning.", "Fix it.")
    data = Report(verdict="v", findings=(warn,)).to_dict()
    assert data == {
        "verdict": "v",
        "ok": False,
        "findings": [{"severity": "warning", "code": "x.warn", "message": "A warning.", "fix": "Fix it."}],
    }
    assert jsonable((_Colour.RED, _Pair(1, b"\x00\x01"), {"k": frozenset({1})}, None, 2.5)) == [
        "red",
        {"left": 1, "right": "AAE="},
        {"k": [1]},
        None,
        2.5,
    ]


# --- the SPF tree ------------------------------------------------------------------------------------------------


TREE: Data = {
    ("TXT", "example.test"): ["v=spf1 a mx include:_spf.example.test include:mail.provider.test -all", "other"],
    ("A", "example.test"): ["192.0.2.10"],
    ("AAAA", "example.test"): [],
    ("MX", "example.test"): ["10 mx1.example.test"],
    ("TXT", "_spf.example.test"): ["v=spf1 ip4:192.0.2.0/24 a:gone.example.test include:_inner.provider.test ~all"],
    ("TXT", "mail.provider.test"): ["v=spf1 exists:%{i}._spf.provider.test include:_inner.provider.test -all"],
    ("TXT", "_inner.provider.test"): ["v=spf1 ip4:198.51.100.0/24 -all"],
}


def test_spf_tree_counts_every_record_and_keeps_details() -> None:
    resolver = MemoryResolver(TREE, delay=0.01)
    tree = asyncio.run(spf_tree("Example.Test.", resolver))
    assert (tree.lookups, tree.void_lookups) == (8, 1)
    assert not tree.too_many_lookups and not tree.too_many_void_lookups
    details = [(n.domain, n.term, n.lookups, n.void_terms) for n in tree.nodes()]
    assert details == [
        ("example.test", "", 4, ()),
        ("_spf.example.test", "include:_spf.example.test", 2, ("a:gone.example.test",)),
        ("_inner.provider.test", "include:_inner.provider.test", 0, ()),
        ("mail.provider.test", "include:mail.provider.test", 2, ()),
        ("_inner.provider.test", "include:_inner.provider.test", 0, ()),
    ]
    assert tree.nodes()[3].notes == ("exists:%{i}._spf.provider.test: depends on the sender (macros); not looked up",)
    # A record included twice is fetched once; independent lookups overlap.
    assert resolver.queries.count(("TXT", "_inner.provider.test")) == 1
    assert resolver.peak > 1
    data = tree.to_dict()
    assert data["lookups"] == 8
    assert json.loads(json.dumps(data))["root"]["children"][0]["void_terms"] == ["a:gone.example.test"]


def test_spf_tree_over_the_limits() -> None:
    data: Data = {
        ("TXT", "big.test"): ["v=spf1 include:a.big.test include:b.big.test a:x1.big.test a:x2.big.test -all"]
    }
    data[("TXT", "a.big.test")] = ["v=spf1 " + " ".join(f"a:h{i}.big.test" for i in range(4)) + " -all"]
    data[("TXT", "b.big.test")] = ["v=spf1 mx:m1.big.test mx:m2.big.test exists:e.big.test ~all"]
    for i in range(4):
        data[("A", f"h{i}.big.test")] = ["192.0.2.1"]
    data[("MX", "m1.big.test")] = ["10 mx.big.test"]
    tree = asyncio.run(spf_tree("big.test", MemoryResolver(data)))
    # 4 (root) + 4 (a.) + 3 (b.) = 11 terms; x1, x2, m2 and e have no records: 4 void lookups.
    assert (tree.lookups, tree.void_lookups) == (11, 4)
    assert tree.too_many_lookups and tree.too_many_void_lookups


def test_spf_tree_broken_branches() -> None:
    data: Data = {
        ("TXT", "loop.test"): ["v=spf1 include:back.loop.test include:none.loop.test include:bad.loop.test -all"],
        ("TXT", "back.loop.test"): ["v=spf1 include:loop.test -all"],
        ("TXT", "none.loop.test"): ["some other text"],
        ("TXT", "bad.loop.test"): ["v=spf1 ip4:300.1.1.1 -all"],
    }
    tree = asyncio.run(spf_tree("loop.test", MemoryResolver(data)))
    statuses = [(n.domain, n.status) for n in tree.nodes()]
    assert statuses == [
        ("loop.test", NodeStatus.OK),
        ("back.loop.test", NodeStatus.OK),
        ("loop.test", NodeStatus.LOOP),
        ("none.loop.test", NodeStatus.NO_RECORD),
        ("bad.loop.test", NodeStatus.SYNTAX_ERROR),
    ]
    assert "loops back" in (tree.nodes()[2].problem or "")
    assert "300.1.1.1" in (tree.nodes()[4].problem or "")


def test_spf_tree_redirect_ignored_next_to_all_and_dns_failure() -> None:
    data: Data = {
        ("TXT", "r.test"): ["v=spf1 -all redirect=other.test"],
        ("TXT", "s.test"): ["v=spf1 include:down.test redirect=other.test"],
        ("TXT", "down.test"): DnsTempError("timeout"),
        ("TXT", "other.test"): ["v=spf1 mx -all"],
        ("MX", "other.test"): ["10 mx.other.test"],
    }
    ignored = asyncio.run(spf_tree("r.test", MemoryResolver(data)))
    assert ignored.lookups == 0
    assert "ignored" in ignored.root.warnings[0]
    followed = asyncio.run(spf_tree("s.test", MemoryResolver(data)))
    assert followed.lookups == 3
    assert [n.status for n in followed.root.children] == [NodeStatus.DNS_ERROR, NodeStatus.OK]


# --- check ip ------------------------------------------------------------------------------------------------------


ZEN_QUERY = "2.2.0.192.zen.spamhaus.org"
LISTED: Data = {
    ("A", ZEN_QUERY): ["127.0.0.2"],
    ("TXT", ZEN_QUERY): ["Listed by SBL, see https://check.spamhaus.org/query/ip/192.0.2.2"],
    ("PTR", "192.0.2.2"): ["mail.example.test"],
    ("A", "mail.example.test"): ["192.0.2.2"],
}


def test_ip_listed_names_list_meaning_reason_and_delisting() -> None:
    report = ip_check(LISTED)
    assert report.verdict.startswith("192.0.2.2 is listed on 1 of 2 blocklists: Spamhaus ZEN (SBL)")
    assert "forward-confirmed" in report.verdict
    assert not report.ok
    listed = finding(report, "dnsbl.listed")
    assert listed.severity is Severity.ERROR
    for part in ("Spamhaus ZEN", "spam source", "Listed by SBL", "https://check.spamhaus.org/"):
        assert part in listed.message
    assert "https://check.spamhaus.org/" in listed.fix
    assert (report.ptr, report.fcrdns) == (("mail.example.test",), True)
    assert [item.listed for item in report.listings] == [True, False]


def test_ip_refused_query_is_a_warning_never_a_listing() -> None:
    data = dict(LISTED)
    data[("A", ZEN_QUERY)] = ["127.255.255.254"]
    report = ip_check(data)
    assert "dnsbl.listed" not in codes(report.findings)
    refused = finding(report, "dnsbl.refused")
    assert refused.severity is Severity.WARNING
    assert "the list refused the query (public resolver or quota): use your own resolver" in refused.message
    assert "listed on none of 2" in report.verdict
    assert "1 gave no usable answer" in report.verdict


def test_ip_unanswered_zone_is_a_warning() -> None:
    data = dict(LISTED)
    data[("A", ZEN_QUERY)] = DnsTempError("timed out")
    report = ip_check(data)
    assert codes(report.findings) == ["dnsbl.no_answer"]
    assert finding(report, "dnsbl.no_answer").fix


def test_ip_clean_address_is_ok() -> None:
    data = {key: value for key, value in LISTED.items() if key[1] != ZEN_QUERY}
    report = ip_check(data)
    assert report.ok and report.findings == ()
    assert (
        report.verdict
        == "192.0.2.2 is listed on none of 2 blocklists; reverse DNS mail.example.test, forward-confirmed"
    )


def test_ip_reverse_dns_problems() -> None:
    missing = ip_check({})
    assert finding(missing, "ptr.missing").severity is Severity.ERROR
    assert "No reverse DNS" in finding(missing, "ptr.missing").message
    assert missing.verdict.endswith("no reverse DNS")

    unconfirmed = ip_check({("PTR", "192.0.2.2"): ["mail.example.test"], ("A", "mail.example.test"): ["192.0.2.9"]})
    assert finding(unconfirmed, "ptr.not_confirmed").severity is Severity.WARNING
    assert not unconfirmed.fcrdns

    generic = ip_check(
        {("PTR", "192.0.2.2"): ["192-0-2-2.dsl.isp.test"], ("A", "192-0-2-2.dsl.isp.test"): ["192.0.2.2"]}
    )
    assert codes(generic.findings) == ["ptr.generic"]
    assert generic.ok  # info only


def test_ip_ptr_lookup_failure_is_a_warning_but_no_answer_at_all_is_an_error() -> None:
    data = {key: value for key, value in LISTED.items() if key[1] != ZEN_QUERY}
    data[("PTR", "192.0.2.2")] = DnsTempError("SERVFAIL")
    assert codes(ip_check(data).findings) == ["ptr.lookup_failed"]
    down = DnsTempError("timed out")
    everything_down: Data = {
        ("A", ZEN_QUERY): down,
        ("A", "2.2.0.192.bl.spamcop.net"): down,
        ("PTR", "192.0.2.2"): down,
    }
    with pytest.raises(DnsTempError, match="no DNS answer at all"):
        ip_check(everything_down)


def test_ip_ipv6_and_whole_table_concurrently() -> None:
    resolver = MemoryResolver(
        {("PTR", "2001:db8::25"): ["mx.example.test"], ("AAAA", "mx.example.test"): ["2001:DB8:0::25"]}, delay=0.01
    )
    report = asyncio.run(diagnose_ip("2001:db8::25", resolver))
    ip6_zones = [zone for zone in dnsbl.zones() if zone.supports("ip6")]
    assert len(report.listings) == len(ip6_zones)
    assert report.fcrdns and report.ok
    assert resolver.peak > 1


def test_ip_bad_input() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        ip_check({}, ip="192.0.2")


@pytest.mark.parametrize(
    ("name", "ip", "generic"),
    [
        ("192-0-2-1.dsl.example.net", "192.0.2.1", True),
        ("1.2.0.192.pool.example.net", "192.0.2.1", True),
        ("host192.000.002.001.example.net", "192.0.2.1", True),
        ("dyn-c0000201.example.net", "192.0.2.1", True),
        ("mail.example.net", "192.0.2.1", False),
        ("mx192.example.net", "192.0.2.1", False),
        ("ip6-0000-0000-0000-0025.example.net", "2001:db8::25", True),
        ("mail6.example.net", "2001:db8::25", False),
    ],
)
def test_looks_generic(name: str, ip: str, generic: bool) -> None:
    assert looks_generic(name, ip) is generic


# --- check domain --------------------------------------------------------------------------------------------------


GOOD: Data = {
    ("MX", "example.test"): ["10 mx1.example.test", "20 mx2.example.test"],
    ("A", "mx1.example.test"): ["192.0.2.25"],
    ("AAAA", "mx1.example.test"): [],
    ("A", "mx2.example.test"): [],
    ("AAAA", "mx2.example.test"): ["2001:db8::25"],
    ("TXT", "example.test"): ["v=spf1 ip4:192.0.2.0/28 mx -all", "google-site-verification=x"],
    ("TXT", "_dmarc.example.test"): ["v=DMARC1; p=reject; rua=mailto:dmarc@example.test"],
    ("TXT", "sel._domainkey.example.test"): [f"v=DKIM1; k=rsa; p={RSA_2048}"],
    ("TXT", "_mta-sts.example.test"): ["v=STSv1; id=20240101"],
    ("TXT", "_smtp._tls.example.test"): ["v=TLSRPTv1; rua=mailto:tls@example.test"],
}


def with_(changes: dict[tuple[str, str], list[str] | Exception | None]) -> Data:
    """GOOD with some answers replaced; ``None`` removes the name (NXDOMAIN)."""
    data = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def test_domain_all_good() -> None:
    report = domain_check(GOOD, ip="192.0.2.5", dkim_selectors=["sel"])
    assert report.findings == ()
    assert report.ok
    assert report.verdict == (
        "example.test: no problems found; MX mx1.example.test, mx2.example.test; SPF -all, 1/10 lookups; "
        "DMARC p=reject; SPF for 192.0.2.5: pass"
    )
    assert report.mx == ((10, "mx1.example.test"), (20, "mx2.example.test"))
    assert [host.addresses for host in report.mx_hosts] == [("192.0.2.25",), ("2001:db8::25",)]
    assert report.spf == "v=spf1 ip4:192.0.2.0/28 mx -all"
    assert (report.spf_lookups, report.spf_void_lookups) == (1, 0)
    assert report.spf_result is not None and report.spf_result.result is SpfOutcome.PASS
    assert report.dkim[0].key is not None and report.dkim[0].key.key_bits == 2048
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True
    assert data["spf_result"]["result"] == "pass"
    assert data["spf_result"]["mechanism"] == "ip4:192.0.2.0/28"
    assert data["spf_tree"]["lookups"] == 1
    assert data["dmarc"]["record"]["policy"] == "reject"


def test_domain_lookups_run_concurrently() -> None:
    resolver = MemoryResolver(GOOD, delay=0.01)
    asyncio.run(diagnose_domain("example.test", resolver, ip="192.0.2.5", dkim_selectors=["sel"]))
    assert resolver.peak >= 5


def test_domain_mx_fallbacks() -> None:
    implicit = domain_check(with_({("MX", "example.test"): [], ("A", "example.test"): ["192.0.2.80"]}))
    assert finding(implicit, "mx.implicit").severity is Severity.INFO
    assert "MX none" in implicit.verdict
    nothing = domain_check(with_({("MX", "example.test"): []}))
    assert finding(nothing, "mx.none").severity is Severity.ERROR
    gone = domain_check({})
    assert finding(gone, "domain.nxdomain").severity is Severity.ERROR


def test_domain_null_mx() -> None:
    null = domain_check(with_({("MX", "example.test"): ["0 ."]}))
    assert null.null_mx and null.mx == ((0, ""),)
    assert codes(null.findings) == ["mx.null"]
    assert finding(null, "mx.null").severity is Severity.INFO
    assert "MX null (accepts no mail)" in null.verdict
    mixed = domain_check(with_({("MX", "example.test"): ["0 .", "10 mx1.example.test"]}))
    assert finding(mixed, "mx.null_mixed").severity is Severity.ERROR
    odd = domain_check(with_({("MX", "example.test"): ["5 ."]}))
    assert finding(odd, "mx.null_preference").severity is Severity.WARNING


def test_domain_mx_host_problems() -> None:
    report = domain_check(
        with_({("MX", "example.test"): ["10 mx1.example.test", "20 192.0.2.7", "30 lost.example.test"]})
    )
    assert finding(report, "mx.ip_literal").severity is Severity.WARNING
    no_address = finding(report, "mx.host_no_address")
    assert no_address.severity is Severity.ERROR and "lost.example.test" in no_address.message
    data = dict(GOOD)
    data[("CNAME", "mx2.example.test")] = ["real-mx.example.test."]
    aliased = domain_check(data)
    assert finding(aliased, "mx.cname").severity is Severity.WARNING
    assert aliased.mx_hosts[1].cname == "real-mx.example.test"


@pytest.mark.parametrize(
    ("records", "code", "severity", "text"),
    [
        ([], "spf.missing", Severity.WARNING, "no SPF record"),
        (["v=spf1 mx -all", "v=spf1 -all"], "spf.several_records", Severity.ERROR, "2 SPF records"),
        (["v=spf1 mx ip4:192.0.2.300 -all"], "spf.syntax", Severity.ERROR, "'192.0.2.300' is not a complete IPv4"),
        (["v=spf1 mx +all"], "spf.pass_all", Severity.WARNING, "'+all'"),
        (["v=spf1 mx ?all"], "spf.neutral_all", Severity.WARNING, "'?all'"),
        (["v=spf1 mx"], "spf.no_all", Severity.INFO, "without 'all'"),
        (["v=spf1 ptr:example.test -all"], "spf.ptr", Severity.WARNING, "ptr"),
        (["v=spf1 include:nowhere.test -all"], "spf.include_broken", Severity.ERROR, "nowhere.test does not exist"),
    ],
)
def test_domain_spf_record_findings(records: list[str], code: str, severity: Severity, text: str) -> None:
    report = domain_check(with_({("TXT", "example.test"): records}))
    item = finding(report, code)
    assert item.severity is severity
    assert text in item.message
    assert item.fix


def test_domain_spf_limits() -> None:
    data = dict(GOOD)
    data[("TXT", "example.test")] = ["v=spf1 " + " ".join(f"a:h{i}.example.test" for i in range(12)) + " -all"]
    for i in range(12):
        data[("A", f"h{i}.example.test")] = ["192.0.2.1"] if i > 2 else []
    report = domain_check(data)
    assert (report.spf_lookups, report.spf_void_lookups) == (12, 3)
    too_many = finding(report, "spf.too_many_lookups")
    assert too_many.severity is Severity.ERROR
    assert too_many.message.startswith("too many DNS lookups: 12")
    assert finding(report, "spf.too_many_void_lookups").severity is Severity.ERROR
    assert "SPF -all, 12/10 lookups" in report.verdict


@pytest.mark.parametrize(
    ("ip", "code", "severity", "mechanism"),
    [
        ("198.51.100.9", "spf.ip_fail", Severity.ERROR, "'-all'"),
        ("203.0.113.9", "spf.ip_softfail", Severity.WARNING, "'~ip4:203.0.113.0/24'"),
    ],
)
def test_domain_spf_result_for_an_ip(ip: str, code: str, severity: Severity, mechanism: str) -> None:
    report = domain_check(with_({("TXT", "example.test"): ["v=spf1 mx ~ip4:203.0.113.0/24 -all"]}), ip=ip)
    item = finding(report, code)
    assert item.severity is severity
    assert mechanism in item.message
    assert ip in item.fix
    assert report.verdict.endswith(f"SPF for {ip}: {code.rsplit('_', 1)[1]}")


def test_domain_dmarc_dkim_mtasts_tlsrpt() -> None:
    data = with_(
        {
            ("TXT", "_dmarc.example.test"): None,
            ("TXT", "_mta-sts.example.test"): None,
            ("TXT", "_smtp._tls.example.test"): None,
        }
    )
    data[("TXT", "weak._domainkey.example.test")] = [f"v=DKIM1; p={RSA_1024}"]
    report = domain_check(data, dkim_selectors=["sel", "weak", "gone"])
    assert finding(report, "dmarc.no_record").severity is Severity.WARNING
    assert finding(report, "dkim.rsa_short").severity is Severity.WARNING
    missing_key = finding(report, "dkim.no_record")
    assert missing_key.severity is Severity.ERROR and "gone._domainkey" in missing_key.message
    assert finding(report, "mtasts.no_record").severity is Severity.INFO
    assert finding(report, "tlsrpt.no_record").severity is Severity.INFO
    assert [key.selector for key in report.dkim] == ["sel", "weak", "gone"]
    assert "DMARC none" in report.verdict
    assert all(item.fix for item in report.findings)


def test_domain_record_findings_are_passed_on() -> None:
    report = domain_check(with_({("TXT", "_dmarc.example.test"): ["v=DMARC1; p=none"]}))
    assert {"dmarc.p_none", "dmarc.no_rua"} <= set(codes(report.findings))


def test_domain_partial_dns_failure_and_total_failure() -> None:
    report = domain_check(with_({("TXT", "_dmarc.example.test"): DnsTempError("SERVFAIL")}))
    assert finding(report, "dmarc.lookup_failed").severity is Severity.WARNING
    down = DnsTempError("timed out")
    names = ["example.test", "_dmarc.example.test", "_mta-sts.example.test", "_smtp._tls.example.test"]
    everything_down: Data = dict.fromkeys([("MX", "example.test"), *(("TXT", name) for name in names)], down)
    with pytest.raises(DnsTempError, match="no DNS answer at all"):
        domain_check(everything_down)


@pytest.mark.parametrize(
    ("domain", "kwargs", "message"),
    [
        ("localhost", {}, "not a domain name"),
        ("192.0.2.1", {}, "not a domain name"),
        ("example.test", {"ip": "nonsense"}, "not an IP address"),
        ("example.test", {"dkim_selectors": ["bad selector"]}, "not a valid DKIM selector"),
    ],
)
def test_domain_bad_input(domain: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        domain_check(GOOD, domain, **kwargs)


# --- the commands --------------------------------------------------------------------------------------------------


@pytest.fixture
def memory_dns(monkeypatch: pytest.MonkeyPatch) -> Data:
    """The commands' resolver replaced by an in-memory one over the returned (mutable) data."""
    data: Data = {}

    def build(dns: str | None, timeout: float) -> MemoryResolver:
        return MemoryResolver(data)

    monkeypatch.setattr(check_cli, "_resolver", build)
    return data


def test_check_ip_command_report_and_exit_codes(memory_dns: Data, capsys: pytest.CaptureFixture[str]) -> None:
    memory_dns.update(LISTED)
    assert main(["check", "ip", "192.0.2.2", "--zone", "zen.spamhaus.org"]) == 3
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == (
        "192.0.2.2 is listed on 1 of 1 blocklists: Spamhaus ZEN (SBL); reverse DNS mail.example.test, forward-confirmed"
    )
    assert lines[2] == "Errors (1)"
    assert lines[4].startswith("    fix: Find and stop")
    assert "Details" in out

    memory_dns.pop(("A", ZEN_QUERY))
    assert main(["check", "ip", "192.0.2.2", "--zone", "zen.spamhaus.org", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["ip"] == "192.0.2.2" and data["fcrdns"] is True
    assert data["listings"][0]["status"] == "not_listed"

    memory_dns[("A", ZEN_QUERY)] = DnsTempError("timed out")
    memory_dns[("PTR", "192.0.2.2")] = DnsTempError("timed out")
    assert main(["check", "ip", "192.0.2.2", "--zone", "zen.spamhaus.org"]) == 1
    assert "could not run" in capsys.readouterr().err

    assert main(["check", "ip", "not-an-ip"]) == 2
    assert "not an IP address" in capsys.readouterr().err


def test_check_domain_command(memory_dns: Data, capsys: pytest.CaptureFixture[str]) -> None:
    memory_dns.update(GOOD)
    assert main(["check", "domain", "example.test", "--dkim-selector", "sel", "--ip", "192.0.2.5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("example.test: no problems found;")
    assert "No problems found." in out
    assert "SPF lookups: 1 of 10" in out

    memory_dns[("TXT", "_dmarc.example.test")] = ["v=DMARC1; p=none"]
    assert main(["check", "domain", "example.test"]) == 3
    out = capsys.readouterr().out
    headings = [line for line in out.splitlines() if line in ("Errors (1)", "Warnings (2)", "Info (1)")]
    assert headings == ["Warnings (2)"]
    assert out.count("    fix: ") == 2

    assert main(["check", "domain", "example.test", "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert {item["code"] for item in data["findings"]} == {"dmarc.p_none", "dmarc.no_rua"}

    assert main(["check", "domain", "example.test", "--ip", "999.1.1.1"]) == 2
    assert main(["check", "domain", "nodots"]) == 2
    assert main(["check", "domain", "example.test", "--dkim-selector", "a b"]) == 2
    assert "not a valid DKIM selector" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5300", ("127.0.0.1", 5300)),
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
    ],
)
def test_parse_dns_server(text: str, expected: tuple[str, int]) -> None:
    assert parse_dns_server(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("resolver.example:53", "not an IP address"),
        ("127.0.0.1:0", "not a port"),
        ("127.0.0.1:x", "not a port"),
        ("[::1", "expected"),
        ("127.0.0.1:70000", "not a port"),
    ],
)
def test_parse_dns_server_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_dns_server(text)


def test_bad_dns_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "ip", "192.0.2.1", "--dns", "resolver.example:53"]) == 2
    assert "--dns" in capsys.readouterr().err


# --- end to end over a real DNS exchange on 127.0.0.1 --------------------------------------------------------------


ZONE = {
    ("example.test.", "MX"): ["10 alias.example.test."],
    ("alias.example.test.", "CNAME"): ["mx.example.test."],
    ("alias.example.test.", "A"): ["192.0.2.25"],
    ("mx.example.test.", "A"): ["192.0.2.25"],
    ("example.test.", "TXT"): ['"v=spf1 mx -all"'],
    ("_dmarc.example.test.", "TXT"): ['"v=DMARC1; p=reject; rua=mailto:d@example.test"'],
}


class _DnsHandler(socketserver.BaseRequestHandler):
    """Answers from ZONE; a name in ZONE without the asked type is NODATA, any other name NXDOMAIN."""

    def handle(self) -> None:
        packet, sock = self.request
        query = dns.message.from_wire(packet)
        reply = dns.message.make_response(query)
        question = query.question[0]
        name, rdtype = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
        if (name, rdtype) in ZONE:
            reply.answer.append(dns.rrset.from_text_list(name, 60, "IN", rdtype, ZONE[(name, rdtype)]))
        elif not any(key[0] == name for key in ZONE):
            reply.set_rcode(dns.rcode.NXDOMAIN)
        sock.sendto(reply.to_wire(), self.client_address)


@pytest.fixture
def dns_server() -> Iterator[str]:
    server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), _DnsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_check_domain_against_a_dns_server(dns_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "domain", "example.test", "--dns", dns_server, "--timeout", "2", "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["mx"] == [[10, "alias.example.test"]]
    assert data["mx_hosts"][0]["cname"] == "mx.example.test"
    assert [item["code"] for item in data["findings"]] == ["mx.cname", "mtasts.no_record", "tlsrpt.no_record"]
    assert data["spf_lookups"] == 1
