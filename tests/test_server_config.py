"""The TOML configuration of ``smtplens serve`` (``smtplens.server.config``) and how it is assembled."""

from __future__ import annotations

import asyncio
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from smtplens.cli.serve import apply_flags, serve_cmd
from smtplens.model import Stage
from smtplens.server.assemble import assemble, build_policies, server_config
from smtplens.server.config import ConfigError, ServeSettings, load_config, parse_config
from smtplens.server.decisions import Outcome
from smtplens.server.protocol import BodyFacts, MailFrom, RcptTo
from smtplens.server.session import Context, Envelope
from tests.conftest import ROOT
from tests.memory_dns import MemoryResolver

FULL = """
[smtp]
listen = "127.0.0.1:2600"
hostname = "mx.lab.test"
banner = "ESMTP lab"
max_connections = 50
max_per_ip = 5
accept_domains = ["Lab.test"]
accept_recipients = ["boss@elsewhere.test"]
idle_timeout = 30
data_timeout = 20.5
chunking = true
reject_bare_lf = true

[smtp.limits]
message_size = 1000
recipients = 3

[smtp.tls]
certificate = "tls/cert.pem"

[smtp.auth]
users = { alice = "secret" }
without_tls = true

[http]
listen = "127.0.0.1:8100"

[store]
directory = "data"
retention_count = 100

[dns]
server = "127.0.0.1:5300"

[[rate_limit]]
what = "messages"
per = "sender_domain"
count = 10
window = 60

[greylist]
delay = 2

[dnsbl]
zones = ["bl.lab.test"]
at = "rcpt"

[access]
[[access.client]]
pattern = "192.0.2.0/24"
action = "defer"
code = "421"
enhanced = "4.7.0"
text = "go away for now"
disconnect = true

[[access.recipient]]
pattern = "nobody@*"

[spf]
fail = "reject"
softfail = "defer"

[[scenario]]
id = "first"
recipient = "421@*"
reply = "421 4.7.0 Service not available, closing transmission channel"

[[scenario]]
preset = "greylist-plus-address"
"""


def ctx(ip: str = "192.0.2.7", mail: str = "a@sender.test", rcpt: str | None = None) -> Context:
    return Context(Envelope(ip, "client.test", MailFrom(mail)), RcptTo(rcpt) if rcpt else None)


def test_a_full_file_is_read_into_typed_settings(tmp_path: Path) -> None:
    path = tmp_path / "smtplens.toml"
    path.write_text(FULL, encoding="utf-8")
    settings = load_config(path)
    smtp = settings.smtp
    assert smtp.listen == ("127.0.0.1", 2600) and smtp.hostname == "mx.lab.test" and smtp.banner == "ESMTP lab"
    assert smtp.accept_domains == frozenset({"lab.test"}) and smtp.accept_recipients == frozenset(
        {"boss@elsewhere.test"}
    )
    assert (smtp.max_connections, smtp.max_per_ip, smtp.idle_timeout, smtp.data_timeout) == (50, 5, 30.0, 20.5)
    assert smtp.limits.message_size == 1000 and smtp.limits.recipients == 3 and smtp.limits.text_line == 1000
    assert smtp.certificate == tmp_path / "tls" / "cert.pem" and smtp.users == {"alice": "secret"}
    assert settings.http.listen == ("127.0.0.1", 8100) and settings.dns == ("127.0.0.1", 5300)
    assert settings.store.directory == tmp_path / "data" and settings.store.retention_count == 100
    assert [(r.what, r.per, r.count, r.window) for r in settings.rate_limits] == [
        ("messages", "sender_domain", 10, 60.0)
    ]
    assert settings.greylist is not None and settings.greylist.delay == 2.0
    assert settings.dnsbl is not None and settings.dnsbl.zones == ("bl.lab.test",) and settings.dnsbl.at == "rcpt"
    assert settings.access is not None and settings.access.clients[0].decision is not None
    assert settings.access.recipients[0].decision is None
    assert settings.checks.spf is not None and settings.checks.spf.fail == "reject" and settings.checks.dkim is None
    assert [scenario.id for scenario in settings.scenarios] == ["first", "greylist-plus-address"]


