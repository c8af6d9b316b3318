"""Mails per second of smtplens.bounce, single core, side by side with Sisimai 4.25 on the same files.

Usage: python bench/speed_bounces.py [--rounds R] [--one-by-one]
Every mail of ../shared/corpus/sisimai/maildir is read from disk and decoded, once per round; both sides read
the files themselves (Sisimai->make(path); smtplens's iter_mails + decode_bounces, which gives every recipient's
full result including the classifier's verdict). decode_bounces is smtplens's API for a stream of mails, the one
``smtplens bounce`` uses: it decodes the mails in groups of 64, each step for the whole group (decode_batch). With
--one-by-one, smtplens decodes mail after mail with decode_bounce instead. Rounds alternate between the two sides,
so that a busy machine slows both alike, and each side is rated by its best round (the one least disturbed by other
processes) and by its median round. Start-up and warm-up are not timed: each side decodes every mail once right
before each timed pass, in the same process (each Perl round, a process of its own, before its clock starts;
smtplens before each of its rounds, as the Perl process that ran in between has taken the processor's caches), as a
process that decodes a stream of bounces is warm: Sisimai loads a decoder's module when a mail first needs it, and
smtplens remembers a few things between mails (candidate decoders per set of header words, recurring Content-Type
values).

With --instructions (needs valgrind): the machine instructions each side executes per mail instead, counted by
callgrind. Each side runs twice, over the first mail only and over every mail, both times after the same warm-up;
the difference divided by the mails added is the work per mail, start-up and tables excluded. The warm-up is the
timed runs' own, a pass over every mail. The count does not depend on how busy or fast the machine is, so it tells a
change in the code from a change in the machine; it is not a speed (time also depends on how many instructions the
processor completes per cycle).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED, sisimai_available
from smtplens import classify
from smtplens.bounce import decode_bounce, decode_bounces, iter_mails
from smtplens.bounce.inputs import expand
from smtplens.knowledge.reasons import reason_table

CORPUS = SHARED / "corpus" / "sisimai" / "maildir"
PERL_HELPER = Path(__file__).with_name("sisimai_bounces.pl")


def _lines(paths: list[str]) -> str:
    return "".join(p + "\n" for p in paths)


@contextlib.contextmanager
def _path_list(paths: list[str]) -> Iterator[str]:
    """The name of a temporary file that lists ``paths``, one a line (what the warm-up passes read)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listed:
        listed.write(_lines(paths))
        listed.flush()
        yield listed.name


def smtplens_round(paths: list[str], one_by_one: bool = False) -> tuple[float, int]:
    """Seconds for one pass over ``paths``, and the recipients found."""
    found = 0
    t0 = time.perf_counter()
    if one_by_one:
        for _, data in iter_mails(paths):
            if isinstance(data, bytes):
                found += len(decode_bounce(data).recipients)
    else:
        for result in decode_bounces(data for _, data in iter_mails(paths) if isinstance(data, bytes)):
            found += len(result.recipients)
    return time.perf_counter() - t0, found


def sisimai_round(paths: list[str], warm: str) -> float:
    """Seconds Sisimai takes for one pass over ``paths``, after its start-up and a warm-up pass over the mails listed
    in the file ``warm`` (Sisimai loads a decoder's module when a mail first needs it), neither timed."""
    done = subprocess.run(
        ["perl", str(PERL_HELPER), "--time", "1", "--warm", warm],
        input=_lines(paths),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stderr.strip().splitlines()[-1])


def smtplens_pass(warm: str, one_by_one: bool) -> int:
    """One pass over the paths given on stdin, after a pass over those listed in the file ``warm`` (the process that
    --instructions counts)."""
    paths = [line for line in sys.stdin.read().splitlines() if line]
    smtplens_round(Path(warm).read_text().splitlines(), one_by_one)
    smtplens_round(paths, one_by_one)
    return 0


_COLLECTED = re.compile(r"Collected : ([0-9,]+)")
# Both languages seed their string hashes at random per process, which moves the counts by a few percent from run to
# run (other collisions in dicts and hashes); counted runs use fixed seeds.
FIXED_HASHES = {"PYTHONHASHSEED": "0", "PERL_HASH_SEED": "0", "PERL_PERTURB_KEYS": "0"}


