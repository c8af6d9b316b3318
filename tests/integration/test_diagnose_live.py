"""The diagnosis against real servers: unbound and rbldnsd for DNS, Postfix for SMTP (see conftest.py).

First the lab itself is checked with independent real clients (dig, swaks), so that a failure below says whether
the lab or smtplens is wrong; then the public async API of docs/diagnose.md; then the commands with
``--dns 127.0.0.1:PORT --json`` in a subprocess, as a user runs them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from smtplens.diagnose.dnsbl import Listing, ListingStatus
from smtplens.diagnose.domain import diagnose_domain
from smtplens.diagnose.findings import Finding, Severity
from smtplens.diagnose.ip import diagnose_ip
from smtplens.diagnose.probe import Attempt, ProbeReport, probe
from smtplens.diagnose.spf import SpfOutcome
from smtplens.model import Reply
from tests.integration import conftest as lab_module
from tests.integration.conftest import (
    CLEAN_IP,
    CLEAN_PTR,
    CLEAN_SOURCE,
    DBL_LISTED_DOMAIN,
    DEEP_SPF_DOMAIN,
    DKIM_SELECTOR,
    DOUBLE_LISTED_IP,
    ERROR_IP,
    GREETING_421_SOURCE,
    GREETING_421_TEXT,
    GREETING_554_SOURCE,
    GREETING_554_TEXT,
    LISTED_IP,
    MAIL_FROM,
    NO_PTR_IP,
    NULL_MX_DOMAIN,
    PROBE_DOMAIN,
    PROBE_MX,
    RCPT_421,
    RCPT_421_SOURCE,
    RCPT_421_TEXT,
    RCPT_554,
    RCPT_554_SOURCE,
    RCPT_554_TEXT,
    RCPT_OK,
    SPF_CHAIN,
    STRICT_DMARC,
    STRICT_DOMAIN,
    STRICT_SPF,
    SWAKS_SOURCE,
    UNCONFIRMED_IP,
    UNCONFIRMED_PTR,
    DnsLab,
    SmtpLab,
    free_port,
    need,
)

T = TypeVar("T")
ZEN = "zen.spamhaus.org"
SPAMCOP = "bl.spamcop.net"
CHECK_TIMEOUT = 60.0


def run(job: Coroutine[Any, Any, T]) -> T:
    """Run one check to completion; a hang is a failure, not a stuck test run."""

    async def bounded() -> T:
        return await asyncio.wait_for(job, CHECK_TIMEOUT)

    return asyncio.run(bounded())


def codes(items: Sequence[Finding]) -> set[str]:
    return {item.code for item in items}


def listing(listings: Sequence[Listing], zone: str) -> Listing:
    return next(item for item in listings if item.zone == zone)


# --- the lab, seen by independent clients ----------------------------------------------------------------------


def test_a_missing_program_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab_module, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install .*rbldnsd"):
        lab_module.need("smtplens-no-such-program")
    monkeypatch.setattr(lab_module, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="smtplens-no-such-program is not installed"):
        lab_module.need("smtplens-no-such-program")


def dig(lab: DnsLab, *args: str) -> str:
    command = [need("dig"), "-p", str(lab.port), "@127.0.0.1", "+time=2", "+tries=1", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout


def test_lab_dns_answers_like_the_real_lists(dns_lab: DnsLab) -> None:
    assert dig(dns_lab, "+short", "2.2.0.192.zen.spamhaus.org", "A").split() == ["127.0.0.2"]
    assert sorted(dig(dns_lab, "+short", "10.2.0.192.zen.spamhaus.org", "A").split()) == ["127.0.0.10", "127.0.0.4"]
    assert "192.0.2.2" in dig(dns_lab, "+short", "2.2.0.192.zen.spamhaus.org", "TXT")
    assert dig(dns_lab, "+short", "254.2.0.192.zen.spamhaus.org", "A").split() == ["127.255.255.254"]
    assert "status: NXDOMAIN" in dig(dns_lab, "25.2.0.192.zen.spamhaus.org", "A")
    assert dig(dns_lab, "+short", f"{DBL_LISTED_DOMAIN}.dbl.spamhaus.org", "A").split() == ["127.0.1.2"]
    assert dig(dns_lab, "+short", "2.2.0.192.bl.spamcop.net", "A").split() == ["127.0.0.2"]
    # anything outside the lab is refused: no query leaves the machine
    assert "status: REFUSED" in dig(dns_lab, "example.com", "A")


def test_lab_dns_publishes_the_dkim_key_in_several_strings(dns_lab: DnsLab) -> None:
    answer = dig(dns_lab, "+short", f"{DKIM_SELECTOR}._domainkey.{STRICT_DOMAIN}", "TXT").strip()
    strings = [part.strip('"') for part in answer.split('" "')]
    assert len(strings) >= 2
    assert all(len(part) <= 255 for part in strings)
    assert "".join(strings) == f"v=DKIM1; k=rsa; p={dns_lab.dkim_public_key}"


def test_lab_dns_has_reverse_records(dns_lab: DnsLab) -> None:
    assert dig(dns_lab, "+short", "-x", CLEAN_IP).split() == [f"{CLEAN_PTR}."]
    assert dig(dns_lab, "+short", CLEAN_PTR, "A").split() == [CLEAN_IP]
    assert "status: NXDOMAIN" in dig(dns_lab, "-x", NO_PTR_IP)


def swaks(lab: SmtpLab, source: str, rcpt: str) -> subprocess.CompletedProcess[str]:
    command = [need("swaks"), "--server", f"127.0.0.1:{lab.port}", "-li", source, "--from", MAIL_FROM]
    command += ["--to", rcpt, "--quit-after", "RCPT", "--timeout", "10"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def postfix_disconnect(smtp_lab: SmtpLab, mark: int, source: str) -> str:
    """Postfix's summary of the session from ``source`` after ``mark``: the commands it received, counted."""
    needle = f"disconnect from unknown[{source}]"
    return next(line for line in smtp_lab.wait_for_log(mark, needle) if needle in line)


