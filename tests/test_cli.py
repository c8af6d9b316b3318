"""The CLI through its entry point: every code, language and format renders; exit codes; JSON schemas."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from referencing import Registry, Resource

from smtplens.cli.main import cli, main
from smtplens.knowledge.load import knowledge
from tests.conftest import EXPLAIN_FIELDS, ROOT

LANGS = ("en", "de", "fr", "es")
SCHEMAS = ROOT / "docs" / "schema"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schemas = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.schema.json")}
    registry: Registry[Any] = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas.values())
    return jsonschema.Draft202012Validator(schemas[f"{name}.schema.json"], registry=registry)


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), input=stdin, catch_exceptions=False, standalone_mode=False)
    return result.exit_code, result.stdout, result.stderr


def cli_main(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The real entry point in a subprocess, as a user runs it."""
    exe = shutil.which("smtplens", path=str(Path(sys.executable).parent)) or "smtplens"
    return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("lang", LANGS)
def test_every_code_renders_in_every_format(lang: str) -> None:
    validator = _validator("code")
    for key in knowledge().facts:
        for fmt in ("text", "markdown", "html"):
            code, out, _ = run("code", key, "--lang", lang, "--format", fmt)
            assert code == 0 and out.strip(), (key, fmt)
            if fmt == "html":
                assert out.startswith("<!DOCTYPE html>") and f'lang="{lang}"' in out
        code, out, _ = run("code", key, "--lang", lang, "--json")
        data = json.loads(out)
        validator.validate(data)
        assert data["lang"] == lang and data["fallback"] == []


def test_code_json_contract() -> None:
    _code, out, _ = run("code", "421", "--json")
    data = json.loads(out)
    assert data["code"] == "421" and data["kind"] == "basic" and data["class"] == "transient"
    assert data["closes_connection"] is True
    assert set(data["fix"]) == {"sender", "operator"}
    assert "connect" in data["stages"]


@pytest.mark.parametrize("lang", LANGS)
def test_compare_json_and_pages(lang: str) -> None:
    validator = _validator("compare")
    for a, b in [("421", "554"), ("5.7.1", "550"), ("X.1.1", "4.X.X")]:
        code, out, _ = run("compare", a, b, "--lang", lang, "--json")
        assert code == 0
        validator.validate(json.loads(out))
        for fmt in ("text", "markdown", "html"):
            code, out, _ = run("compare", a, b, "--lang", lang, "--format", fmt)
            assert code == 0 and a in out and b in out


def test_html_escapes() -> None:
    _code, out, _ = run("code", "220", "--format", "html")
    assert "&lt;domain&gt;" in out and "<domain>" not in out


def test_codes_list_filters_and_json() -> None:
    code, out, _ = run("codes")
    assert code == 0 and len(out.splitlines()) == len(knowledge().facts)
    code, out, _ = run("codes", "--class", "transient", "--kind", "basic")
    assert {line.split()[0] for line in out.splitlines()} >= {"421", "450", "451", "452"}
    assert all(line.split()[0].startswith("4") for line in out.splitlines())
    code, out, _ = run("codes", "--search", "greylisting", "--json")
    assert "421" in [d["code"] for d in json.loads(out)]
    code, out, _ = run("codes", "--search", "zzzzzz-nothing")
    assert code == 0 and out == ""


def test_parse_json_and_stdin() -> None:
    validator = _validator("parse")
    _, out, _ = run("parse", "550 5.1.1 User unknown", "--json")
    data = json.loads(out)
    validator.validate(data)
    assert data["basic"] == "550" and data["enhanced"] == "5.1.1"
    _, out, _ = run("parse", "-", "--json", stdin="421 4.7.0 busy\n\ngarbage\n554 5.7.1 no\n")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["basic"] for r in rows] == ["421", None, "554"]
    for row in rows:
        validator.validate(row)
    _code, out, _ = run(
        "parse", "host a.example[192.0.2.1] said: 550 5.1.1 x (in reply to RCPT TO command)", "--lang", "de"
    )
    assert "a.example" in out and "RCPT TO" in out


def test_exit_codes_and_suggestions() -> None:
    assert main(["code", "421"]) == 0
    assert main(["code", "5.1.11"]) == 1
    assert main(["code", "nonsense"]) == 1
    assert main(["code", "421", "--lang", "xx"]) == 2
    assert main(["code"]) == 2
    assert main(["compare", "421"]) == 2
    assert main(["codes", "--class", "nope"]) == 2
    assert main(["parse", "garbage", "--strict"]) == 1
    assert main(["frobnicate"]) == 2


