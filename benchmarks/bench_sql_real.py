"""The SQL judge on real systems' outputs: accuracy, agreement with the references, and named disagreements.

    FTBENCH_DATA_DIR=../shared/data python benchmarks/bench_sql_real.py \
        [--modes context,real-db,test-suite] [--systems dail_sql_gpt4,graphix_t5] [--limit N] [--jobs N] \
        [--tsse DIR] [--show K]

Reads ``$FTBENCH_DATA_DIR/spider_predictions/*.jsonl`` (8 published systems, 536 val rows each with a real
Spider database) and judges every row in each judge mode. Per system and mode it prints the accuracy and,
where the rows carry them, the agreement with both references (``reference_test_suite``: the official
test-suite semantics; ``reference_single_db``: test-suite-sql-eval's ``exec_eval`` on the one real database)
with false positives (we accept, the reference rejects) and false negatives. Disagreements with the
test-suite reference are sorted into the categories below, and ``--show K`` prints K examples of each.

With ``--tsse DIR`` (a checkout of taoyds/test-suite-sql-eval; it needs ``sqlparse``), its ``exec_eval``
also judges every row on the real database: that gives a single-DB reference for all eight systems, and
the speed of its loop next to ours (same pairs, same run; ``--jobs 1`` for one process each). When ``test-suite`` comes
first in ``--modes``, its verdicts also serve as a reference for the modes after it (all eight systems).
With ``--systems`` naming one system, there is one prediction per row (golds, plans and synthesized
databases hardly ever shared): the speed of judging one system's outputs, where the eight systems' pairs
let the judge's caches serve several predictions of a row. Beside the wall times it prints CPU times
(this process and, on Linux, its child processes: the sandbox worker that judges, the pool with
``--jobs`` > 1): on a loaded machine wall time says as much about the other work as about the judge, and
``exec_eval`` hands every query to a thread, which load slows most.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

import ftbench.sql
from ftbench.data import data_dir
from ftbench.scoring import BATCH_ROWS
from ftbench.sql import JUDGE_MODES, TIES_DETAIL, JudgeConfig, SqlPair, Verdict, judge_many

#: None in the package of a commit before the ranking rule (``PYTHONPATH=BASE/src``, to compare): no verdict says so.
RANKING_DETAIL: str | None = getattr(ftbench.sql, "RANKING_DETAIL", None)

Row = dict[str, Any]
REFERENCES = ("reference_test_suite", "reference_single_db")


# ---------------------------------------------------------------- inputs

def read_predictions(folder: Path, systems: list[str] | None, limit: int | None) -> list[Row]:
    rows: list[Row] = []
    for path in sorted(folder.glob("*.jsonl")):
        if systems and path.stem not in systems:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        rows.extend(json.loads(line) for line in lines[:limit] if line.strip())
    if not rows:
        raise SystemExit(f"no predictions read from {folder} (systems: {systems})")
    return rows


def config_for(mode: str, db_dir: Path) -> JudgeConfig:
    """The judge configuration of a named mode."""
    if mode not in JUDGE_MODES:
        raise SystemExit(f"unknown mode {mode!r} (one of {', '.join(JUDGE_MODES)})")
    return JudgeConfig(db_dir=db_dir, judge=mode)  # type: ignore[arg-type]


# ---------------------------------------------------------------- judging (ours, and exec_eval's)

_CONFIG: JudgeConfig | None = None


def _init(config: JudgeConfig) -> None:
    global _CONFIG
    _CONFIG = config


def _judge_rows(rows: list[Row]) -> list[Verdict]:
    pairs = [SqlPair(row["gold"], row["prediction"], row["context"], row["db_id"]) for row in rows]
    return judge_many(pairs, config=_CONFIG)


def judge_all(rows: list[Row], config: JudgeConfig, jobs: int) -> tuple[list[Verdict], float, float | None]:
    """Verdicts in row order, the wall time and the CPU time (None where it cannot be read). Rows are
    sent grouped by gold, so per-process caches hit, ``BATCH_ROWS`` at a time, as ``ftbench score sql
    --jobs 1`` sends them to its sandbox worker. With one process, the sandbox worker is started before
    the clock (printed apart; exec_eval has no such cost); with several, starting the pool and its
    workers is in the time."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["db_id"], rows[i]["gold"]))
    if jobs <= 1:
        started = time.perf_counter()
        judge_many([SqlPair("SELECT 1", "SELECT 1", "")], config=config)
        print(f"(sandbox worker started in {time.perf_counter() - started:.1f} s, not counted)")
    started, cpu = time.perf_counter(), cpu_seconds()
    ordered = [rows[i] for i in order]
    batches = [ordered[start:start + BATCH_ROWS] for start in range(0, len(ordered), BATCH_ROWS)]
    with tqdm(total=len(rows), desc=f"judge {config.judge}", unit="row", file=sys.stderr, leave=False) as bar:
        if jobs <= 1:
            _init(config)
            verdicts = list(_counted(map(_judge_rows, batches), bar))
        else:
            with multiprocessing.get_context("spawn").Pool(jobs, initializer=_init, initargs=(config,)) as pool:
                verdicts = list(_counted(pool.imap(_judge_rows, batches), bar))
    elapsed, used = time.perf_counter() - started, cpu_seconds()
    result: list[Verdict | None] = [None] * len(rows)
    for index, verdict in zip(order, verdicts, strict=True):
        result[index] = verdict
    return [verdict for verdict in result if verdict is not None], elapsed, _spent(cpu, used)