@pytest.mark.parametrize(
    ("source", "rcpt", "exit_code", "reply"),
    [
        (SWAKS_SOURCE, RCPT_OK, 0, "250 2.1.5"),
        (GREETING_554_SOURCE, RCPT_OK, 21, "554 5.7.1"),
        (GREETING_421_SOURCE, RCPT_OK, 21, "421 4.7.0"),
        (SWAKS_SOURCE, RCPT_554, 24, "554 5.7.1"),
        (SWAKS_SOURCE, RCPT_421, 24, "421 4.7.0"),
    ],
)
def test_lab_postfix_answers_swaks(smtp_lab: SmtpLab, source: str, rcpt: str, exit_code: int, reply: str) -> None:
    mark = smtp_lab.log_mark()
    result = swaks(smtp_lab, source, rcpt)
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert reply in result.stdout
    postfix_disconnect(smtp_lab, mark, source)  # the session is over in Postfix's log too


# --- check ip --------------------------------------------------------------------------------------------------


def test_listed_ip_names_the_list_its_txt_and_meaning(dns_lab: DnsLab) -> None:
    report = run(diagnose_ip(LISTED_IP, dns_lab.resolver()))
    assert not report.ok
    zen = listing(report.listings, ZEN)
    assert zen.status is ListingStatus.LISTED
    assert zen.answers == ("127.0.0.2",)
    assert zen.txt == (f"Listed by SBL, see https://check.spamhaus.org/query/ip/{LISTED_IP}",)
    assert any("spam source" in meaning for meaning in zen.meanings)  # the table's meaning of 127.0.0.2
    assert zen.delist_url
    assert listing(report.listings, SPAMCOP).listed
    listed = sorted(item.zone for item in report.listings if item.listed)
    assert listed == [SPAMCOP, ZEN]
    assert "dnsbl.listed" in codes(report.findings)
    assert "Spamhaus ZEN" in report.verdict
    assert f"listed on 2 of {len(report.listings)}" in report.verdict
    assert report.to_dict()["ok"] is False