def test_real_entry_point() -> None:
    r = cli_main("code", "5.1.11")
    assert r.returncode == 1
    assert "did you mean" in r.stderr and "5.1.1" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli_main("code", "5.7.606")
    assert r.returncode == 1 and "IANA" in r.stderr
    r = cli_main("compare", "421", "554", "--lang", "de")
    assert (r.returncode == 0 and "Wichtigste Unterschiede" in r.stdout) or "Unterschiede" in r.stdout
    r = cli_main("parse", "-", "--json", stdin="\x00\xff garbage\n" + "5" * 100000 + "\n")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    r = cli_main("--version")
    assert r.returncode == 0 and "smtplens" in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["code", ""],
        ["code", "\x01"],
        ["compare", "", ""],
        ["codes", "--search", ""],
        ["parse", ""],
        ["code", "9" * 5000],
    ],
)
def test_bad_input_never_tracebacks(args: list[str]) -> None:
    r = cli_main(*args)
    assert "Traceback" not in r.stderr
    assert r.returncode in (0, 1, 2)


def test_explain_text_and_json() -> None:
    code, out, _ = run("explain", "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown")
    assert code == 0
    assert "user_unknown" in out
    code, out, _ = run("explain", "421 4.7.0 Error: too many connections from 192.0.2.1", "--json", "--lang", "fr")
    data = json.loads(out)
    for key in EXPLAIN_FIELDS:
        assert key in data
    assert data["lang"] == "fr" and data["retry"] is True
    _, out, _ = run("explain", "-", "--json", stdin="550 5.1.1 unknown user\n\n\xff\n421 busy\n")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 3
    assert rows[0]["reason"] == "user_unknown"


def test_explain_shows_the_table_row_that_changed_the_reason() -> None:
    """A provider's reading of its words after DATA (an ``[[after_data]]`` row) is shown with its table."""
    code, out, _ = run(
        "explain", "550 Unknown user hanako@docomo.ne.jp", "--stage", "data", "--host", "mfsmax.docomo.ne.jp"
    )
    assert code == 0
    assert "content_rejected" in out and "rules/providers/nttdocomo.toml" in out


def test_reasons_json() -> None:
    code, out, _ = run("reasons", "--json")
    data = json.loads(out)
    assert code == 0
    ids = [d["id"] for d in data]
    assert ids[0] == "user_unknown" and "undefined" in ids
    for d in data:
        assert {"id", "sisimai", "hard", "meaning", "action"} <= set(d)
    code, out, _ = run("reasons", "--lang", "es")
    assert code == 0 and "user_unknown" in out


def test_terminal_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the output is styled with rich; data in square brackets is shown, not taken as markup."""
    from smtplens.cli import output

    monkeypatch.setattr(output, "is_terminal", lambda: True)
    import smtplens.cli.codes as codes_mod
    import smtplens.cli.explain as explain_mod
    import smtplens.cli.parse as parse_mod

    for mod in (codes_mod, explain_mod, parse_mod):
        if hasattr(mod, "is_terminal"):
            monkeypatch.setattr(mod, "is_terminal", lambda: True)
    code, out, _ = run("explain", "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred")
    assert code == 0 and "[TSS04]" in out
    code, out, _ = run("parse", "550 [5.1.1] unknown [user]")
    assert code == 0 and "[user]" in out
    code, out, _ = run("code", "421", "--lang", "de")
    assert code == 0 and "421" in out
    code, out, _ = run("codes", "--kind", "basic")
    assert code == 0 and "554" in out


def test_backquoted_reply_texts_become_code() -> None:
    _, html, _ = run("code", "421", "--format", "html")
    assert "<code>421 4.3.2 All server ports are busy</code>" in html
    _, md, _ = run("code", "421", "--format", "markdown")
    assert "`421 4.3.2 All server ports are busy`" in md
    _, hostile, _ = run("parse", "550 <script>alert(1)</script>", "--json")
    assert "<script>" in hostile  # JSON keeps data as it is; HTML pages escape it (test_html_escapes)


def test_a_missing_optional_package_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "dns.asyncresolver", None)
    assert main(["check", "ip", "192.0.2.1", "--dns", "127.0.0.1:9"]) == 1
    assert "pip install 'smtplens[diagnose]'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    monkeypatch.delitem(sys.modules, "smtplens.server.http", raising=False)
    monkeypatch.delitem(sys.modules, "smtplens.server.http.app", raising=False)
    assert main(["serve", "--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"]) == 1
    assert "pip install 'smtplens[server]'" in capsys.readouterr().err


def test_python_m_smtplens_is_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smtplens", "compare", "421", "554", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(
        subprocess.run(
            [sys.executable, "-c", "from smtplens.cli.main import run; run()", "compare", "421", "554", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )
