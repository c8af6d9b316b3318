"""Mails per second of smtplens.bounce, single core, side by side with Sisimai 4.25 on the same files.

Usage: python bench/speed_bounces.py [--rounds R]
Every mail of ../shared/corpus/sisimai/maildir is read from disk and decoded, ``R`` times over; both sides read
the files themselves (Sisimai->make(path), smtplens's iter_mails + decode_bounce). Start-up (Python and Perl
loading their modules and tables) is not timed: each side decodes one mail before the clock starts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED, sisimai_available
from smtplens import classify
from smtplens.bounce import decode_bounce, iter_mails
from smtplens.bounce.inputs import expand
from smtplens.knowledge.reasons import reason_table

CORPUS = SHARED / "corpus" / "sisimai" / "maildir"
PERL_HELPER = Path(__file__).with_name("sisimai_bounces.pl")


def smtplens_seconds(paths: list[str], rounds: int) -> tuple[float, int]:
    """Seconds for ``rounds`` passes, and the recipients found in one pass."""
    found = 0
    classify("550 5.1.1 user unknown")  # load the classifier's tables and the taxonomy before timing
    reason_table()
    t0 = time.perf_counter()
    for r in range(rounds):
        for _, data in iter_mails(paths):
            if isinstance(data, bytes):
                result = decode_bounce(data)
                if r == 0:
                    found += len(result.recipients)
    return time.perf_counter() - t0, found


def sisimai_seconds(paths: list[str], rounds: int) -> float:
    done = subprocess.run(
        ["perl", str(PERL_HELPER), "--time", str(rounds)],
        input="".join(p + "\n" for p in paths),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stderr.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5, help="passes over the corpus")
    args = ap.parse_args()
    if not CORPUS.exists():
        raise SystemExit(f"{CORPUS} not found: set SMTPLENS_SHARED to the shared folder")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, for us and the Perl child
    paths = expand([CORPUS])
    size = sum(os.path.getsize(p) for p in paths)
    print(f"corpus: {len(paths)} mails, {size / 1e6:.1f} MB, {args.rounds} round(s), one core")
    ours, found = smtplens_seconds(paths, args.rounds)
    ours_rate = args.rounds * len(paths) / ours
    print(f"smtplens decode_bounce:  {ours_rate:>8,.0f} mails/s ({ours:.2f} s, {found} recipients per pass)")
    if not sisimai_available():
        print("Sisimai: not installed (apt-get install libsisimai-perl)")
        return 0
    theirs = sisimai_seconds(paths, args.rounds)
    theirs_rate = args.rounds * len(paths) / theirs
    print(f"Sisimai 4.25 make():     {theirs_rate:>8,.0f} mails/s ({theirs:.2f} s)")
    print(f"ratio smtplens/Sisimai:  {ours_rate / theirs_rate:>8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