def test_two_answers_from_one_list_give_both_meanings(dns_lab: DnsLab) -> None:
    report = run(diagnose_ip(DOUBLE_LISTED_IP, dns_lab.resolver(), zones=[ZEN]))
    (zen,) = report.listings
    assert zen.listed
    assert sorted(zen.answers) == ["127.0.0.10", "127.0.0.4"]
    assert any("XBL" in meaning for meaning in zen.meanings)
    assert any("PBL" in meaning for meaning in zen.meanings)
    assert len(zen.txt) == 2


def test_error_answer_is_an_error_not_a_listing(dns_lab: DnsLab) -> None:
    report = run(diagnose_ip(ERROR_IP, dns_lab.resolver()))
    zen = listing(report.listings, ZEN)
    assert zen.status is ListingStatus.ERROR
    assert not zen.listed
    assert zen.answers == ("127.255.255.254",)
    assert not any(item.listed for item in report.listings)
    assert "dnsbl.listed" not in codes(report.findings)
    refused = [item for item in report.findings if "127.255.255.254" in item.message]
    assert refused, report.findings
    assert all(item.severity is not Severity.ERROR for item in refused)
    assert "listed on none" in report.verdict


def test_clean_ip_with_forward_confirmed_ptr_is_ok(dns_lab: DnsLab) -> None:
    report = run(diagnose_ip(CLEAN_IP, dns_lab.resolver()))
    assert report.ok, report.findings
    assert report.ip == CLEAN_IP
    assert report.listings, "every zone of the table is asked"
    assert all(item.status is ListingStatus.NOT_LISTED for item in report.listings), report.listings
    assert report.ptr == (CLEAN_PTR,)
    assert report.fcrdns is True


def test_ip_without_ptr_is_missing_reverse_dns(dns_lab: DnsLab) -> None:
    report = run(diagnose_ip(NO_PTR_IP, dns_lab.resolver()))
    assert not report.ok
    assert report.ptr == ()
    assert report.fcrdns is False
    assert not any(item.listed for item in report.listings)
    assert "ptr.missing" in codes(report.findings)


def test_ptr_that_does_not_resolve_back_is_not_confirmed(dns_lab: DnsLab) -> None:
    report = run(diagnose_ip(UNCONFIRMED_IP, dns_lab.resolver()))
    assert report.ptr == (UNCONFIRMED_PTR,)
    assert report.fcrdns is False
    assert not report.ok
    assert "ptr.not_confirmed" in codes(report.findings)


def test_a_list_that_cannot_be_asked_is_an_error_not_a_clean_result(dns_lab: DnsLab) -> None:
    report = run(diagnose_ip(CLEAN_IP, dns_lab.resolver(), zones=[ZEN, "dnsbl.example.net"]))
    unreachable = listing(report.listings, "dnsbl.example.net")
    assert unreachable.status is ListingStatus.ERROR  # the lab's unbound refuses every name outside it
    assert unreachable.answers == ()
    assert listing(report.listings, ZEN).status is ListingStatus.NOT_LISTED
    assert not report.ok
    assert "dnsbl.no_answer" in codes(report.findings)


# --- check domain ----------------------------------------------------------------------------------------------


def test_spf_include_chain_over_ten_lookups(dns_lab: DnsLab) -> None:
    report = run(diagnose_domain(DEEP_SPF_DOMAIN, dns_lab.resolver(), ip=CLEAN_IP))
    assert report.spf == f"v=spf1 include:i1.{DEEP_SPF_DOMAIN} -all"
    assert report.spf_lookups > 10
    assert report.spf_lookups <= SPF_CHAIN
    assert report.spf_result is not None
    assert report.spf_result.result is SpfOutcome.PERMERROR
    assert not report.ok
    too_many = [item for item in report.findings if item.code == "spf.too_many_lookups"]
    assert too_many
    assert too_many[0].severity is Severity.ERROR


