"""Per-recipient agreement of smtplens.bounce and of Sisimai 4.25 with ../shared/corpus/sisimai/expected.jsonl.

Usage: python bench/accuracy_bounces.py [--misses] [--json]
Each expected row is one recipient of one file, in the order the recipients appear; a decoder's recipients are
matched to them in order per file (a recipient not found counts as a disagreement on every field). Compared:
the reason (smtplens's taxonomy id through the taxonomy's Sisimai crosswalk; Sisimai's 2025 merges treated as
equal), the enhanced status code, the reply code and the hard-bounce flag. Debian's Sisimai 4.25 runs on the
same files in the same run (bench/sisimai_bounces.pl). Figures are given overall, per Sisimai module (the
format family of the expected row) and per smtplens decoder. Reason labels that smtplens disputes are listed with
the reason in bench/bounce_label_review.toml; reason agreement is given with the labels as they are (raw) and with
the disputed ones replaced by the reviewed reason (reviewed), for both tools. Status agreement is also given on
the rows whose expected status the mail states ("status, stated": Sisimai's own X.0.9NN codes left out).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED, merged, sisimai_available
from smtplens.bounce import Recipient, decode_bounce, iter_mails
from smtplens.knowledge.reasons import reason_table

CORPUS = SHARED / "corpus" / "sisimai"
PERL_HELPER = Path(__file__).with_name("sisimai_bounces.pl")
REVIEW = Path(__file__).with_name("bounce_label_review.toml")
FIELDS = ("reason", "status", "replycode", "hardbounce")


@dataclass(frozen=True)
class Got:
    """One recipient as a decoder reported it, in Sisimai's vocabulary."""

    reason: str
    status: str
    replycode: str
    hardbounce: bool
    decoder: str


# Sisimai writes a status of its own making when the mail states none: "X.0.9NN", derived from its reason
# (Sisimai::SMTP::Status). smtplens leaves the status empty then; such rows are left out of "status, stated".
PSEUDO_STATUS = re.compile(r"[245]\.0\.9[0-9][0-9]")


@dataclass
class Tally:
    n: int = 0
    agree: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))
    reviewed: int = 0  # reason agreements with the reviewed labels
    stated_n: int = 0  # rows whose expected status is one the mail states (not a Sisimai pseudo status)
    stated: int = 0  # status agreements on those rows

    def add(self, marks: dict[str, bool], reviewed: bool | None = None, pseudo_status: bool = False) -> None:
        self.n += 1
        for key, ok in marks.items():
            self.agree[key] += ok
        self.reviewed += marks["reason"] if reviewed is None else reviewed
        if not pseudo_status:
            self.stated_n += 1
            self.stated += marks["status"]

    def rates(self) -> dict[str, float]:
        out = {k: (v / self.n if self.n else 0.0) for k, v in self.agree.items()}
        out["reason_reviewed"] = self.reviewed / self.n if self.n else 0.0
        out["status_stated"] = self.stated / self.stated_n if self.stated_n else 0.0
        return out


def load_expected() -> dict[str, list[dict[str, object]]]:
    path = CORPUS / "expected.jsonl"
    if not path.exists():
        raise SystemExit(f"{path} not found: set SMTPLENS_SHARED to the shared folder")
    rows: dict[str, list[dict[str, object]]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows[str(row["file"])].append(row)
    for file_rows in rows.values():
        file_rows.sort(key=lambda r: int(str(r["index"])))
    return dict(rows)


def load_review() -> dict[str, dict[str, str]]:
    """The reviewed labels: ``{"lhost-x.eml#1": {"sisimai": disputed label, "ours": taxonomy id, "why": …}}``."""
    if not REVIEW.exists():
        return {}
    loaded: dict[str, dict[str, str]] = tomllib.loads(REVIEW.read_text(encoding="utf-8"))
    return loaded


def review_key(name: str, index: int) -> str:
    """``maildir/dos/lhost-x.eml``, recipient 1 → ``lhost-x.eml#1`` (one entry for every line-ending copy)."""
    return f"{name.rsplit('/', 1)[-1]}#{index}"


def crosswalk() -> dict[str, str]:
    """The taxonomy's Sisimai name of each reason id."""
    return {rid: r.sisimai for rid, r in reason_table().reasons.items()}


def recipients(files: list[str]) -> dict[str, list[Recipient]]:
    """smtplens's recipients of each corpus file, in order."""
    out: dict[str, list[Recipient]] = {}
    for name in files:
        found: list[Recipient] = []
        for _, data in iter_mails([CORPUS / name]):  # a file may hold several mails (mbox), as Sisimai reads it
            if isinstance(data, bytes):
                found += decode_bounce(data).recipients
        out[name] = found
    return out


def ours(files: list[str]) -> dict[str, list[Got]]:
    names = crosswalk()
    return {name: [_got(r, names) for r in found] for name, found in recipients(files).items()}


def _got(r: Recipient, crosswalk: dict[str, str]) -> Got:
    return Got(crosswalk[r.reason], r.status or "", r.reply_code or "", r.hard_bounce, r.decoder)


def theirs(files: list[str]) -> dict[str, list[Got]]:
    """Sisimai 4.25's recipients per file (one Perl process for all files)."""
    paths = "".join(f"{CORPUS / name}\n" for name in files)
    done = subprocess.run(["perl", str(PERL_HELPER)], input=paths, capture_output=True, text=True, check=True)
    out: dict[str, list[Got]] = {name: [] for name in files}
    prefix = str(CORPUS) + "/"
    for line in done.stdout.splitlines():
        cols = line.split("\t")
        name = cols[0].removeprefix(prefix)
        if len(cols) >= 8 and name in out:
            out[name].append(Got(cols[2], cols[3], cols[4], cols[5] == "1", cols[6]))
    return out


def marks(row: dict[str, object], got: Got | None) -> dict[str, bool]:
    if got is None:
        return dict.fromkeys(FIELDS, False)
    return {
        "reason": merged(got.reason) == merged(str(row["reason"])),
        "status": got.status == str(row["status"] or ""),
        "replycode": got.replycode == str(row["replycode"] or ""),
        "hardbounce": got.hardbounce == bool(row["hardbounce"]),
    }


@dataclass
class Run:
    expected: dict[str, list[dict[str, object]]]
    ours: dict[str, list[Got]]
    theirs: dict[str, list[Got]] | None
    review: dict[str, dict[str, str]] = field(default_factory=dict)

    def reviewed_label(self, name: str, i: int, row: dict[str, object]) -> str | None:
        """The reviewed reason (in Sisimai's names) of a disputed row, else None."""
        entry = self.review.get(review_key(name, i + 1))
        if entry is None or entry.get("sisimai") != row["reason"]:
            return None
        return reason_table().reasons[entry["ours"]].sisimai


def reviewed_mark(run: Run, name: str, i: int, row: dict[str, object], got: Got | None) -> bool | None:
    """Reason agreement with the reviewed label of a disputed row; None for a row that is not disputed."""
    label = run.reviewed_label(name, i, row)
    if label is None:
        return None
    return got is not None and merged(got.reason) == merged(label)


def tally(run: Run, which: str) -> tuple[Tally, Tally, dict[str, Tally], dict[str, Tally]]:
    """All rows; the rows smtplens found a recipient for (the formats it has decoders for); per module and
    per decoder."""
    results = run.ours if which == "smtplens" else run.theirs
    assert results is not None
    total, covered = Tally(), Tally()
    per_module: defaultdict[str, Tally] = defaultdict(Tally)
    per_decoder: defaultdict[str, Tally] = defaultdict(Tally)
    for name, rows in run.expected.items():
        got_list = results[name]
        for i, row in enumerate(rows):
            got = got_list[i] if i < len(got_list) else None
            m = marks(row, got)
            reviewed = reviewed_mark(run, name, i, row, got)
            pseudo = PSEUDO_STATUS.fullmatch(str(row["status"] or "")) is not None
            total.add(m, reviewed, pseudo)
            if i < len(run.ours[name]):
                covered.add(m, reviewed, pseudo)
            per_module[str(row["module"]) or "(none)"].add(m, reviewed, pseudo)
            per_decoder[got.decoder if got else "(no recipient)"].add(m, reviewed, pseudo)
    return total, covered, dict(per_module), dict(per_decoder)


def figures(run: Run) -> dict[str, object]:
    out: dict[str, object] = {
        "files": len(run.expected),
        "recipients": sum(len(rows) for rows in run.expected.values()),
        "reviewed_labels": sum(
            run.reviewed_label(name, i, row) is not None
            for name, rows in run.expected.items()
            for i, row in enumerate(rows)
        ),
    }
    for which in ("smtplens", "sisimai"):
        if which == "sisimai" and run.theirs is None:
            continue
        total, covered, per_module, per_decoder = tally(run, which)
        out[which] = {
            "overall": total.rates(),
            "decoded_by_smtplens": {"n": covered.n, **covered.rates()},
            "per_module": {k: {"n": t.n, **t.rates()} for k, t in sorted(per_module.items())},
            "per_decoder": {k: {"n": t.n, **t.rates()} for k, t in sorted(per_decoder.items())},
        }
    return out


def report(run: Run, fig: dict[str, object], misses: bool) -> None:
    print(f"files: {fig['files']}   recipients: {fig['recipients']}   (../shared/corpus/sisimai/expected.jsonl)")
    print(f"reviewed reason labels: {fig['reviewed_labels']} rows (bench/bounce_label_review.toml)")
    print(f"{'':<24}{'reason':>8}{'status':>8}{'reply':>8}{'hard':>8}{'reason, reviewed':>18}{'status, stated':>16}")
    for which in ("smtplens", "sisimai"):
        block = fig.get(which)
        if not isinstance(block, dict):
            print("Sisimai: not installed (apt-get install libsisimai-perl)")
            continue
        r = block["overall"]
        label = "smtplens" if which == "smtplens" else "Sisimai 4.25 make()"
        print(
            f"{label:<24}"
            + "".join(f"{r[k]:>8.1%}" for k in FIELDS)
            + f"{r['reason_reviewed']:>18.1%}{r['status_stated']:>16.1%}"
        )
    for which in ("smtplens", "sisimai"):
        block = fig.get(which)
        if isinstance(block, dict):
            c = block["decoded_by_smtplens"]
            label = "smtplens, decoded rows" if which == "smtplens" else "Sisimai, same rows"
            print(
                f"{label:<24}"
                + "".join(f"{c[k]:>8.1%}" for k in FIELDS)
                + f"{c['reason_reviewed']:>18.1%}{c['status_stated']:>16.1%}   ({c['n']} rows smtplens decodes)"
            )
    ours_block = fig["smtplens"]
    assert isinstance(ours_block, dict)
    sis_block = fig.get("sisimai")
    print()
    print(f"per Sisimai module (reason agreement)   {'n':>4}{'smtplens':>10}{'sisimai':>10}")
    for module, row in sorted(ours_block["per_module"].items(), key=lambda kv: (-kv[1]["n"], kv[0])):
        sis = f"{sis_block['per_module'][module]['reason']:.0%}" if isinstance(sis_block, dict) else "-"
        print(f"  {module:<38}{row['n']:>4}{row['reason']:>10.0%}{sis:>10}")
    print()
    print(f"per smtplens decoder                    {'n':>4}{'reason':>10}{'status':>10}")
    for decoder, row in sorted(ours_block["per_decoder"].items(), key=lambda kv: -kv[1]["n"]):
        print(f"  {decoder:<38}{row['n']:>4}{row['reason']:>10.0%}{row['status']:>10.0%}")
    if misses:
        print()
        print("reason disagreements (file #index: expected -> smtplens [decoder]):")
        for name, rows in run.expected.items():
            got_list = run.ours[name]
            for i, row in enumerate(rows):
                got = got_list[i] if i < len(got_list) else None
                if got is None or not marks(row, got)["reason"]:
                    shown = f"{got.reason} [{got.decoder}]" if got else "(no recipient)"
                    reviewed = reviewed_mark(run, name, i, row, got)
                    note = "" if reviewed is None else " [reviewed label: agrees]" if reviewed else " [reviewed label]"
                    print(f"  {name} #{i + 1}: {row['reason']} ({row['module'] or '-'}) -> {shown}{note}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--misses", action="store_true", help="list every reason disagreement of smtplens")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    expected = load_expected()
    files = sorted(expected)
    run = Run(expected, ours(files), theirs(files) if sisimai_available() else None, load_review())
    fig = figures(run)
    if args.json:
        print(json.dumps(fig, indent=2))
    else:
        report(run, fig, args.misses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
