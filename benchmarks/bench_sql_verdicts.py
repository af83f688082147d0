"""Every verdict of the judge, row by row, to check that a change (a speed-up) moved none of them.

    FTBENCH_DATA_DIR=../shared/data python benchmarks/bench_sql_verdicts.py --output NEW.json \
        [--compare OLD.json] [--sets real,fidelity]

Judges in ``context`` mode, with the default configuration and the sandbox worker, the 4,288 pairs of
``bench_sql_real.py`` (8 systems' predictions; in its order: by database, then gold) and the 5,409 cases
of ``bench_sql_fidelity.py`` (golds, rewrites, witnessed mistakes), and writes each row's verdict, error,
detail, number of databases, ``valid_sql`` and mode to ``--output``. With ``--compare`` it prints how many
rows differ from an earlier file, in any field and in the verdict alone, and the first ones.

For the code before a change, run the same script against that commit's package:

    git worktree add BASE <commit>
    PYTHONPATH=BASE/src FTBENCH_DATA_DIR=../shared/data python benchmarks/bench_sql_verdicts.py --output OLD.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from bench_sql_fidelity import cases_for
from bench_sql_real import read_predictions

import ftbench
from ftbench.data import data_dir, load_spider_sql
from ftbench.scoring import BATCH_ROWS
from ftbench.sql import JudgeConfig, SqlPair, Verdict, judge_many

Labelled = list[tuple[str, SqlPair]]


def real_pairs(data: Path) -> Labelled:
    rows = read_predictions(data / "spider_predictions", None, None)
    rows.sort(key=lambda row: (row["db_id"], row["gold"]))  # as bench_sql_real.py sends them
    return [(f"real/{row['system']}/{row['id']}", SqlPair(row["gold"], row["prediction"], row["context"], row["db_id"]))
            for row in rows]


def fidelity_pairs(data: Path) -> Labelled:
    db_dir = data / "spider" / "database"
    cases = [case for example in load_spider_sql("val") for case in cases_for(example, db_dir, JudgeConfig())]
    return [(f"fidelity/{number}/{case.example.id}/{case.kind}",
             SqlPair(case.example.answer, case.prediction, case.example.context, case.example.db_id))
            for number, case in enumerate(cases)]


def verdicts(pairs: Labelled) -> dict[str, list[object]]:
    found: dict[str, list[object]] = {}
    config = JudgeConfig()
    for start in range(0, len(pairs), BATCH_ROWS):
        batch = pairs[start:start + BATCH_ROWS]
        judged = judge_many([pair for _, pair in batch], config=config)
        found.update((label, _fields(verdict)) for (label, _), verdict in zip(batch, judged, strict=True))
    return found


def _fields(verdict: Verdict) -> list[object]:
    return [verdict.exec_match, verdict.error, verdict.detail, verdict.databases, verdict.valid_sql, verdict.judge]


def compare(new: dict[str, list[object]], old: dict[str, list[object]], show: int = 5) -> int:
    """Prints the differences; returns how many rows differ in any field."""
    common = new.keys() & old.keys()
    differ = [label for label in sorted(common) if new[label] != old[label]]
    verdicts_differ = [label for label in differ if new[label][0] != old[label][0]]
    print(f"{len(common)} rows in both files ({len(new.keys() ^ old.keys())} in only one): {len(differ)} differ "
          f"in any field, {len(verdicts_differ)} in the verdict")
    for label in differ[:show]:
        print(f"  {label}\n    old: {old[label]}\n    new: {new[label]}")
    return len(differ)


def _csv(text: str) -> Iterable[str]:
    return (part for part in text.split(",") if part)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True, help="JSON file the verdicts are written to")
    parser.add_argument("--compare", type=Path, default=None, help="an earlier --output to compare with")
    parser.add_argument("--sets", default="real,fidelity", help="comma-separated: real, fidelity")
    args = parser.parse_args()
    data = data_dir(Path(__file__).resolve().parents[2] / "shared" / "data")
    makers = {"real": real_pairs, "fidelity": fidelity_pairs}
    print(f"judging with ftbench from {Path(ftbench.__file__).parent}")
    found: dict[str, list[object]] = {}
    for name in _csv(args.sets):
        if name not in makers:
            raise SystemExit(f"unknown set {name!r} (one of {', '.join(makers)})")
        pairs = makers[name](data)
        started = time.perf_counter()
        found.update(verdicts(pairs))
        print(f"{name}: {len(pairs)} rows judged in {time.perf_counter() - started:.1f} s")
    args.output.write_text(json.dumps(found, indent=0), encoding="utf-8")
    if args.compare is not None:
        return 1 if compare(found, json.loads(args.compare.read_text(encoding="utf-8"))) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