def test_strict_dmarc_and_split_2048_bit_dkim_key(dns_lab: DnsLab) -> None:
    report = run(diagnose_domain(STRICT_DOMAIN, dns_lab.resolver(), ip=CLEAN_IP, dkim_selectors=[DKIM_SELECTOR]))
    assert report.domain == STRICT_DOMAIN
    assert report.spf == STRICT_SPF
    assert report.spf_result is not None
    assert report.spf_result.result is SpfOutcome.PASS
    assert report.dmarc is not None
    record = report.dmarc.record
    assert record is not None
    assert record.raw == STRICT_DMARC
    assert (record.policy, record.adkim, record.aspf) == ("reject", "s", "s")
    assert not {"dmarc.p_none", "dmarc.no_record", "dmarc.no_rua"} & codes(report.findings)
    (dkim,) = report.dkim
    assert dkim.selector == DKIM_SELECTOR
    assert dkim.key is not None
    assert dkim.key.key_bits == 2048
    assert dkim.key.key_type == "rsa"
    assert dkim.key.public_key == base64.b64decode(dns_lab.dkim_public_key)
    assert not [item for item in dkim.findings if item.severity is Severity.ERROR]
    assert not {"dkim.rsa_short", "dkim.rsa_weak", "dkim.bad_key"} & codes(report.findings)
    assert report.null_mx is False
    assert report.mx == ((10, f"mx.{STRICT_DOMAIN}"),)
    assert report.ok, report.findings


def test_spf_fail_for_an_address_outside_the_record(dns_lab: DnsLab) -> None:
    report = run(diagnose_domain(STRICT_DOMAIN, dns_lab.resolver(), ip="198.51.100.7"))
    assert report.spf_result is not None
    assert report.spf_result.result is SpfOutcome.FAIL
    assert not report.ok


def test_null_mx_domain(dns_lab: DnsLab) -> None:
    report = run(diagnose_domain(NULL_MX_DOMAIN, dns_lab.resolver()))
    assert report.null_mx is True
    assert len(report.mx) == 1
    assert report.mx[0][0] == 0
    assert report.mx[0][1] in ("", ".")
    assert "mx.null" in codes(report.findings)
    assert report.ok, report.findings


# --- probe -----------------------------------------------------------------------------------------------------


def probe_lab(
    dns_lab: DnsLab, smtp_lab: SmtpLab, *, source: str, rcpt: str | None = RCPT_OK, send: bool = False, port: int = 0
) -> ProbeReport:
    job = probe(
        PROBE_DOMAIN,
        resolver=dns_lab.resolver(),
        port=port or smtp_lab.port,
        mail_from=MAIL_FROM,
        rcpt_to=rcpt,
        helo="client.lab.test",
        source_ip=source,
        send=send,
    )
    return run(job)


def only_attempt(report: ProbeReport) -> Attempt:
    (attempt,) = report.attempts
    return attempt


def step_names(attempt: Attempt) -> list[str]:
    return [str(step.name) for step in attempt.steps]


def reply_of(attempt: Attempt, name: str) -> Reply:
    step = next(item for item in attempt.steps if item.name == name)
    assert step.reply is not None, step
    return step.reply


def test_probe_421_greeting_is_reported_and_nothing_more_is_sent(dns_lab: DnsLab, smtp_lab: SmtpLab) -> None:
    mark = smtp_lab.log_mark()
    report = probe_lab(dns_lab, smtp_lab, source=GREETING_421_SOURCE)
    assert not report.ok
    assert report.target == PROBE_DOMAIN
    attempt = only_attempt(report)
    assert (attempt.host, attempt.address, attempt.port) == (PROBE_MX, "127.0.0.1", smtp_lab.port)
    assert step_names(attempt) == ["connect", "greeting"]
    greeting = attempt.steps[-1]
    assert greeting.command is None
    assert greeting.reply is not None
    assert (greeting.reply.basic, greeting.reply.enhanced) == ("421", "4.7.0")
    assert GREETING_421_TEXT in " ".join(greeting.reply.text)
    assert greeting.explanation is not None
    assert greeting.explanation.reason == "rate_limited"
    assert not greeting.explanation.permanent
    assert greeting.explanation.retry
    # Postfix counts the commands it received before it hung up: none
    line = postfix_disconnect(smtp_lab, mark, GREETING_421_SOURCE)
    assert "commands=0/0" in line, line


