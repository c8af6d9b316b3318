"""Shared test helpers: where the project's fixtures and the optional shared corpus live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SHARED = Path(os.environ.get("SMTPLENS_SHARED", ROOT.parent / "shared"))
IN_CI = os.environ.get("CI") == "true"

# The fields every explain --json object / Verdict.to_dict() carries (docs/json.md).
EXPLAIN_FIELDS = (
    "basic",
    "enhanced",
    "class",
    "text",
    "remote_host",
    "stage",
    "warnings",
    "reason",
    "permanent",
    "hard_bounce",
    "retry",
    "retry_after",
    "action",
    "provider",
    "evidence",
)


def shared_path(*parts: str) -> Path:
    """A path inside ../shared; skips the test on a user's machine without it, fails in CI."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if IN_CI:
            pytest.fail(f"{path} is missing in CI")
        pytest.skip(f"{path} not present (the shared corpus is optional outside CI)")
    return path
