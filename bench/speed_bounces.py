"""Mails per second of smtplens.bounce, single core, side by side with Sisimai 4.25 on the same files.

Usage: python bench/speed_bounces.py [--rounds R]
Every mail of ../shared/corpus/sisimai/maildir is read from disk and decoded, once per round; both sides read
the files themselves (Sisimai->make(path), smtplens's iter_mails + decode_bounce, which gives every recipient's
full result including the classifier's verdict). Rounds alternate between the two sides, so that a busy machine
slows both alike, and each side is rated by its best round (the one least disturbed by other processes) and by
its median round. Start-up (Python and Perl loading their modules and tables) is not timed: each Perl round
decodes one mail before its clock starts, and smtplens decodes the first mail before the first round.
"""

from __future__ import annotations

import argparse
import os
import statistics
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


def smtplens_round(paths: list[str]) -> tuple[float, int]:
    """Seconds for one pass over ``paths``, and the recipients found."""
    found = 0
    t0 = time.perf_counter()
    for _, data in iter_mails(paths):
        if isinstance(data, bytes):
            found += len(decode_bounce(data).recipients)
    return time.perf_counter() - t0, found


def sisimai_round(paths: list[str]) -> float:
    """Seconds Sisimai takes for one pass over ``paths`` (its start-up and one warm-up mail not counted)."""
    done = subprocess.run(
        ["perl", str(PERL_HELPER), "--time", "1"],
        input="".join(p + "\n" for p in paths),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stderr.strip().splitlines()[-1])


def _rates(n: int, seconds: list[float]) -> tuple[float, float]:
    """Mails/s of the best and of the median round."""
    return n / min(seconds), n / statistics.median(seconds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5, help="passes over the corpus, per side")
    args = ap.parse_args()
    if not CORPUS.exists():
        raise SystemExit(f"{CORPUS} not found: set SMTPLENS_SHARED to the shared folder")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, for us and the Perl child
    paths = expand([CORPUS])
    size = sum(os.path.getsize(p) for p in paths)
    print(f"corpus: {len(paths)} mails, {size / 1e6:.1f} MB, {args.rounds} round(s) per side, one core")
    classify("550 5.1.1 user unknown")  # load the classifier's tables and the taxonomy before timing
    reason_table()
    decode_bounce(Path(paths[0]).read_bytes())
    perl = sisimai_available()
    ours: list[float] = []
    theirs: list[float] = []
    found = 0
    for _ in range(max(1, args.rounds)):
        seconds, found = smtplens_round(paths)
        ours.append(seconds)
        if perl:
            theirs.append(sisimai_round(paths))
    best, median = _rates(len(paths), ours)
    print(f"smtplens decode_bounce:  {best:>8,.0f} mails/s best round, {median:>8,.0f} median ({found} recipients)")
    if not perl:
        print("Sisimai: not installed (apt-get install libsisimai-perl)")
        return 0
    their_best, their_median = _rates(len(paths), theirs)
    print(f"Sisimai 4.25 make():     {their_best:>8,.0f} mails/s best round, {their_median:>8,.0f} median")
    print(f"ratio smtplens/Sisimai:  {best / their_best:>8.1f}x best rounds, {median / their_median:.1f}x medians")
    return 0


if __name__ == "__main__":
    sys.exit(main())