def test_probe_554_greeting_sends_quit_and_gets_221(dns_lab: DnsLab, smtp_lab: SmtpLab) -> None:
    mark = smtp_lab.log_mark()
    report = probe_lab(dns_lab, smtp_lab, source=GREETING_554_SOURCE)
    assert not report.ok
    attempt = only_attempt(report)
    assert step_names(attempt) == ["connect", "greeting", "quit"]
    greeting = reply_of(attempt, "greeting")
    assert (greeting.basic, greeting.enhanced) == ("554", "5.7.1")
    assert GREETING_554_TEXT in " ".join(greeting.text)
    explanation = attempt.steps[1].explanation
    assert explanation is not None
    assert explanation.reason == "blocklisted"
    assert explanation.permanent
    quit_step = attempt.steps[-1]
    assert quit_step.command == "QUIT"
    assert reply_of(attempt, "quit").basic == "221"
    # the server saw exactly one command, the QUIT
    line = postfix_disconnect(smtp_lab, mark, GREETING_554_SOURCE)
    assert "quit=1 commands=1" in line, line


def test_probe_554_at_rcpt(dns_lab: DnsLab, smtp_lab: SmtpLab) -> None:
    mark = smtp_lab.log_mark()
    report = probe_lab(dns_lab, smtp_lab, source=RCPT_554_SOURCE, rcpt=RCPT_554)
    assert not report.ok
    attempt = only_attempt(report)
    assert step_names(attempt) == ["connect", "greeting", "ehlo", "mail", "rcpt", "quit"]
    rcpt = next(step for step in attempt.steps if step.name == "rcpt")
    assert rcpt.command == f"RCPT TO:<{RCPT_554}>"
    assert rcpt.reply is not None
    assert (rcpt.reply.basic, rcpt.reply.enhanced) == ("554", "5.7.1")
    assert RCPT_554_TEXT in " ".join(rcpt.reply.text)
    assert rcpt.explanation is not None
    assert rcpt.explanation.permanent
    assert reply_of(attempt, "quit").basic == "221"
    line = postfix_disconnect(smtp_lab, mark, RCPT_554_SOURCE)
    assert "rcpt=0/1" in line
    assert "quit=1" in line


def test_probe_421_at_rcpt_sends_nothing_more(dns_lab: DnsLab, smtp_lab: SmtpLab) -> None:
    mark = smtp_lab.log_mark()
    report = probe_lab(dns_lab, smtp_lab, source=RCPT_421_SOURCE, rcpt=RCPT_421)
    assert not report.ok
    attempt = only_attempt(report)
    assert step_names(attempt) == ["connect", "greeting", "ehlo", "mail", "rcpt"]
    rcpt = reply_of(attempt, "rcpt")
    assert (rcpt.basic, rcpt.enhanced) == ("421", "4.7.0")
    assert RCPT_421_TEXT in " ".join(rcpt.text)
    explanation = attempt.steps[-1].explanation
    assert explanation is not None
    assert not explanation.permanent
    line = postfix_disconnect(smtp_lab, mark, RCPT_421_SOURCE)
    assert "quit=" not in line, line


def test_probe_clean_session(dns_lab: DnsLab, smtp_lab: SmtpLab) -> None:
    mark = smtp_lab.log_mark()
    report = probe_lab(dns_lab, smtp_lab, source=CLEAN_SOURCE, rcpt=RCPT_OK)
    assert report.ok, report.findings
    attempt = only_attempt(report)
    assert step_names(attempt) == ["connect", "greeting", "ehlo", "mail", "rcpt", "quit"]
    codes_seen = [step.reply.basic if step.reply else None for step in attempt.steps]
    assert codes_seen == [None, "220", "250", "250", "250", "221"]
    assert all(step.error is None and step.explanation is None for step in attempt.steps)
    assert all(step.elapsed >= 0 for step in attempt.steps)
    assert attempt.steps[2].command == "EHLO client.lab.test"
    assert attempt.steps[3].command == f"MAIL FROM:<{MAIL_FROM}>"
    line = postfix_disconnect(smtp_lab, mark, CLEAN_SOURCE)
    assert "ehlo=1 mail=1 rcpt=1 quit=1 commands=4" in line, line


def test_probe_sends_a_message_when_asked(dns_lab: DnsLab, smtp_lab: SmtpLab) -> None:
    mark = smtp_lab.log_mark()
    report = probe_lab(dns_lab, smtp_lab, source=CLEAN_SOURCE, rcpt=RCPT_OK, send=True)
    assert report.ok, report.findings
    attempt = only_attempt(report)
    assert step_names(attempt) == ["connect", "greeting", "ehlo", "mail", "rcpt", "data", "end_of_data", "quit"]
    assert reply_of(attempt, "data").basic == "354"
    assert reply_of(attempt, "end_of_data").basic == "250"
    # Postfix accepted the message and delivered it to its discard transport
    lines = smtp_lab.wait_for_log(mark, f"to=<{RCPT_OK}>")
    assert any("status=sent" in line for line in lines if f"to=<{RCPT_OK}>" in line), lines
    assert "data=1" in postfix_disconnect(smtp_lab, mark, CLEAN_SOURCE)


def test_probe_null_mx_domain_connects_nowhere(dns_lab: DnsLab) -> None:
    report = run(probe(NULL_MX_DOMAIN, resolver=dns_lab.resolver(), port=free_port()))
    assert report.attempts == ()
    assert not report.ok
    assert "probe.null_mx" in codes(report.findings)


def test_probe_refused_port(dns_lab: DnsLab, smtp_lab: SmtpLab) -> None:
    report = probe_lab(dns_lab, smtp_lab, source=CLEAN_SOURCE, port=smtp_lab.refused_port)
    assert not report.ok
    attempt = only_attempt(report)
    assert attempt.port == smtp_lab.refused_port
    assert step_names(attempt) == ["connect"]
    connect = attempt.steps[0]
    assert connect.reply is None
    assert connect.error == "refused"
    assert any(item.severity is Severity.ERROR for item in report.findings)


# --- the commands ----------------------------------------------------------------------------------------------


def smtplens(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("smtplens", path=str(Path(sys.executable).parent)) or "smtplens"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, check=False)


def cli_json(*args: str, exit_code: int) -> dict[str, Any]:
    result = smtplens(*args, "--json")
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def test_cli_check_ip_listed(dns_lab: DnsLab) -> None:
    data = cli_json("check", "ip", LISTED_IP, "--dns", dns_lab.server, exit_code=3)
    assert data["ok"] is False
    assert data["ip"] == LISTED_IP
    zen = next(item for item in data["listings"] if item["zone"] == ZEN)
    assert zen["status"] == "listed"
    assert zen["answers"] == ["127.0.0.2"]
    assert zen["txt"] == [f"Listed by SBL, see https://check.spamhaus.org/query/ip/{LISTED_IP}"]
    assert "dnsbl.listed" in {item["code"] for item in data["findings"]}


def test_cli_check_ip_clean(dns_lab: DnsLab) -> None:
    data = cli_json("check", "ip", CLEAN_IP, "--dns", dns_lab.server, exit_code=0)
    assert data["ok"] is True
    assert data["ptr"] == [CLEAN_PTR]
    assert data["fcrdns"] is True


def test_cli_check_ip_error_answer(dns_lab: DnsLab) -> None:
    data = cli_json("check", "ip", ERROR_IP, "--dns", dns_lab.server, exit_code=3)
    zen = next(item for item in data["listings"] if item["zone"] == ZEN)
    assert zen["status"] == "error"


