"""Agreement of smtplens.classify and Sisimai's match() with the labels of ../shared/corpus/replies.

Usage: python bench/accuracy_replies.py [--confusions] [--json]
Prints overall and per-reason agreement for smtplens (on the taxonomy ids, and on Sisimai's reason names through
the taxonomy's crosswalk) and for Debian's Sisimai 4.25 (through the same crosswalk, 2025 merges treated as equal).
Labels that smtplens disputes are listed with the reason in bench/label_review.toml; the figures are given with
all labels and on the rows whose label is not disputed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_replies, merged, sisimai_available, sisimai_match
from smtplens import classify
from smtplens.knowledge.reasons import reason_table

REVIEW = Path(__file__).with_name("label_review.toml")


@dataclass
class Run:
    ids: list[str]
    labels: list[str]
    ours: list[str]
    texts: list[str]
    review: dict[str, dict[str, str]]
    crosswalk: dict[str, str]
    theirs: list[str] | None = None
    kept: list[int] = field(default_factory=list)

    def rate(self, rows: list[int], agree: list[bool]) -> float:
        return sum(agree[i] for i in rows) / len(rows)


def collect() -> Run:
    rows = load_replies()
    review = tomllib.loads(REVIEW.read_text(encoding="utf-8"))
    run = Run(
        ids=[str(r["id"]) for r in rows],
        labels=[str(r["label"]) for r in rows],
        ours=[classify(str(r["reply"])).reason for r in rows],
        texts=[str(r["reply"]) for r in rows],
        review=review,
        crosswalk={rid: r.sisimai for rid, r in reason_table().reasons.items()},
    )
    run.kept = [i for i, rid in enumerate(run.ids) if rid not in review]
    if sisimai_available():
        run.theirs = sisimai_match(run.texts)
    return run


def figures(run: Run) -> dict[str, object]:
    every = list(range(len(run.ids)))
    cw = run.crosswalk
    exact = [a == b for a, b in zip(run.labels, run.ours, strict=True)]
    ours_sis = [merged(cw[a]) == merged(cw[b]) for a, b in zip(run.labels, run.ours, strict=True)]
    corrected = [
        run.ours[i] == (run.review[rid]["ours"] if rid in run.review else run.labels[i])
        for i, rid in enumerate(run.ids)
    ]
    out: dict[str, object] = {
        "replies": len(every),
        "disputed_labels": len(run.review),
        "smtplens": {
            "agree": sum(exact),
            "rate": run.rate(every, exact),
            "rate_sisimai_names": run.rate(every, ours_sis),
            "rate_undisputed_rows": run.rate(run.kept, exact),
            "rate_undisputed_rows_sisimai_names": run.rate(run.kept, ours_sis),
            "rate_with_disputed_labels_corrected": run.rate(every, corrected),
        },
    }
    if run.theirs is not None:
        theirs = [merged(cw[a]) == merged(b) for a, b in zip(run.labels, run.theirs, strict=True)]
        out["sisimai"] = {
            "version": "4.25 (Debian libsisimai-perl)",
            "agree": sum(theirs),
            "rate": run.rate(every, theirs),
            "rate_undisputed_rows": run.rate(run.kept, theirs),
        }
    return out


def per_reason(run: Run) -> dict[str, Counter[str]]:
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for i, label in enumerate(run.labels):
        per[label]["n"] += 1
        per[label]["ok"] += run.ours[i] == label
        if run.theirs is not None:
            per[label]["sis_ok"] += merged(run.crosswalk[label]) == merged(run.theirs[i])
    return per


def report(run: Run, fig: dict[str, object], confusions: bool) -> None:
    ours = fig["smtplens"]
    assert isinstance(ours, dict)
    print(f"replies: {fig['replies']}   disputed labels: {fig['disputed_labels']} (bench/label_review.toml)")
    print(f"smtplens agreement, all labels (taxonomy ids):    {ours['rate']:.1%}")
    print(f"smtplens agreement, all labels (Sisimai names):   {ours['rate_sisimai_names']:.1%}")
    print(f"smtplens agreement, undisputed rows:              {ours['rate_undisputed_rows']:.1%}")
    print(f"smtplens with disputed labels corrected:          {ours['rate_with_disputed_labels_corrected']:.1%}")
    sis = fig.get("sisimai")
    if isinstance(sis, dict):
        print(f"Sisimai 4.25 match(), all labels (Sisimai names): {sis['rate']:.1%}")
        print(
            f"undisputed rows in Sisimai names: Sisimai {sis['rate_undisputed_rows']:.1%}, "
            f"smtplens {ours['rate_undisputed_rows_sisimai_names']:.1%}"
        )
    else:
        print("Sisimai: not installed (apt-get install libsisimai-perl)")
    print()
    print(f"{'reason':<22}{'n':>5}{'smtplens':>10}{'sisimai':>10}")
    for label, c in sorted(per_reason(run).items(), key=lambda kv: -kv[1]["n"]):
        sis_rate = f"{c['sis_ok'] / c['n']:.0%}" if run.theirs is not None else "-"
        print(f"{label:<22}{c['n']:>5}{c['ok'] / c['n']:>10.0%}{sis_rate:>10}")
    print()
    print("confusions (label -> smtplens), disputed labels excluded:")
    pairs = Counter((run.labels[i], run.ours[i]) for i in run.kept if run.labels[i] != run.ours[i])
    for (label, got), n in pairs.most_common():
        print(f"  {n:>3}  {label} -> {got}")
    if confusions:
        print()
        for i, rid in enumerate(run.ids):
            if run.labels[i] != run.ours[i]:
                mark = " [disputed label]" if rid in run.review else ""
                print(f"{rid} {run.labels[i]} -> {run.ours[i]}{mark}: {run.texts[i][:160]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--confusions", action="store_true", help="list every disagreement of smtplens")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    run = collect()
    fig = figures(run)
    if args.json:
        print(json.dumps(fig, indent=2))
    else:
        report(run, fig, args.confusions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
