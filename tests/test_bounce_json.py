"""``smtplens bounce --json`` output against docs/schema/bounce.schema.json and docs/json.md.

Real CLI output (every bounce fixture, a mail that is not a bounce, a file that cannot be read) is validated
against the schema; the schema's fields and docs/json.md's bounce section must name the same fields.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
from click.testing import CliRunner

from smtplens.cli.main import cli
from smtplens.knowledge.reasons import reason_table
from tests.conftest import ROOT

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
SCHEMA = ROOT / "docs" / "schema" / "bounce.schema.json"
DOC = ROOT / "docs" / "json.md"


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return loaded


def _objects(*paths: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["bounce", "--json", *paths], catch_exceptions=False, standalone_mode=False)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(_schema())


def test_cli_output_for_every_fixture_matches_the_schema(tmp_path: Path) -> None:
    plain = tmp_path / "hello.eml"
    plain.write_bytes(b"From: a@example.org\nTo: b@example.net\nSubject: lunch?\n\nAt noon?\n")
    fixtures = sorted(str(p) for p in FIXTURES.glob("*.eml"))
    objects = _objects(*fixtures, str(plain), str(tmp_path / "missing.eml"))
    validator = jsonschema.Draft202012Validator(_schema())
    for obj in objects:
        errors = sorted(validator.iter_errors(obj), key=str)
        assert not errors, f"{obj.get('file')}: {errors[0].message}"
    table = reason_table().reasons
    recipients = [o for o in objects if o.get("recipient")]
    assert len(recipients) >= len(fixtures) - 2  # every bounce fixture names a recipient (plain.eml does not)
    for obj in recipients:
        assert obj["reason"] in table, obj["reason"]
        assert obj["sisimai"] == table[obj["reason"]].sisimai
    kinds = {o["kind"] for o in objects if "kind" in o}
    assert {"bounce", "feedback", "auto_reply", "delivery_notice", "not_bounce"} <= kinds
    assert any(o.get("error") for o in objects)  # the missing file


def _doc_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## `smtplens bounce")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_docs_describe_every_field_of_the_schema() -> None:
    section = _doc_section()
    documented = set(re.findall(r"^\| `([a-z_]+)`", section, re.M))
    defs = _schema()["$defs"]
    fields = set(defs["recipient"]["properties"]) | set(defs["mail"]["properties"]) | set(defs["error"]["properties"])
    assert fields == documented