def test_cli_check_domain(dns_lab: DnsLab) -> None:
    args = ("check", "domain", STRICT_DOMAIN, "--dns", dns_lab.server, "--ip", CLEAN_IP)
    data = cli_json(*args, "--dkim-selector", DKIM_SELECTOR, exit_code=0)
    assert data["ok"] is True
    assert data["domain"] == STRICT_DOMAIN
    assert data["spf_result"]["result"] == "pass"
    assert data["dmarc"]["record"]["policy"] == "reject"
    assert data["dkim"][0]["key"]["key_bits"] == 2048


def test_cli_check_domain_too_many_spf_lookups(dns_lab: DnsLab) -> None:
    data = cli_json("check", "domain", DEEP_SPF_DOMAIN, "--dns", dns_lab.server, exit_code=3)
    assert data["spf_lookups"] > 10
    assert "spf.too_many_lookups" in {item["code"] for item in data["findings"]}


def test_cli_check_domain_null_mx(dns_lab: DnsLab) -> None:
    data = cli_json("check", "domain", NULL_MX_DOMAIN, "--dns", dns_lab.server, exit_code=0)
    assert data["null_mx"] is True
    assert "mx.null" in {item["code"] for item in data["findings"]}


def test_cli_without_any_dns_answer_exits_1(dns_lab: DnsLab) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = smtplens("check", "domain", STRICT_DOMAIN, "--dns", dead, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()


def probe_cli(dns_lab: DnsLab, smtp_lab: SmtpLab, *args: str) -> subprocess.CompletedProcess[str]:
    common = ("--dns", dns_lab.server, "--from", MAIL_FROM, "--helo", "client.lab.test", "--timeout", "30")
    return smtplens("probe", PROBE_DOMAIN, *common, *args)


def steps_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    (attempt,) = data["attempts"]
    steps: list[dict[str, Any]] = attempt["steps"]
    return steps


def test_cli_probe_554_greeting(dns_lab: DnsLab, smtp_lab: SmtpLab) -> None:
    mark = smtp_lab.log_mark()
    result = probe_cli(dns_lab, smtp_lab, "--port", str(smtp_lab.port), "--source-ip", GREETING_554_SOURCE, "--json")
    assert result.returncode == 3, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["target"] == PROBE_DOMAIN
    steps = steps_of(data)
    assert [step["name"] for step in steps] == ["connect", "greeting", "quit"]
    assert steps[1]["reply"]["basic"] == "554"
    assert steps[1]["explanation"]["reason"] == "blocklisted"
    assert steps[2]["command"] == "QUIT"
    assert steps[2]["reply"]["basic"] == "221"
    postfix_disconnect(smtp_lab, mark, GREETING_554_SOURCE)


def test_cli_probe_421_greeting_text(dns_lab: DnsLab, smtp_lab: SmtpLab) -> None:
    mark = smtp_lab.log_mark()
    result = probe_cli(dns_lab, smtp_lab, "--port", str(smtp_lab.port), "--source-ip", GREETING_421_SOURCE)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "421 4.7.0" in result.stdout
    assert "too many connections" in result.stdout
    assert "QUIT" not in result.stdout
    assert "Traceback" not in result.stderr
    postfix_disconnect(smtp_lab, mark, GREETING_421_SOURCE)


def test_cli_probe_clean_session(dns_lab: DnsLab, smtp_lab: SmtpLab) -> None:
    mark = smtp_lab.log_mark()
    args = ("--port", str(smtp_lab.port), "--source-ip", CLEAN_SOURCE, "--to", RCPT_OK, "--json")
    result = probe_cli(dns_lab, smtp_lab, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True
    replies = [step["reply"]["basic"] if step["reply"] else None for step in steps_of(data)]
    assert replies == [None, "220", "250", "250", "250", "221"]
    postfix_disconnect(smtp_lab, mark, CLEAN_SOURCE)


def test_cli_probe_refused_port(dns_lab: DnsLab, smtp_lab: SmtpLab) -> None:
    args = ("--port", str(smtp_lab.refused_port), "--source-ip", CLEAN_SOURCE, "--json")
    result = probe_cli(dns_lab, smtp_lab, *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (step,) = steps_of(json.loads(result.stdout))
    assert step["name"] == "connect"
    assert step["error"] == "refused"