def test_settings_become_the_server_and_its_pipeline() -> None:
    settings = parse_config(
        {
            "smtp": {"accept_domains": ["lab.test"], "hostname": "mx.lab.test", "auth": {"users": {"u": "p"}}},
            "greylist": {"delay": 5},
            "access": {"client": [{"pattern": "192.0.2.0/24", "action": "reject", "text": "no"}]},
            "dnsbl": {"zones": ["bl.lab.test"]},
        }
    )
    config = server_config(settings)
    assert config.session.hostname == "mx.lab.test" and config.accepted_domains == frozenset({"lab.test"})
    assert config.session.credentials is not None and config.session.credentials("u", "p")
    assert not config.session.credentials("u", "x") and not config.session.credentials("v", "p")
    names = [p.name for p in build_policies(settings, lambda server: MemoryResolver({}))]
    assert names == ["scenario", "relay", "access", "dnsbl", "greylist"]
    pipeline = assemble(settings, lambda server: MemoryResolver({})).pipeline
    refused = asyncio.run(pipeline.decide(Stage.CONNECT, ctx()))
    assert refused.outcome is Outcome.REJECT and refused.text == "no" and refused.policy == "access"
    greylisted = asyncio.run(pipeline.decide(Stage.RCPT, ctx("198.51.100.1", rcpt="x@lab.test")))
    assert greylisted.outcome is Outcome.DEFER and greylisted.policy == "greylist"


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"smtp": {"hostnme": "x"}}, "smtp.hostnme: unknown key (did you mean 'hostname'?)"),
        ({"smtp": {"max_connections": 0}}, "smtp.max_connections: must be at least 1"),
        ({"smtp": {"max_connections": "10"}}, "smtp.max_connections: must be an integer"),
        ({"smtp": {"maintenance": 1}}, "smtp.maintenance: must be true or false"),
        ({"smtp": {"listen": "nowhere"}}, "smtp.listen: expected HOST:PORT"),
        ({"smtp": {"limits": {"recipients": 1.5}}}, "smtp.limits.recipients: must be an integer"),
        ({"smtp": {"tls": {"key": "k.pem"}}}, "smtp.tls.key: a key needs a certificate"),
        ({"smtp": {"auth": {"users": {"a": 1}}}}, "smtp.auth.users.a: must be a string"),
        ({"rate_limit": [{"what": "messages", "count": 1}]}, "rate_limit[0]: a rate limit needs count and window"),
        ({"rate_limit": [{"what": "mails", "count": 1, "window": 1}]}, "rate_limit[0].what: must be one of"),
        (
            {"rate_limit": [{"what": "connections", "per": "sender_domain", "count": 1, "window": 1}]},
            "rate_limit[0]: connections are limited per client only",
        ),
        ({"rate_limit": {"what": "messages"}}, "rate_limit: must be a list"),
        ({"dnsbl": {"zones": []}}, "dnsbl.zones: list at least one zone"),
        ({"access": {"client": [{"pattern": "x", "action": "maybe"}]}}, "access.client[0]: action must be"),
        ({"access": {"sender": [{"action": "reject"}]}}, "access.sender[0].pattern: required"),
        ({"access": {"client": [{"pattern": "a", "code": "250"}]}}, "access.client[0]: reject needs a 5yz code"),
        ({"greylist": {"delay": -1}}, "greylist.delay: must be at least 0"),
        ({"store": {"enabled": "no"}}, "store.enabled: must be true or false"),
        ({"unknown": {}}, "unknown: unknown key"),
        ({"scenario": [{"recipient": "x@*", "reply": "250 ok", "colour": 1}]}, "scenario: [[scenario]] #1"),
        ({"spf": {"fail": "bounce"}}, "spf.fail: must be one of accept, reject, defer, not 'bounce'"),
        ({"dkim": {"require": "always"}}, "dkim.require: must be one of off, signed, pass, author"),
        ({"dmarc": {"quarantine": "drop"}}, "dmarc.quarantine: must be one of accept, reject"),
        ({"content": {"disable": ["colour"]}}, "content.disable: unknown checks ['colour']"),
        ({"content": {"domain_sizes": {"a.test": 0}}}, "content.domain_sizes.a.test: must be a positive integer"),
        ({"spam": {"rule": [{"name": "X", "score": 1}]}}, "spam.rule[0].pattern: required"),
        ({"spam": {"rule": [{"name": "bad name", "pattern": "x"}]}}, "spam.rule[0]: spam rule name"),
        ({"spam": {"filter": "clamav"}}, "spam.filter: must be spamd or rspamd"),
    ],
)
def test_mistakes_name_the_key_and_the_problem(data: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="lab.toml")
    assert str(caught.value).startswith(f"lab.toml: {where}"), str(caught.value)


def test_unreadable_and_broken_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[smtp\nhostname = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)


def test_flags_override_the_file() -> None:
    settings = parse_config(
        {
            "smtp": {"accept_domains": ["a.test"], "max_connections": 5, "listen": "127.0.0.1:2600"},
            "dnsbl": {"zones": ["one.test"], "at": "rcpt"},
            "http": {"listen": "127.0.0.1:8100"},
        }
    )
    flags = {
        "domains": ("B.test",),
        "max_connections": 7,
        "listen": "127.0.0.1:2700",
        "dnsbl": ("two.test",),
        "http": "off",
        "no_store": True,
        "greylist": 9.0,
    }
    merged = apply_flags(settings, flags)
    assert merged.smtp.accept_domains == frozenset({"a.test", "b.test"}) and merged.smtp.max_connections == 7
    assert merged.smtp.listen == ("127.0.0.1", 2700) and merged.http.listen is None and not merged.store.enabled
    assert merged.dnsbl is not None and merged.dnsbl.zones == ("one.test", "two.test") and merged.dnsbl.at == "rcpt"
    assert merged.greylist is not None and merged.greylist.delay == 9.0
    assert apply_flags(settings, {"max_connections": None}) == settings
    with pytest.raises(ValueError, match=r"^--dns: expected HOST:PORT"):
        apply_flags(settings, {"dns": "x"})


def test_serve_reports_a_bad_config_file_as_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[smtp]\nhostname = "two words"\n', encoding="utf-8")
    result = CliRunner().invoke(serve_cmd, ["--config", str(path)])
    assert result.exit_code == 2 and "hostname" in result.output
    path.write_text("[smtp]\nmax_connections = 0\n", encoding="utf-8")
    result = CliRunner().invoke(serve_cmd, ["--config", str(path)])
    assert result.exit_code == 2 and "smtp.max_connections: must be at least 1" in result.output
    assert ServeSettings().http.listen is None


def test_configured_scenarios_are_played_first_and_can_change_at_run_time() -> None:
    settings = parse_config(
        {"smtp": {"accept_domains": ["lab.test"]}, "scenario": [{"recipient": "421@*", "reply": "421 4.7.0 busy"}]}
    )
    assembly = assemble(settings, lambda server: MemoryResolver({}))
    busy = asyncio.run(assembly.pipeline.decide(Stage.RCPT, ctx(rcpt="421@lab.test")))
    assert busy.code == "421" and busy.policy is not None and busy.policy.startswith("scenario")
    assembly.scenarios.add({"id": "unknown", "recipient": "gone@*", "reply": "550 5.1.1 User unknown"})
    gone = asyncio.run(assembly.pipeline.decide(Stage.RCPT, ctx(rcpt="gone@lab.test")))
    assert gone.outcome is Outcome.REJECT and gone.enhanced == "5.1.1"


def test_message_checks_are_assembled_in_order() -> None:
    settings = parse_config(
        {
            "smtp": {"accept_domains": ["lab.test"], "hostname": "mx.lab.test"},
            "spf": {"fail": "reject"},
            "dkim": {"require": "signed"},
            "dmarc": {},
            "content": {"disable": ["bare_cr"], "max_size": 5000},
            "spam": {"threshold": 3, "filter": "spamd", "rule": [{"name": "CASINO", "score": 4, "pattern": "casino"}]},
        }
    )
    spam = settings.checks.spam
    assert spam is not None and spam.filter_address == ("127.0.0.1", 783)
    assert [rule.name for rule in spam.rules] == ["GTUBE", "CASINO"]
    policies = build_policies(settings, lambda server: MemoryResolver({}))
    assert [p.name for p in policies] == ["scenario", "relay", "content", "auth", "spam"]
    message = b"From: a@sender.test\r\nSubject: casino\r\n\r\nvisit the casino\r\n"
    pipeline = assemble(settings, lambda server: MemoryResolver({})).pipeline
    context = Context(
        Envelope("192.0.2.7", "c.test", MailFrom("a@sender.test"), (RcptTo("b@lab.test"),)), None, message
    )
    # No Date field: the content check answers first, with 554 5.6.0.
    facts = BodyFacts(len(message), False, False, False, False, False, False)
    refused = asyncio.run(pipeline.decide(Stage.END_OF_DATA, Context(context.envelope, None, message, facts)))
    assert (refused.code, refused.enhanced, refused.policy) == ("554", "5.6.0", "content")


def test_every_example_in_the_configuration_docs_is_valid() -> None:
    text = (ROOT / "docs" / "server-config.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    for block in blocks:
        settings = parse_config(tomllib.loads(block), base=ROOT)
        assemble(settings, lambda server: MemoryResolver({}))
