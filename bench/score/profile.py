"""Where `connhunt score` spends its time: every SQL statement of one run over a fleet, slowest first.

    python bench/score/profile.py ~/.cache/connhunt/bench-score/rows10000000-hosts10000-seed1 [--top 25]

Scores the fleet's Parquet files in this process as `connhunt score` does (same ingest, same analyse) and times
each statement DuckDB runs, wall and process CPU (CPU is steadier on a shared machine). A statement is named by
its first words. Use it before and after a change to a detector or to the filtered view; the bench itself
(run.py) is what the figures in the README come from.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from orchestrator import pipeline  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.store import Store  # noqa: E402


class TimedConnection:
    """A DuckDB connection that records how long each statement takes."""

    def __init__(self, con: Any) -> None:
        self._con = con
        self.timings: list[tuple[float, float, str]] = []

    def execute(self, sql: str, *args: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = self._con.execute(sql, *args)
        self.timings.append((time.perf_counter() - wall, time.process_time() - cpu, " ".join(sql.split())[:110]))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fleet", type=Path, help="a fleet directory made by generate.py")
    parser.add_argument("--top", type=int, default=25, help="how many statements to show")
    parser.add_argument("--min-risk", default="Medium", help="the findings to build, as connhunt score's default")
    args = parser.parse_args()
    files = [args.fleet / f"{kind}.parquet" for kind in ("connections", "listeners", "dns")]
    started = time.perf_counter()
    store = Store()
    timed = TimedConnection(store.con)
    store.con = timed  # type: ignore[assignment]
    config = load_config(args.fleet / "connhunt.yaml")
    pipeline.ingest_files(files, store)
    report = pipeline.analyse(store, config, min_risk=args.min_risk)
    total = time.perf_counter() - started
    print(f"{'wall s':>7} {'cpu s':>6}  statement")
    for wall, cpu, head in sorted(timed.timings, reverse=True)[:args.top]:
        print(f"{wall:7.2f} {cpu:6.2f}  {head}")
    sql = sum(t[0] for t in timed.timings)
    print(f"\n{len(timed.timings)} statements, {sql:.2f} s in SQL of {total:.2f} s in all; "
          f"{len(report.findings)} findings at {args.min_risk}+")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
