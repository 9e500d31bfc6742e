"""Rows per second pulling one hunt's results: connhunt's client against `velociraptor query`, side by side.

Starts a loopback server and client (tests/velociraptor/harness.py), runs one hunt with the synthetic
Custom.Connhunt.Bench.Rows artifact (--rows rows), then times, median of --runs runs each:

  velociraptor   `velociraptor --api_config ... query --format jsonl "SELECT * FROM hunt_results(...)"` > /dev/null
  connhunt raw   the same query through orchestrator.velociraptor.api (rows decoded into dicts)
  connhunt pull  pull.pull_hunt into a fresh DuckDB file: fetch, normalise, store, ledger (what `hunt` does)

and prints the ratios to the velociraptor figure (target >= 0.8). Usage:
  python bench/pull/run.py [--rows 100000] [--runs 5] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "velociraptor")]

import harness  # noqa: E402 - path set just above

from orchestrator.store import Store  # noqa: E402
from orchestrator.velociraptor import api, pull  # noqa: E402

ARTIFACT = "Custom.Connhunt.Bench.Rows"
QUERY = "SELECT * FROM hunt_results(hunt_id=HuntId, artifact=ArtifactName)"


def make_hunt(client: api.VelociraptorClient, rows: int, timeout: float = 600) -> str:
    api.push_artifacts(client, [HERE / f"{ARTIFACT}.yaml"])
    hunt_id = api.create_hunt(client, ARTIFACT, expires="2h", parameters={"Rows": rows})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flows = api.hunt_flows(client, hunt_id)
        if flows and all(api.flow_done(f) for f in flows):
            return hunt_id
        time.sleep(1)
    raise SystemExit(f"hunt {hunt_id} did not finish in {timeout:.0f}s")


def time_velociraptor(vr: harness.Velociraptor, hunt_id: str) -> tuple[int, float]:
    start = time.perf_counter()
    proc = subprocess.run([str(vr.binary), "--api_config", str(vr.api_config), "query", "--format", "jsonl",
                           "--env", f"HuntId={hunt_id}", "--env", f"ArtifactName={ARTIFACT}", QUERY],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=1800, check=True)
    elapsed = time.perf_counter() - start
    return proc.stdout.count(b"\n"), elapsed


def time_raw(vr: harness.Velociraptor, hunt_id: str) -> tuple[int, float]:
    start = time.perf_counter()
    with api.connect(vr.api_config, timeout=1800, check=False) as client:
        n = sum(len(batch) for batch in client.stream(QUERY, {"HuntId": hunt_id, "ArtifactName": ARTIFACT}))
    return n, time.perf_counter() - start


def time_pull(vr: harness.Velociraptor, hunt_id: str, tmp: Path) -> tuple[int, float]:
    db = tmp / f"pull-{time.monotonic_ns()}.duckdb"
    start = time.perf_counter()
    with api.connect(vr.api_config, timeout=1800, check=False) as client, Store(db) as store:
        progress = pull.pull_hunt(client, store, hunt_id, ARTIFACT, wait=60)
        n = store.count("connections")
    elapsed = time.perf_counter() - start
    db.unlink(missing_ok=True)
    assert n == progress.rows, (n, progress.rows)
    return n, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    binary = harness.find_binary(build=True)
    with tempfile.TemporaryDirectory(prefix="connhunt-bench-pull-") as tmpdir:
        tmp = Path(tmpdir)
        with harness.deployment(binary, tmp / "vr") as vr:
            with api.connect(vr.api_config, timeout=600) as client:
                print(f"making a hunt of {args.rows} rows...", file=sys.stderr)
                hunt_id = make_hunt(client, args.rows)
            timings: dict[str, list[float]] = {"velociraptor query": [], "connhunt raw": [], "connhunt pull": []}
            for run in range(args.runs):
                # Interleaved, so drift on the machine affects every contender alike.
                for name, measure in (("velociraptor query", lambda: time_velociraptor(vr, hunt_id)),
                                      ("connhunt raw", lambda: time_raw(vr, hunt_id)),
                                      ("connhunt pull", lambda: time_pull(vr, hunt_id, tmp))):
                    n, elapsed = measure()
                    if n != args.rows:
                        raise SystemExit(f"{name}: got {n} rows, expected {args.rows}")
                    timings[name].append(n / elapsed)
                print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
    medians = {name: statistics.median(rates) for name, rates in timings.items()}
    base = medians["velociraptor query"]
    print(f"hunt of {args.rows} rows, median of {args.runs} runs (rows/s):")
    for name, rate in medians.items():
        print(f"  {name:<20} {rate:>10,.0f}   ratio {rate / base:5.2f}")
    result = {"rows": args.rows, "runs": args.runs, "rows_per_second": medians,
              "ratio_to_velociraptor": {k: v / base for k, v in medians.items()}, "all": timings}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
