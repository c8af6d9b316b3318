"""Shared helpers of the benchmark scripts: locating the shared corpus and running Sisimai."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SMTPLENS_SHARED", ROOT.parent / "shared"))
SISIMAI_SCRIPT = Path(__file__).with_name("sisimai_match.pl")

# Sisimai merged these reasons in its 2025 releases; comparisons treat each group as one reason.
SISIMAI_MERGES = {
    "toomanyconn": "ratelimited",
    "speeding": "ratelimited",
    "mesgtoobig": "emailtoolarge",
    "exceedlimit": "emailtoolarge",
    "onhold": "undefined",
    "": "undefined",
}


def sisimai_available() -> bool:
    if shutil.which("perl") is None:
        return False
    probe = subprocess.run(["perl", "-MSisimai::Reason", "-e", "1"], capture_output=True, check=False)
    return probe.returncode == 0


def _encode(lines: list[str]) -> str:
    return "".join(line.replace("\r", "").replace("\n", "\\n") + "\n" for line in lines)


def sisimai_match(replies: list[str]) -> list[str]:
    """Sisimai::Reason->match() for each reply, in one Perl process."""
    out = subprocess.run(
        ["perl", str(SISIMAI_SCRIPT)], input=_encode(replies), capture_output=True, text=True, check=True
    )
    return out.stdout.split("\n")[: len(replies)]


def sisimai_time(replies: list[str], rounds: int) -> float:
    """Seconds Sisimai::Reason->match() takes for ``rounds`` passes over ``replies`` (startup excluded)."""
    out = subprocess.run(
        ["perl", str(SISIMAI_SCRIPT), "--time", str(rounds)],
        input=_encode(replies),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stderr.strip().splitlines()[-1])


def merged(name: str) -> str:
    return SISIMAI_MERGES.get(name, name)


def load_replies() -> list[dict[str, object]]:
    path = SHARED / "corpus" / "replies" / "replies-dev.jsonl"
    if not path.exists():
        raise SystemExit(f"{path} not found: set SMTPLENS_SHARED to the shared folder")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
