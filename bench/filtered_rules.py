"""Can a rule of the mail's content reproduce Sisimai's ``filtered`` labels for replies that say "user unknown"?

Usage: python bench/filtered_rules.py [--rows]
Most reason disagreements of ``bench/accuracy_bounces.py`` are rows that Sisimai labels ``filtered`` (a filter
refused the message) where the reply says the recipient does not exist, which smtplens reads as ``user_unknown``
(``bench/bounce_label_review.toml``). Sisimai describes ``filtered`` as such a refusal after the SMTP DATA
command. This script tries that reading, and narrower ones, as rules on what smtplens reads from each mail (the
SMTP command a reply answered, the status code): each rule renames ``user_unknown`` to ``filtered`` where it
applies, and the script counts the rows of ``../shared/corpus/sisimai/expected.jsonl`` whose reason agreement it
gains and loses. A rule that gains without losing would be a convention worth adopting; a rule that loses about
what it gains says that the labels follow the format that reported them, not what the reply says.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy_bounces import crosswalk, load_expected, recipients
from common import merged
from smtplens.bounce import Recipient

USER_UNKNOWN = "user_unknown"
ENVELOPE_STAGES = ("rcpt", "mail")  # the commands that name an address
POST_DATA_STAGES = ("data", "end_of_data")


def _not_at_envelope(r: Recipient) -> bool:
    return r.stage not in ENVELOPE_STAGES


def _status_not_address(r: Recipient) -> bool:
    return not (r.status or "").startswith(("5.1.", "4.1."))


def _after_data(r: Recipient) -> bool:
    return r.stage in POST_DATA_STAGES


@dataclass(frozen=True)
class Rule:
    name: str
    applies: Callable[[Recipient], bool]


RULES = (
    Rule("not answered at RCPT or MAIL (command unknown included)", _not_at_envelope),
    Rule(
        "not at RCPT or MAIL, and a status other than X.1.x", lambda r: _not_at_envelope(r) and _status_not_address(r)
    ),
    Rule("answered after DATA (command known)", _after_data),
    Rule("after DATA, and a status other than X.1.x", lambda r: _after_data(r) and _status_not_address(r)),
    Rule("no command known, and a status other than X.1.x", lambda r: r.stage is None and _status_not_address(r)),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", action="store_true", help="list the rows each rule gains and loses")
    args = ap.parse_args()
    expected = load_expected()
    got = recipients(sorted(expected))
    names = crosswalk()
    pairs = [
        (name, row, got[name][i] if i < len(got[name]) else None)
        for name, rows in expected.items()
        for i, row in enumerate(rows)
    ]
    total = len(pairs)

    def agrees(row: dict[str, object], label: str | None) -> bool:
        return label is not None and merged(label) == merged(str(row["reason"]))

    base = sum(agrees(row, names[r.reason] if r else None) for _, row, r in pairs)
    print(f"rows: {total}   reason agreement as smtplens reads them: {base / total:.1%}")
    print(f"{'gained':>7} {'lost':>5} {'raw after':>9}  rule (user_unknown -> filtered where it applies)")
    for rule in RULES:
        gained: list[str] = []
        lost: list[str] = []
        for name, row, r in pairs:
            if r is None or r.reason != USER_UNKNOWN or not rule.applies(r):
                continue
            before, after = agrees(row, names[r.reason]), agrees(row, "filtered")
            line = f"{name}#{row['index']}: label {row['reason']}, command {r.stage}, status {r.status}"
            if after and not before:
                gained.append(line)
            elif before and not after:
                lost.append(line)
        raw = (base + len(gained) - len(lost)) / total
        print(f"{len(gained):7d} {len(lost):5d} {raw:9.1%}  {rule.name}")
        if args.rows:
            for line in gained:
                print(f"    + {line}")
            for line in lost:
                print(f"    - {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
