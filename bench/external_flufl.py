"""Generalisation check on real bounces outside the shared corpus: the test mails of flufl.bounce (GNU Mailman's
bounce detector), read with smtplens and compared with the addresses and the temporary/permanent flag its tests
expect.

Usage: python bench/external_flufl.py [--source DIR] [--show]
Without ``--source`` the flufl.bounce source distribution is fetched with ``pip download`` (from the package index
this machine is configured with) into a temporary folder; ``--source`` names an unpacked copy instead. Nothing of
it is kept or copied into the project. flufl.bounce's table (``tests/test_detectors.py``: detector, file, expected
addresses, temporary or not) is read as data with ``ast.literal_eval``; an empty address list means "not a bounce".
Where flufl expects the Original-Recipient and smtplens gives the Final-Recipient (both are in smtplens's result),
the address counts as not found: the figures are a floor.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from pathlib import Path

from smtplens.bounce import Action, Kind, decode_bounce

_TABLE = "DETECTORS = ["


def fetch(into: Path) -> Path:
    """The unpacked flufl.bounce source distribution, fetched with pip into ``into``."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "flufl.bounce",
            "-d",
            str(into),
        ],
        check=True,
    )
    archive = next(into.glob("flufl*bounce-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return next(p for p in into.iterdir() if p.is_dir())


def expectations(source: Path) -> dict[str, tuple[set[str], bool]]:
    """file name → (expected addresses, lower case; whether flufl calls the failure temporary)."""
    text = (source / "tests" / "test_detectors.py").read_text(encoding="utf-8")
    start = text.index(_TABLE) + len(_TABLE) - 1
    end = text.index("\n]\n", start) + 2
    rows = ast.literal_eval(text[start:end])
    table: dict[str, tuple[set[str], bool]] = defaultdict(lambda: (set(), False))
    for _detector, name, addresses, temporary in rows:
        known, _ = table[name]
        table[name] = (known | {a.decode().lower() for a in addresses}, bool(temporary))
    return dict(table)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", type=Path, help="an unpacked flufl.bounce source distribution")
    ap.add_argument("--show", action="store_true", help="list the mails where smtplens differs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or fetch(Path(tmp))
        table = expectations(source)
        found = wanted = mails_right = bounce_mails = quiet = non_bounces = 0
        flags_agree = flags = 0
        differences: list[str] = []
        for name, (addresses, temporary) in sorted(table.items()):
            path = source / "tests" / "data" / name
            if not path.exists():
                continue
            result = decode_bounce(path.read_bytes())
            got = {r.recipient.lower() for r in result.recipients}
            if not addresses:
                non_bounces += 1
                quiet += result.kind is not Kind.BOUNCE
                continue
            bounce_mails += 1
            wanted += len(addresses)
            found += len(addresses & got)
            mails_right += addresses <= got
            if addresses - got:
                differences.append(f"  {name}: expected {sorted(addresses)}, read {sorted(got)} ({result.decoder})")
            if result.recipients:
                flags += 1
                delayed = any(r.action is Action.DELAYED for r in result.recipients)
                flags_agree += delayed == temporary
    print(f"flufl.bounce test mails: {bounce_mails} bounces, {non_bounces} other mails")
    print(f"expected addresses found:        {found}/{wanted} ({found / max(wanted, 1):.1%})")
    print(f"bounces with every address:      {mails_right}/{bounce_mails}")
    print(f"temporary vs delayed agrees:     {flags_agree}/{flags}")
    print(f"other mails not read as bounces: {quiet}/{non_bounces}")
    if args.show:
        print("\n".join(differences))
    return 0


if __name__ == "__main__":
    sys.exit(main())