def cpu_seconds() -> float | None:
    """CPU seconds of this process and its live children (Linux ``/proc``; None elsewhere). A pool's
    processes end inside the measured span: ``RUSAGE_CHILDREN`` holds those once reaped."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = time.process_time() + children.ru_utime + children.ru_stime
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended meanwhile
        if int(fields[1]) == os.getpid():  # fields after the name: state, ppid, ..., utime (12), stime (13)
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _spent(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def _counted(batches: Iterable[list[Verdict]], bar: tqdm[Any]) -> Iterable[Verdict]:
    for batch in batches:
        bar.update(len(batch))
        yield from batch


def exec_eval_all(rows: list[Row], tsse: Path, db_dir: Path) -> tuple[list[bool], float, float | None]:
    """test-suite-sql-eval's ``eval_exec_match`` (single DB, DISTINCT kept) on every row, its wall time
    and its CPU time (its threads are this process's)."""
    sys.path.insert(0, str(tsse.resolve()))
    import exec_eval  # type: ignore[import-not-found]

    started, cpu = time.perf_counter(), cpu_seconds()
    verdicts = []
    for row in rows:
        path = db_dir / row["db_id"] / f"{row['db_id']}.sqlite"
        try:
            verdicts.append(exec_eval.eval_exec_match(str(path), row["prediction"], row["gold"], plug_value=False,
                                                      keep_distinct=True, progress_bar_for_each_datapoint=False) == 1)
        except AssertionError:  # the gold itself failed (exec_eval asserts)
            verdicts.append(False)
    return verdicts, time.perf_counter() - started, _spent(cpu, cpu_seconds())


# ---------------------------------------------------------------- categories

_LIMITED_ORDER = re.compile(r"\border\s+by\b.*\blimit\b", re.IGNORECASE | re.DOTALL)


def _squeeze(sql: str) -> str:
    return re.sub(r"\s+", " ", sql.strip().rstrip(";")).lower()


def category(row: Row, verdict: Verdict, reference: bool) -> str:
    """A name for why the judge and the test-suite reference disagree on ``row``."""
    detail = verdict.detail or ""
    if not reference:  # we accept, the reference rejects
        if _LIMITED_ORDER.search(row["gold"]) or _LIMITED_ORDER.search(row["prediction"]):
            return "FP: ORDER BY … LIMIT (ties)"
        if "reference_single_db" not in row:
            return "FP: no database separated them"
        if row["reference_single_db"]:
            return "FP: no database separated them (the real one does not either)"
        return "FP: no database separated them (the real one does)"
    if _squeeze(row["gold"]) == _squeeze(row["prediction"]):
        return f"FN: exact copy of the gold ({verdict.error or 'compared'})"
    if verdict.error == "empty":
        return "FN: gold returns no rows"
    if verdict.error == "schema":
        return "FN: names the context omits"
    if verdict.error is not None:
        return f"FN: error {verdict.error}"
    if RANKING_DETAIL is not None and detail.startswith(RANKING_DETAIL):
        return "FN: ranks by other values than the gold (ORDER BY … LIMIT)"
    if "real" in detail:
        return "FN: results differ on the real database (comparison rules)"
    return "FN: results differ on a synthesized database (keys, NULLs, duplicates the schema excludes)"


# ---------------------------------------------------------------- report

@dataclass
class Tally:
    n: int = 0
    accepted: int = 0

    def add(self, verdict: bool) -> None:
        self.n += 1
        self.accepted += verdict


@dataclass
class Agreement:
    n: int = 0
    agree: int = 0
    false_positive: int = 0
    false_negative: int = 0

    def add(self, ours: bool, reference: bool) -> None:
        self.n += 1
        self.agree += ours == reference
        self.false_positive += ours and not reference
        self.false_negative += reference and not ours

    def cells(self) -> str:
        if not self.n:
            return f"{'—':>7s} {'':>5s} {'':>5s}"
        return f"{100 * self.agree / self.n:6.1f}% {self.false_positive:5d} {self.false_negative:5d}"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:6.1f}%" if whole else f"{'—':>7s}"


def report(mode: str, rows: list[Row], verdicts: list[bool], extra: dict[str, list[bool]]) -> None:
    """One table per mode: a line per system and one for all of them."""
    print(f"\n== judge: {mode}")
    names = [*REFERENCES, *extra]
    header = "".join(f" | {'agree':>7s} {'FP':>5s} {'FN':>5s}" for _ in names)
    print(f"{'system':18s} {'n':>5s} {'acc':>7s}{header}")
    print(f"{'':32s}" + "".join(f" | {name[:19]:>19s}" for name in names))
    by_system: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_system[row["system"]].append(index)
    for system, indices in [*sorted(by_system.items()), ("ALL", list(range(len(rows))))]:
        tally = Tally()
        agreements = {name: Agreement() for name in names}
        for i in indices:
            tally.add(verdicts[i])
            for name in REFERENCES:
                if name in rows[i]:
                    agreements[name].add(verdicts[i], bool(rows[i][name]))
            for name, values in extra.items():
                agreements[name].add(verdicts[i], values[i])
        cells = "".join(f" | {agreements[name].cells()}" for name in names)
        print(f"{system:18s} {tally.n:5d} {_percent(tally.accepted, tally.n)}{cells}")


def report_categories(rows: list[Row], verdicts: list[Verdict], show: int, proxy: list[bool] | None) -> None:
    """Disagreements with ``reference_test_suite`` (or, for rows without one, with our test-suite mode)."""
    found: dict[str, list[int]] = defaultdict(list)
    for index, (row, verdict) in enumerate(zip(rows, verdicts, strict=True)):
        reference = row.get("reference_test_suite", proxy[index] if proxy is not None else None)
        if reference is not None and verdict.exec_match != reference:
            found[category(row, verdict, bool(reference))].append(index)
    against = "reference_test_suite" + (" (else ftbench test-suite)" if proxy is not None else "")
    print(f"disagreements with {against}, by category:")
    for name, indices in sorted(found.items(), key=lambda item: -len(item[1])):
        print(f"  {len(indices):5d}  {name}")
        for index in indices[:show]:
            row, verdict = rows[index], verdicts[index]
            print(f"         {row['id']}  gold: {row['gold']}\n{'':18s}pred: {row['prediction']}\n"
                  f"{'':18s}ours: {verdict.error or ''} {verdict.detail or ''}")