def _instructions(command: list[str], paths: list[str]) -> int:
    """Instructions callgrind counts for ``command`` given ``paths`` on stdin."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        input=_lines(paths),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **FIXED_HASHES},
    )
    found = _COLLECTED.findall(done.stderr)
    if not found:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found[-1].replace(",", ""))


def _per_mail(command: list[str], paths: list[str]) -> float:
    """Instructions per mail of ``command``: (all mails - the first mail only) / (mails added)."""
    return (_instructions(command, paths) - _instructions(command, paths[:1])) / (len(paths) - 1)


def count_instructions(paths: list[str], perl: bool, one_by_one: bool) -> int:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    with _path_list(paths) as listed:
        ours = _per_mail(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--pass",
                listed,
                *(["--one-by-one"] if one_by_one else []),
            ],
            paths,
        )
        print(f"smtplens {_api(one_by_one)} {ours / 1e6:>8.2f} M instructions per mail (warm process)")
        if not perl:
            print("Sisimai: not installed (apt-get install libsisimai-perl)")
            return 0
        theirs = _per_mail(["perl", str(PERL_HELPER), "--time", "1", "--warm", listed], paths)
    print(f"Sisimai 4.25 make():     {theirs / 1e6:>8.2f} M instructions per mail (warm process)")
    print(f"ratio Sisimai/smtplens:  {theirs / ours:>8.1f}x fewer instructions for smtplens")
    return 0


def _api(one_by_one: bool) -> str:
    return "decode_bounce: " if one_by_one else "decode_bounces:"


def _rates(n: int, seconds: list[float]) -> tuple[float, float]:
    """Mails/s of the best and of the median round."""
    return n / min(seconds), n / statistics.median(seconds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5, help="passes over the corpus, per side")
    ap.add_argument("--instructions", action="store_true", help="count instructions per mail with valgrind")
    ap.add_argument("--one-by-one", action="store_true", help="smtplens: decode_bounce for each mail in turn")
    ap.add_argument("--pass", dest="warm_list", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.warm_list:
        return smtplens_pass(args.warm_list, args.one_by_one)
    if not CORPUS.exists():
        raise SystemExit(f"{CORPUS} not found: set SMTPLENS_SHARED to the shared folder")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, for us and the Perl child
    paths = expand([CORPUS])
    size = sum(os.path.getsize(p) for p in paths)
    if args.instructions:
        print(f"corpus: {len(paths)} mails, {size / 1e6:.1f} MB, instructions counted by valgrind's callgrind")
        return count_instructions(paths, sisimai_available(), args.one_by_one)
    print(f"corpus: {len(paths)} mails, {size / 1e6:.1f} MB, {args.rounds} round(s) per side, one core")
    classify("550 5.1.1 user unknown")  # load the classifier's tables and the taxonomy before timing
    reason_table()
    perl = sisimai_available()
    ours: list[float] = []
    theirs: list[float] = []
    found = 0
    with _path_list(paths) as listed:
        for _ in range(max(1, args.rounds)):
            smtplens_round(
                paths, args.one_by_one
            )  # the warm-up pass, as the Perl side's (its caches, not only its memos)
            seconds, found = smtplens_round(paths, args.one_by_one)
            ours.append(seconds)
            if perl:
                theirs.append(sisimai_round(paths, listed))
    best, median = _rates(len(paths), ours)
    api = _api(args.one_by_one)
    print(f"smtplens {api} {best:>8,.0f} mails/s best round, {median:>8,.0f} median ({found} recipients)")
    if not perl:
        print("Sisimai: not installed (apt-get install libsisimai-perl)")
        return 0
    their_best, their_median = _rates(len(paths), theirs)
    print(f"Sisimai 4.25 make():     {their_best:>8,.0f} mails/s best round, {their_median:>8,.0f} median")
    print(f"ratio smtplens/Sisimai:  {best / their_best:>8.1f}x best rounds, {median / their_median:.1f}x medians")
    return 0


if __name__ == "__main__":
    sys.exit(main())
