"""Agreement of smtplens.classify and Sisimai's match() with the labels of ../shared/corpus/replies.

Usage: python bench/accuracy_replies.py [--confusions] [--json]
Prints overall and per-reason agreement for smtplens (on the taxonomy ids, and on Sisimai's reason names through
the taxonomy's crosswalk) and for Debian's Sisimai 4.25 (through the same crosswalk, 2025 merges treated as equal).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_replies, merged, sisimai_available, sisimai_match
from smtplens import classify
from smtplens.knowledge.reasons import reason_table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--confusions", action="store_true", help="list every disagreement of smtplens")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    rows = load_replies()
    crosswalk = {rid: r.sisimai for rid, r in reason_table().reasons.items()}
    ours = [classify(str(row["reply"])).reason for row in rows]
    labels = [str(row["label"]) for row in rows]
    per: dict[str, Counter[str]] = defaultdict(Counter)
    confusions: Counter[tuple[str, str]] = Counter()
    wrong = []
    for row, label, got in zip(rows, labels, ours, strict=True):
        per[label]["n"] += 1
        if got == label:
            per[label]["ok"] += 1
        else:
            confusions[(label, got)] += 1
            wrong.append((row["id"], label, got, str(row["reply"])[:160]))
    ok = sum(1 for a, b in zip(labels, ours, strict=True) if a == b)
    review = tomllib.loads(Path(__file__).with_name("label_review.toml").read_text(encoding="utf-8"))
    kept = [i for i, row in enumerate(rows) if row["id"] not in review]
    ok_kept = sum(1 for i in kept if labels[i] == ours[i])
    as_reviewed = sum(
        1
        for row, a, b in zip(rows, labels, ours, strict=True)
        if b == (review[str(row["id"])]["ours"] if row["id"] in review else a)
    )
    ours_sis = sum(1 for a, b in zip(labels, ours, strict=True) if merged(crosswalk[a]) == merged(crosswalk[b]))
    result: dict[str, object] = {
        "replies": len(rows),
        "smtplens": {
            "agree": ok,
            "rate": ok / len(rows),
            "agree_sisimai_names": ours_sis / len(rows),
            "reviewed_labels": len(review),
            "rate_unreviewed_rows": ok_kept / len(kept),
            "rate_with_reviewed_labels": as_reviewed / len(rows),
        },
    }
    sis_rate = None
    if sisimai_available():
        theirs = sisimai_match([str(row["reply"]) for row in rows])
        sis_ok = sum(1 for a, b in zip(labels, theirs, strict=True) if merged(crosswalk[a]) == merged(b))
        sis_rate = sis_ok / len(rows)
        sis_kept = sum(1 for i in kept if merged(crosswalk[labels[i]]) == merged(theirs[i]))
        ours_kept_sis = sum(1 for i in kept if merged(crosswalk[labels[i]]) == merged(crosswalk[ours[i]]))
        for label, got in zip(labels, theirs, strict=True):
            per[label]["sis_ok"] += int(merged(crosswalk[label]) == merged(got))
        result["sisimai"] = {
            "version": "4.25 (Debian libsisimai-perl)",
            "agree": sis_ok,
            "rate": sis_rate,
            "rate_unreviewed_rows": sis_kept / len(kept),
        }
        result["smtplens"]["rate_unreviewed_rows_sisimai_names"] = ours_kept_sis / len(kept)  # type: ignore[index]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"replies: {len(rows)}")
    print(f"smtplens agreement (taxonomy ids):          {ok}/{len(rows)} = {ok / len(rows):.1%}")
    print(f"smtplens agreement (Sisimai names):         {ours_sis / len(rows):.1%}")
    print(f"smtplens on rows whose label is not disputed: {ok_kept}/{len(kept)} = {ok_kept / len(kept):.1%}")
    print(
        f"smtplens with the {len(review)} disputed labels corrected: {as_reviewed / len(rows):.1%}  (bench/label_review.toml)"
    )
    if sis_rate is not None:
        print(f"Sisimai 4.25 match() (Sisimai names):       {sis_rate:.1%}")
        print(
            f"  on rows whose label is not disputed: Sisimai {sis_kept / len(kept):.1%}, "
            f"smtplens {ours_kept_sis / len(kept):.1%} (both in Sisimai names)"
        )
    else:
        print("Sisimai: not installed (apt-get install libsisimai-perl)")
    print()
    print(f"{'reason':<22}{'n':>5}{'smtplens':>10}{'sisimai':>10}")
    for label in sorted(per, key=lambda k: -per[k]["n"]):
        c = per[label]
        sis = f"{c['sis_ok'] / c['n']:.0%}" if sis_rate is not None else "-"
        print(f"{label:<22}{c['n']:>5}{c['ok'] / c['n']:>10.0%}{sis:>10}")
    print()
    print("confusions (label -> smtplens):")
    for (label, got), n in confusions.most_common():
        print(f"  {n:>3}  {label} -> {got}")
    if args.confusions:
        print()
        for rid, label, got, text in wrong:
            mark = " [disputed label]" if rid in review else ""
            print(f"{rid} {label} -> {got}{mark}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