def report_exec_eval(verdicts: list[Verdict], exec_eval: list[bool]) -> None:
    """How many rows we accept and exec_eval rejects only because ties may come in any order for us."""
    pairs = list(zip(verdicts, exec_eval, strict=True))
    accepted = [verdict for verdict, theirs in pairs if verdict.exec_match and not theirs]
    tied = sum(verdict.detail == TIES_DETAIL for verdict in accepted)
    rejected = sum(theirs and not verdict.exec_match for verdict, theirs in pairs)
    print(f"vs exec_eval: we accept {len(accepted)} it rejects ({tied} only through ties in the gold's ORDER BY, "
          f"{len(accepted) - tied} through float tolerance or result types); we reject {rejected} it accepts")


def _csv(text: str | None) -> list[str] | None:
    return [part for part in text.split(",") if part] if text else None


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="context,real-db", help="comma-separated judge modes")
    parser.add_argument("--systems", default=None, help="comma-separated systems (file stems); default all")
    parser.add_argument("--limit", type=int, default=None, help="first N rows of each system")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes judging in parallel")
    parser.add_argument("--tsse", type=Path, default=None, help="test-suite-sql-eval folder: run exec_eval too")
    parser.add_argument("--show", type=int, default=0, help="examples printed per disagreement category")
    args = parser.parse_args(None if argv is None else list(argv))
    data = data_dir(Path(__file__).resolve().parents[2] / "shared" / "data")
    db_dir = data / "spider" / "database"
    rows = read_predictions(data / "spider_predictions", _csv(args.systems), args.limit)
    print(f"{len(rows)} rows, {len({row['system'] for row in rows})} systems, jobs={args.jobs}")
    extra: dict[str, list[bool]] = {}
    timings: list[tuple[str, float, float | None]] = []
    if args.tsse is not None:
        extra["exec_eval (computed)"], seconds, cpu = exec_eval_all(rows, args.tsse, db_dir)
        timings.append(("test-suite-sql-eval exec_eval loop, 1 process", seconds, cpu))
        print(f"exec_eval accuracy: {_percent(sum(extra['exec_eval (computed)']), len(rows))}")
    for mode in _csv(args.modes) or []:
        config = config_for(mode, db_dir)
        verdicts, seconds, cpu = judge_all(rows, config, args.jobs)
        timings.append((f"ftbench {mode}, {args.jobs} process(es)", seconds, cpu))
        report(mode, rows, [verdict.exec_match for verdict in verdicts], extra)
        if "exec_eval (computed)" in extra:
            report_exec_eval(verdicts, extra["exec_eval (computed)"])
        report_categories(rows, verdicts, args.show, extra.get("ftbench test-suite"))
        if mode == "test-suite":  # a reference for the systems without one, for the modes after it
            extra["ftbench test-suite"] = [verdict.exec_match for verdict in verdicts]
    print(f"\nwall and CPU time on the same pairs (load average {os.getloadavg()[0]:.1f}):")
    for name, seconds, cpu in timings:
        rate, cost = len(rows) / seconds, 1000 * seconds / len(rows)
        used = f"{cpu:8.1f} s CPU {1000 * cpu / len(rows):7.2f} ms/row" if cpu is not None else ""
        print(f"  {name:48s} {seconds:8.1f} s  {rate:8.1f} rows/s  {cost:7.2f} ms/row  {used}")
    report_ratios(timings)
    return 0


def report_ratios(timings: list[tuple[str, float, float | None]]) -> None:
    """Each mode's throughput relative to exec_eval's loop, by wall and by CPU time."""
    if not timings or not timings[0][0].startswith("test-suite-sql-eval"):
        return
    _, wall, cpu = timings[0]
    for name, seconds, used in timings[1:]:
        by_cpu = f", {cpu / used:.2f}x by CPU time" if cpu is not None and used else ""
        print(f"  {name}: {wall / seconds:.2f}x exec_eval's throughput by wall time{by_cpu}")


if __name__ == "__main__":
    sys.exit(main())
