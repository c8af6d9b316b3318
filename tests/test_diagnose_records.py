"""Record parsers (DMARC, DKIM keys, MTA-STS, TLS-RPT) and the DNSBL table, with an in-memory resolver."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from smtplens import KnowledgeError
from smtplens.diagnose import dnsbl
from smtplens.diagnose.dkim import lookup_dkim, parse_dkim_key
from smtplens.diagnose.dmarc import lookup_dmarc, parse_dmarc, select_dmarc
from smtplens.diagnose.dns import DnsTempError
from smtplens.diagnose.dnsbl import ListingStatus, check_ip, interpret, load_zones, query_name, reverse_ip
from smtplens.diagnose.findings import Finding, Severity
from smtplens.diagnose.mtasts import lookup_mtasts, parse_mtasts, select_mtasts
from smtplens.diagnose.tlsrpt import lookup_tlsrpt, parse_tlsrpt, select_tlsrpt
from tests.memory_dns import MemoryResolver

# Generated for these tests with: openssl genrsa 2048 | openssl rsa -pubout -outform DER | base64 -w0
RSA_2048 = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlidHws/pf5x5YUsWeTc7TBjEIOLofpwZpSXNsj1cjwHrxmQhnuCGjEirInVlniCV"
    "hgx0yUy5mec+cibfIcqk7TEd7vTp+RQX5aasqxQ6tnozoEP7T9d1b+TdmIs/MFkZddYOIniBy6mK+Y23hz57YzuDFKjodReQY+7Emh2fTwjG"
    "z3zlWbrDSRswLP5VFW3tcmEbk4bBfu6uKknM+s5bFxwhhoWTUy2r3YQHTMH3lyO/Fr+tqRM2sDBHzvXZe8i0PL6gBPjkFXBoqZzcbThYnVzQ"
    "VEZ//hd3iQc1Si9lEZrd1sM6Pj+NOmEYVHfvb1JRmJux13htpylDzRwI9R99HwIDAQAB"
)
# openssl genrsa 1024 | openssl rsa -pubout -outform DER | base64 -w0
RSA_1024 = (
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDF2RjfFl3NQUYWgi70AgwcZignxz3t3IAyXDGUVo3+G+cgWBPGeOtYV5qC6RH0YCIG5hWe"
    "8jaasXVLmmXv0dJ/5oUScNm4Zg8yWblC+mCzbBhhb5bX7GOHSUPHEWnAIDGzeouEqpbHk6GuB0KxHzZGLDfitJRf/d3ecwpzvq0V6wIDAQAB"
)
# openssl genpkey -algorithm ed25519 | openssl pkey -pubout -outform DER | tail -c 32 | base64
ED25519 = "+i3VwTxWLgX7/JfqUv1fVl/PCi3cwzld/Kh6bBVIlBk="


def codes(items: tuple[Finding, ...]) -> set[str]:
    return {item.code for item in items}


def severity_of(items: tuple[Finding, ...], code: str) -> Severity:
    return next(item.severity for item in items if item.code == code)


# --- findings ----------------------------------------------------------------------------------------------------


def test_finding_is_a_frozen_value() -> None:
    item = Finding(Severity.ERROR, "dmarc.p_missing", "p is missing.", "Add p=none.")
    assert item.is_error
    assert item == Finding(Severity.ERROR, "dmarc.p_missing", "p is missing.", "Add p=none.")
    with pytest.raises(AttributeError):
        item.code = "other"  # type: ignore[misc]


# --- DMARC -------------------------------------------------------------------------------------------------------


def test_dmarc_strict_record_has_no_findings() -> None:
    record = parse_dmarc(
        "v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s; pct=100; "
        "rua=mailto:dmarc@example.com,mailto:reports@vendor.example!10m; ruf=mailto:forensic@example.com; "
        "fo=1:d; rf=afrf; ri=3600"
    )
    assert record.findings == ()
    assert record.valid
    assert (record.policy, record.subdomain_policy, record.adkim, record.aspf) == ("reject", "reject", "s", "s")
    assert [uri.address for uri in record.rua] == ["dmarc@example.com", "reports@vendor.example"]
    assert record.rua[1].max_size == 10 * 1024 * 1024
    assert record.fo == ("1", "d")
    assert record.ri == 3600


def test_dmarc_defaults_and_effective_subdomain_policy() -> None:
    record = parse_dmarc("v=DMARC1; p=quarantine; rua=mailto:d@example.com")
    assert (record.adkim, record.aspf, record.pct, record.fo, record.rf, record.ri) == (
        "r",
        "r",
        100,
        ("0",),
        ("afrf",),
        86400,
    )
    assert record.subdomain_policy is None
    assert record.effective_subdomain_policy == "quarantine"
    assert record.effective_nonexistent_subdomain_policy == "quarantine"


def test_dmarc_monitoring_only_partial_and_no_reports() -> None:
    record = parse_dmarc("v=DMARC1; p=none; pct=20")
    assert codes(record.findings) == {"dmarc.p_none", "dmarc.pct_partial", "dmarc.no_rua"}
    assert all(item.severity is Severity.WARNING for item in record.findings)
    assert all(item.fix for item in record.findings)
    assert record.pct == 20


def test_dmarc_missing_and_invalid_policy() -> None:
    missing = parse_dmarc("v=DMARC1; rua=mailto:d@example.com")
    assert "dmarc.p_missing" in codes(missing.findings)
    assert missing.policy is None and not missing.valid
    invalid = parse_dmarc("v=DMARC1; p=block; rua=mailto:d@example.com")
    assert "dmarc.p_invalid" in codes(invalid.findings)
    assert invalid.policy is None


def test_dmarc_version_must_come_first_and_exactly() -> None:
    assert "dmarc.version" in codes(parse_dmarc("p=reject; v=DMARC1").findings)
    assert "dmarc.version" in codes(parse_dmarc("v=dmarc1; p=reject").findings)
    assert "dmarc.version" not in codes(parse_dmarc("v=DMARC1; p=reject").findings)


def test_dmarc_invalid_uris_and_schemes() -> None:
    record = parse_dmarc("v=DMARC1; p=reject; rua=dmarc@example.com, mailto:nobody, https://reports.example.com/d")
    found = [item for item in record.findings if item.code == "dmarc.uri_invalid"]
    assert len(found) == 2
    assert severity_of(record.findings, "dmarc.uri_scheme") is Severity.WARNING
    assert [uri.scheme for uri in record.rua] == ["https"]


def test_dmarc_unknown_tags_and_syntax_errors() -> None:
    record = parse_dmarc("v=DMARC1; p=reject;; rua=mailto:d@example.com; rue=mailto:x@example.com; junk; p=none")
    assert {"dmarc.unknown_tag", "dmarc.syntax"} <= codes(record.findings)
    assert record.policy == "reject"  # the first p wins
    syntax = [item.message for item in record.findings if item.code == "dmarc.syntax"]
    assert any("empty" in text for text in syntax)
    assert any("no '='" in text for text in syntax)
    assert any("more than once" in text for text in syntax)


def test_dmarc_invalid_tag_values_fall_back_to_defaults() -> None:
    record = parse_dmarc("v=DMARC1; p=reject; adkim=x; pct=150; fo=2; ri=soon; sp=all; rua=mailto:d@example.com")
    invalid = [item for item in record.findings if item.code == "dmarc.tag_invalid"]
    assert len(invalid) == 5
    assert (record.adkim, record.pct, record.fo, record.ri, record.subdomain_policy) == ("r", 100, ("0",), 86400, None)


def test_dmarc_subdomains_left_open_and_dmarcbis_tags() -> None:
    record = parse_dmarc("v=DMARC1; p=reject; sp=none; np=reject; psd=n; t=y; rua=mailto:d@example.com")
    assert {"dmarc.sp_none", "dmarc.testing"} == codes(record.findings)
    assert record.nonexistent_subdomain_policy == "reject"
    assert record.psd == "n" and record.testing
    assert "dmarc.unknown_tag" not in codes(record.findings)


def test_dmarc_selection_ignores_other_txt_and_rejects_several() -> None:
    one = select_dmarc(["google-site-verification=abc", "v=DMARC1; p=reject; rua=mailto:d@example.com"])
    assert one.record is not None and one.record.policy == "reject"
    several = select_dmarc(["v=DMARC1; p=none", "v=DMARC1; p=reject"])
    assert several.record is None
    assert codes(several.findings) == {"dmarc.several_records"}
    assert severity_of(several.findings, "dmarc.several_records") is Severity.ERROR


def test_lookup_dmarc_direct_parent_and_missing() -> None:
    resolver = MemoryResolver(
        {
            ("TXT", "_dmarc.example.com"): ["v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com"],
            ("TXT", "_dmarc.mail.example.com"): ["some other text"],
        }
    )
    direct = asyncio.run(lookup_dmarc("Example.COM.", resolver))
    assert direct.record is not None and direct.name == "_dmarc.example.com" and not direct.inherited
    assert direct.findings == ()

    inherited = asyncio.run(lookup_dmarc("mail.example.com", resolver))
    assert inherited.inherited and inherited.name == "_dmarc.example.com"
    assert inherited.record is not None and inherited.record.effective_subdomain_policy == "quarantine"
    assert codes(inherited.findings) == {"dmarc.inherited"}

    missing = asyncio.run(lookup_dmarc("example.net", resolver))
    assert missing.record is None
    assert codes(missing.findings) == {"dmarc.no_record"}
    assert ("TXT", "_dmarc.net") not in resolver.queries  # never more than one label up, never for two labels


def test_lookup_dmarc_several_records_do_not_fall_back() -> None:
    resolver = MemoryResolver(
        {
            ("TXT", "_dmarc.a.example.com"): ["v=DMARC1; p=none", "v=DMARC1; p=reject"],
            ("TXT", "_dmarc.example.com"): ["v=DMARC1; p=reject; rua=mailto:d@example.com"],
        }
    )
    result = asyncio.run(lookup_dmarc("a.example.com", resolver))
    assert result.record is None and not result.inherited
    assert codes(result.findings) == {"dmarc.several_records"}


def test_lookup_dmarc_dns_failure_propagates() -> None:
    resolver = MemoryResolver({("TXT", "_dmarc.example.com"): DnsTempError("timeout")})
    with pytest.raises(DnsTempError):
        asyncio.run(lookup_dmarc("example.com", resolver))


# --- DKIM --------------------------------------------------------------------------------------------------------


def test_dkim_rsa_2048_key() -> None:
    key = parse_dkim_key(f"v=DKIM1; k=rsa; p={RSA_2048}")
    assert (key.key_type, key.key_bits, key.key_format) == ("rsa", 2048, "spki")
    assert key.findings == () and key.valid and not key.revoked and not key.testing
    assert key.public_key == base64.b64decode(RSA_2048)


def test_dkim_key_folded_over_several_strings_and_without_v() -> None:
    # resolvers join the strings; publishers often leave spaces inside p= where they split it
    folded = RSA_2048[:200] + " " + RSA_2048[200:]
    key = parse_dkim_key(f"k=rsa; t=s; p={folded}")
    assert key.key_bits == 2048 and key.version is None and key.findings == ()


def test_dkim_rsa_1024_is_a_warning() -> None:
    key = parse_dkim_key(f"v=DKIM1; p={RSA_1024}")
    assert key.key_bits == 1024 and key.key_type == "rsa"
    assert codes(key.findings) == {"dkim.rsa_short"}
    assert severity_of(key.findings, "dkim.rsa_short") is Severity.WARNING


def test_dkim_rsa_under_1024_is_an_error() -> None:
    # a 512-bit modulus built by hand: SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { RSAPublicKey } }
    modulus = b"\x00" + b"\xc3" * 64
    rsa_key = b"\x02\x41" + modulus + b"\x02\x03\x01\x00\x01"
    rsa_seq = b"\x30" + bytes([len(rsa_key)]) + rsa_key
    algorithm = bytes.fromhex("300d06092a864886f70d0101010500")
    bit_string = b"\x03" + bytes([len(rsa_seq) + 1]) + b"\x00" + rsa_seq
    spki = b"\x30" + bytes([len(algorithm) + len(bit_string)]) + algorithm + bit_string
    key = parse_dkim_key("p=" + base64.b64encode(spki).decode())
    assert key.key_bits == 512
    assert severity_of(key.findings, "dkim.rsa_weak") is Severity.ERROR
    # the same key as bare PKCS#1 is read too, with a warning
    bare = parse_dkim_key("p=" + base64.b64encode(rsa_seq).decode())
    assert bare.key_bits == 512 and bare.key_format == "pkcs1"
    assert {"dkim.rsa_weak", "dkim.pkcs1_key"} <= codes(bare.findings)


def test_dkim_ed25519_key() -> None:
    key = parse_dkim_key(f"v=DKIM1; k=ed25519; p={ED25519}")
    assert (key.key_type, key.key_bits, key.key_format) == ("ed25519", 256, "raw")
    assert key.findings == ()


def test_dkim_ed25519_published_as_spki_is_an_error() -> None:
    spki = bytes.fromhex("302a300506032b6570032100") + base64.b64decode(ED25519)
    key = parse_dkim_key("v=DKIM1; k=ed25519; p=" + base64.b64encode(spki).decode())
    assert key.key_bits is None
    bad = next(item for item in key.findings if item.code == "dkim.bad_key")
    assert "SubjectPublicKeyInfo" in bad.message


def test_dkim_revoked_key() -> None:
    key = parse_dkim_key("v=DKIM1; k=rsa; p=")
    assert key.revoked and key.public_key is None
    assert codes(key.findings) == {"dkim.revoked"}
    assert severity_of(key.findings, "dkim.revoked") is Severity.ERROR


def test_dkim_broken_base64_and_broken_der() -> None:
    quoted = parse_dkim_key(f'v=DKIM1; p={RSA_2048[:100]}" "{RSA_2048[100:]}')
    assert codes(quoted.findings) == {"dkim.bad_base64"}
    truncated = parse_dkim_key("v=DKIM1; p=" + base64.b64encode(base64.b64decode(RSA_2048)[:100]).decode())
    assert codes(truncated.findings) == {"dkim.bad_key"}
    assert truncated.key_bits is None


def test_dkim_unknown_k_testing_and_other_checks() -> None:
    assert severity_of(parse_dkim_key(f"k=dsa; p={RSA_2048}").findings, "dkim.unknown_k") is Severity.ERROR
    testing = parse_dkim_key(f"v=DKIM1; t=y; p={RSA_2048}")
    assert testing.testing and severity_of(testing.findings, "dkim.testing") is Severity.INFO
    assert "dkim.h_no_sha256" in codes(parse_dkim_key(f"h=sha1; p={RSA_2048}").findings)
    assert "dkim.service" in codes(parse_dkim_key(f"s=tlsrpt; p={RSA_2048}").findings)
    assert "dkim.no_key" in codes(parse_dkim_key("v=DKIM1; k=rsa").findings)
    assert "dkim.version" in codes(parse_dkim_key(f"k=rsa; v=DKIM1; p={RSA_2048}").findings)
    assert "dkim.syntax" in codes(parse_dkim_key(f"v=DKIM1; p={RSA_2048}; p={RSA_1024}").findings)


def test_lookup_dkim() -> None:
    resolver = MemoryResolver({("TXT", "s1._domainkey.example.com"): [f"v=DKIM1; k=rsa; p={RSA_2048}"]})
    found = asyncio.run(lookup_dkim("example.com", "s1", resolver))
    assert found.name == "s1._domainkey.example.com"
    assert found.key is not None and found.key.key_bits == 2048 and found.findings == ()
    missing = asyncio.run(lookup_dkim("example.com", "s2", resolver))
    assert missing.key is None and codes(missing.findings) == {"dkim.no_record"}
    with pytest.raises(ValueError, match="selector"):
        asyncio.run(lookup_dkim("example.com", "bad selector", resolver))


def test_lookup_dkim_several_records_prefers_a_valid_one() -> None:
    name = "sel._domainkey.example.org"
    resolver = MemoryResolver({("TXT", name): ["v=DKIM1; p=", f"v=DKIM1; k=ed25519; p={ED25519}"]})
    found = asyncio.run(lookup_dkim("example.org", "sel", resolver))
    assert found.key is not None and found.key.key_type == "ed25519"
    assert len(found.keys) == 2
    assert codes(found.findings) == {"dkim.several_records"}


# --- MTA-STS and TLS-RPT -------------------------------------------------------------------------------------


def test_mtasts_valid_and_invalid_records() -> None:
    good = parse_mtasts("v=STSv1; id=20190429T010101;")
    assert (good.version, good.id, good.findings) == ("STSv1", "20190429T010101", ())
    assert codes(parse_mtasts("v=STSv1;").findings) == {"mtasts.id_missing"}
    assert codes(parse_mtasts("v=STSv1; id=2019-04-29").findings) == {"mtasts.id_invalid"}
    assert codes(parse_mtasts("v=STSv1; id=" + "a" * 33).findings) == {"mtasts.id_invalid"}
    assert "mtasts.version" in codes(parse_mtasts("id=1; v=STSv1").findings)
    extension = parse_mtasts("v=STSv1; id=abc; x-note=hello")
    assert extension.extensions == (("x-note", "hello"),)
    assert codes(extension.findings) == {"mtasts.extension"}


def test_mtasts_selection_and_lookup() -> None:
    assert select_mtasts(["v=spf1 -all"]).candidates == ()
    several = select_mtasts(["v=STSv1; id=1", "v=STSv1; id=2"])
    assert several.record is None and codes(several.findings) == {"mtasts.several_records"}
    resolver = MemoryResolver({("TXT", "_mta-sts.example.com"): ["v=STSv1; id=20240101"]})
    found = asyncio.run(lookup_mtasts("example.com", resolver))
    assert found.record is not None and found.record.id == "20240101" and found.findings == ()
    missing = asyncio.run(lookup_mtasts("example.net", resolver))
    assert missing.record is None and codes(missing.findings) == {"mtasts.no_record"}


def test_tlsrpt_valid_and_invalid_records() -> None:
    good = parse_tlsrpt("v=TLSRPTv1; rua=mailto:tls@example.com, https://reports.example.com/tlsrpt")
    assert good.rua == ("mailto:tls@example.com", "https://reports.example.com/tlsrpt") and good.findings == ()
    assert codes(parse_tlsrpt("v=TLSRPTv1;").findings) == {"tlsrpt.rua_missing"}
    assert codes(parse_tlsrpt("v=TLSRPTv1; rua=http://reports.example.com/").findings) == {"tlsrpt.uri_scheme"}
    assert codes(parse_tlsrpt("v=TLSRPTv1; rua=tls@example.com").findings) == {"tlsrpt.uri_invalid"}
    assert "tlsrpt.version" in codes(parse_tlsrpt("v=TLSRPT1; rua=mailto:tls@example.com").findings)


def test_tlsrpt_selection_and_lookup() -> None:
    several = select_tlsrpt(["v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv1; rua=mailto:b@example.com"])
    assert several.record is None and codes(several.findings) == {"tlsrpt.several_records"}
    resolver = MemoryResolver({("TXT", "_smtp._tls.example.com"): ["v=TLSRPTv1; rua=mailto:tls@example.com"]})
    found = asyncio.run(lookup_tlsrpt("example.com", resolver))
    assert found.record is not None and found.findings == ()
    missing = asyncio.run(lookup_tlsrpt("example.net", resolver))
    assert codes(missing.findings) == {"tlsrpt.no_record"}


# --- DNSBL table -------------------------------------------------------------------------------------------------


def test_zone_table_loads_and_holds_current_lists_only() -> None:
    table = dnsbl.zones()
    names = {item.zone for item in table}
    assert {
        "zen.spamhaus.org",
        "dbl.spamhaus.org",
        "bl.spamcop.net",
        "b.barracudacentral.org",
        "dnsbl-1.uceprotect.net",
        "dnsbl-2.uceprotect.net",
        "dnsbl-3.uceprotect.net",
        "psbl.surriel.com",
        "bl.mailspike.net",
        "rep.mailspike.net",
    } <= names
    assert not any(dead in zone for zone in names for dead in ("sorbs", "njabl", "ahbl", "manitu"))
    for item in table:
        assert item.source.startswith("https://") and item.delist_url.startswith("https://")
        assert any(code.status == "listed" for code in item.codes)


def test_zone_table_is_shipped_as_package_data() -> None:
    from importlib import resources

    assert (resources.files("smtplens.diagnose") / "dnsbl_zones.toml").is_file()


def _write_table(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "zones.toml"
    path.write_text(body, encoding="utf-8")
    return path


GOOD_ZONE = """
[[zone]]
zone = "bl.example.org"
name = "Example BL"
kind = "ip4"
operator = "Example"
url = "https://bl.example.org/"
delist_url = "https://bl.example.org/remove"
source = "https://bl.example.org/docs"
match = "exact"
[[zone.code]]
answer = "127.0.0.2"
status = "listed"
meaning = "listed"
"""


def test_zone_table_validation_names_file_zone_and_field(tmp_path: Path) -> None:
    assert load_zones(_write_table(tmp_path, GOOD_ZONE), "zones.toml")[0].kinds == ("ip4",)
    cases = {
        'kind = "ip4"': ('kind = "ipx"', "kind"),
        'answer = "127.0.0.2"': ('answer = "10.0.0.2"', "code[0].answer"),
        'status = "listed"': ('status = "blocked"', "code[0].status"),
        'source = "https://bl.example.org/docs"': ('source = "http://bl.example.org/docs"', "source"),
        'match = "exact"': ('match = "fuzzy"', "match"),
    }
    for old, (new, field_name) in cases.items():
        with pytest.raises(KnowledgeError) as caught:
            load_zones(_write_table(tmp_path, GOOD_ZONE.replace(old, new)), "zones.toml")
        assert (caught.value.file, caught.value.entry, caught.value.field) == (
            "zones.toml",
            "bl.example.org",
            field_name,
        )
    with pytest.raises(KnowledgeError, match="listed twice"):
        load_zones(_write_table(tmp_path, GOOD_ZONE + GOOD_ZONE), "zones.toml")
    with pytest.raises(KnowledgeError, match="not valid TOML"):
        load_zones(_write_table(tmp_path, "[[zone]\n"), "zones.toml")


def test_query_names() -> None:
    assert reverse_ip("192.0.2.99") == "99.2.0.192"
    assert query_name("192.0.2.99", "zen.spamhaus.org") == "99.2.0.192.zen.spamhaus.org"
    six = query_name("2001:db8::1", "zen.spamhaus.org")
    assert six == "1." + "0." * 23 + "8.b.d.0.1.0.0.2.zen.spamhaus.org"
    assert query_name("Example.COM.", "dbl.spamhaus.org") == "example.com.dbl.spamhaus.org"
    with pytest.raises(ValueError, match="does not list"):
        query_name("example.com", "zen.spamhaus.org")
    with pytest.raises(ValueError, match="does not list"):
        query_name("2001:db8::1", "bl.spamcop.net")
    with pytest.raises(ValueError, match="not an IP address or domain"):
        query_name("not a name", "dbl.spamhaus.org")


def test_interpret_spamhaus_codes() -> None:
    listed = interpret("zen.spamhaus.org", ["127.0.0.4", "127.0.0.10"], ["https://check.spamhaus.org/..."])
    assert listed.status is ListingStatus.LISTED and listed.listed
    assert any("XBL" in text for text in listed.meanings) and any("PBL" in text for text in listed.meanings)
    assert listed.delist_url == "https://check.spamhaus.org/"
    assert interpret("zen.spamhaus.org", []).status is ListingStatus.NOT_LISTED
    assert "low-reputation" in interpret("dbl.spamhaus.org", ["127.0.1.2"]).message
    assert interpret("dbl.spamhaus.org", ["127.0.1.102"]).listed


def test_interpret_spamhaus_refusals_are_errors_never_listings() -> None:
    for code in ("127.255.255.252", "127.255.255.254", "127.255.255.255"):
        result = interpret("zen.spamhaus.org", [code])
        assert result.status is ListingStatus.ERROR, code
        assert not result.listed and result.delist_url is None
    refused = interpret("zen.spamhaus.org", ["127.255.255.254"])
    assert "public/open resolver" in refused.message
    assert interpret("dbl.spamhaus.org", ["127.255.255.255"]).error
    assert interpret("dbl.spamhaus.org", ["127.0.1.255"]).error


def test_interpret_generic_rules() -> None:
    assert interpret("bl.spamcop.net", ["127.0.0.1"]).error  # RFC 5782: 127.0.0.1 is never a listing
    hijacked = interpret("bl.spamcop.net", ["198.51.100.7"])
    assert hijacked.error and "outside 127.0.0.0/8" in hijacked.message
    unknown = interpret("bl.spamcop.net", ["127.0.0.9"])
    assert unknown.listed and "does not know" in unknown.message
    assert interpret("rbl.unknown.example", ["127.0.0.2"]).listed
    neutral = interpret("rep.mailspike.net", ["127.0.0.18"])
    assert neutral.status is ListingStatus.NOT_LISTED and "H3" in neutral.message
    assert interpret("rep.mailspike.net", ["127.0.0.10"]).listed


def test_interpret_bitmask_zones() -> None:
    combined = interpret("multi.uribl.com", ["127.0.0.6"])
    assert combined.listed and len(combined.meanings) == 2
    assert interpret("multi.uribl.com", ["127.0.0.1"]).error
    assert interpret("multi.surbl.org", ["127.0.0.80"]).meanings == (
        "127.0.0.80 bit 16 = MW: a malware domain",
        "127.0.0.80 bit 64 = ABUSE: a spam or abuse domain",
    )


def test_check_ip_queries_every_ip_zone_concurrently() -> None:
    reversed_ip = "2.0.0.127"
    resolver = MemoryResolver(
        {
            ("A", f"{reversed_ip}.zen.spamhaus.org"): ["127.0.0.2", "127.0.0.4"],
            ("TXT", f"{reversed_ip}.zen.spamhaus.org"): ["https://check.spamhaus.org/sbl/query/SBL2"],
            ("A", f"{reversed_ip}.bl.spamcop.net"): ["127.0.0.2"],
            ("A", f"{reversed_ip}.b.barracudacentral.org"): DnsTempError("timed out"),
            ("A", f"{reversed_ip}.psbl.surriel.com"): ["127.255.255.254"],
        },
        delay=0.02,
    )
    listings = asyncio.run(check_ip("127.0.0.2", resolver))
    ip_zones = [item for item in dnsbl.zones() if item.supports("ip4")]
    assert [item.zone for item in listings] == [item.zone for item in ip_zones]
    assert resolver.peak == len(ip_zones)  # every A query was in flight at once
    by_zone = {item.zone: item for item in listings}
    zen = by_zone["zen.spamhaus.org"]
    assert zen.listed and zen.txt == ("https://check.spamhaus.org/sbl/query/SBL2",)
    assert zen.query == "2.0.0.127.zen.spamhaus.org"
    assert by_zone["bl.spamcop.net"].listed
    assert by_zone["b.barracudacentral.org"].error and "timed out" in by_zone["b.barracudacentral.org"].message
    psbl = by_zone["psbl.surriel.com"]  # a code PSBL does not document: reported, but as unknown
    assert psbl.listed and "does not know" in psbl.message
    assert by_zone["dnsbl-1.uceprotect.net"].status is ListingStatus.NOT_LISTED
    txt_queries = {name for rdtype, name in resolver.queries if rdtype == "TXT"}
    listed = {f"{reversed_ip}.{zone}" for zone in ("zen.spamhaus.org", "bl.spamcop.net", "psbl.surriel.com")}
    assert txt_queries == listed  # TXT only where the A answer was positive


def test_check_ip_ipv6_and_explicit_zones() -> None:
    resolver = MemoryResolver({})
    listings = asyncio.run(check_ip("2001:db8::25", resolver))
    assert [item.zone for item in listings] == ["zen.spamhaus.org"]
    assert listings[0].status is ListingStatus.NOT_LISTED
    chosen = asyncio.run(check_ip("2001:db8::25", resolver, zones=["bl.spamcop.net"]))
    assert chosen[0].error and "does not list IPv6" in chosen[0].message
    with pytest.raises(ValueError, match="does not appear to be"):
        asyncio.run(check_ip("example.com", resolver))
