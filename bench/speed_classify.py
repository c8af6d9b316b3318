"""Replies per second of smtplens.classify, single core, side by side with Sisimai's match() on the same stream.

Usage: python bench/speed_classify.py [--count N] [--rounds R]
The stream is made of the corpus replies with IP addresses, mail addresses and queue ids varied, so every
reply is distinct. Both classifiers get the same replies; Perl start-up and input reading are not timed.

The line "path:" says which code ran: the compiled accelerator (smtplens._accel, built at install time from the
same modules) or the pure-Python modules (not built, stale, or ``SMTPLENS_PURE=1``).

What is measured for smtplens: ``classify(text)`` once per reply, each parsed and scanned from its text. No
text is cached: only the last step, from the patterns found and the codes to the verdict's fields, is
remembered by its small key (see classifier/engine.py), as a pure function of that key. ``--runs`` repeats the
timing of smtplens and prints the median, and the best run (the one other processes on a shared machine disturbed
least; Sisimai's one long timing spreads such disturbance over its whole run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_replies, sisimai_available, sisimai_time
from smtplens import classify
from smtplens._accel import status
from streams import distinct_stream


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=200_000, help="distinct replies in the stream")
    ap.add_argument("--rounds", type=int, default=1, help="passes over the stream")
    ap.add_argument("--runs", type=int, default=1, help="timings of smtplens; the median is printed")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    templates = [str(row["reply"]) for row in load_replies()]
    stream = distinct_stream(templates, args.count)
    assert len(set(stream)) == len(stream)
    classify(stream[0])  # load the tables before timing
    timings = []
    for _ in range(max(args.runs, 1)):
        t0 = time.perf_counter()
        for _ in range(args.rounds):
            for reply in stream:
                classify(reply)
        timings.append(time.perf_counter() - t0)
    ours = statistics.median(timings)
    ours_rate = args.rounds * len(stream) / ours
    best_rate = args.rounds * len(stream) / min(timings)
    paths = status()
    compiled = all(path == "compiled" for path in paths.values())
    print("path: compiled accelerator" if compiled else f"path: pure Python or mixed {paths}")
    print(f"stream: {len(stream)} distinct replies from {len(templates)} corpus replies, {args.rounds} round(s)")
    per_reply = ours / (args.rounds * len(stream)) * 1e6
    print(f"smtplens.classify:       {ours_rate:>10,.0f} replies/s ({ours:.2f} s, {per_reply:.1f} µs a reply)")
    if len(timings) > 1:
        print(f"  best of {len(timings)} runs:        {best_rate:>10,.0f} replies/s")
    if not sisimai_available():
        print("Sisimai: not installed (apt-get install libsisimai-perl)")
        return 0
    theirs = sisimai_time(stream, args.rounds)
    theirs_rate = args.rounds * len(stream) / theirs
    print(f"Sisimai 4.25 match():    {theirs_rate:>10,.0f} replies/s ({theirs:.2f} s)")
    print(f"ratio smtplens/Sisimai:  {ours_rate / theirs_rate:>10.1f}x")
    if len(timings) > 1:
        print(f"  with the best run:     {best_rate / theirs_rate:>10.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
