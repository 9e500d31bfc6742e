"""Scoring benchmark: connhunt score over generated fleets of 1, 3 and 10 million rows, side by side with the floor.

    python bench/score/run.py --sizes 1M,3M,10M --hosts 10000       # writes results.json / results.md here

For each size: generate the fleet (cached by size, hosts and seed), then in the same run, each in a fresh
subprocess: (a) the floor, a bare DuckDB pass over the same Parquet (read + GROUP BY stacking of (process_identity,
remote_ip, remote_port) -> count(DISTINCT host) into a temp table); (b) `connhunt score` of the fleet, Parquet in
(or fleet.jsonl with --input jsonl, or when connhunt does not read Parquet yet); (c) connhunt's JSONL ingest into
its store against DuckDB's own read_json over the same fleet.jsonl. Prints wall, peak RSS, ratio to the floor, the
growth exponent between sizes, findings by risk and precision against the truth, and the issue's targets as
pass/fail. Exit 0 when every target is met, 1 when one is missed.
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.score import measure  # noqa: E402
from bench.score.evaluate import evaluate  # noqa: E402
from orchestrator.schema import TABLE_COLUMNS  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# connhunt's own entry point, run from this checkout (cwd ROOT), not whatever `connhunt` is first on PATH
CONNHUNT = ("-c", "import sys; from orchestrator.cli import main; sys.argv[0] = 'connhunt'; main()")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "connhunt" / "bench-score"
TABLES = ("connections", "listeners", "dns")
SCORE_OK = (0, 1)  # connhunt: 1 = a finding at or above --fail-on, still a finished report
GIB = 1024.0

FLOOR = """
import duckdb, sys
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute("CREATE TEMP TABLE stack AS SELECT process_identity, remote_ip, remote_port, count(DISTINCT host) AS hosts"
            " FROM read_parquet(?) GROUP BY ALL", [sys.argv[1]])
print(con.execute("SELECT count(*) FROM stack").fetchone()[0])
"""
READ_JSON = """
import duckdb, json, sys
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
columns = json.loads(sys.argv[2])
con.execute("CREATE TEMP TABLE fleet AS SELECT * FROM read_json(?, format = 'newline_delimited', columns = "
            + "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "})", [sys.argv[1]])
print(con.execute("SELECT count(*) FROM fleet").fetchone()[0])
"""
INGEST = """
import sys
from pathlib import Path
from orchestrator.pipeline import ingest_files
from orchestrator.store import Store
store = Store()
stats = ingest_files([Path(sys.argv[1])], store)
print(sum(store.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("connections", "listeners", "dns")))
"""


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("KM")) * scale)


def fleet_dir(rows: int, hosts: int, seed: int, cache: Path) -> Path:
    """The generated fleet for (rows, hosts, seed), made once; truth.json is written last, so it marks a whole run."""
    out = cache / f"rows{rows}-hosts{hosts}-seed{seed}"
    if not (out / "truth.json").exists():
        # in its own process: the harness stays small, and a fork of a small process measures cleanly
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--hosts", str(hosts), "--rows", str(rows),
                        "--out", str(out), "--seed", str(seed)], check=True)
    return out


def json_columns() -> dict[str, str]:
    """Every key fleet.jsonl can hold, with the schema's type (times are text to parse, as connhunt must)."""
    cols: dict[str, str] = {"kind": "VARCHAR"}
    for table in TABLES:
        for name, typ in TABLE_COLUMNS[table]:
            if name != "process_identity":
                cols.setdefault(name, typ)
    return cols


def reads_parquet(python: str, fleet: Path, work: Path) -> bool:
    """Does this connhunt score Parquet yet? (Before it does, a Parquet file is read as JSONL and rejected.)"""
    m = measure.run([python, *CONNHUNT, "score", str(fleet / "listeners.parquet"), "--format",
                     "json", "--quiet"], work / "probe.json", timeout_s=120, max_rss_mib=4096, cwd=ROOT)
    return m.exit_code in (0, 1)


def connhunt_argv(python: str, fleet: Path, use_parquet: bool) -> list[str]:
    inputs = [str(fleet / f"{t}.parquet") for t in TABLES] if use_parquet else [str(fleet / "fleet.jsonl")]
    return [python, *CONNHUNT, "score", *inputs, "--format", "json", "--config",
            str(fleet / "connhunt.yaml"), "--quiet"]


def read_report(path: Path) -> dict[str, Any]:
    """The JSON report, past anything printed before it (DuckDB's progress bar reaches stdout on long queries)."""
    text = path.read_text(errors="replace")
    return json.loads(text[text.index("{"):]) if "{" in text else {}


def step(m: measure.Measured, ok_codes: tuple[int, ...] = (0,)) -> dict[str, Any]:
    with m.stdout.open("rb") as handle:
        text = handle.read(1 << 16).decode(errors="replace")
    ok = m.exit_code in ok_codes and not m.stopped
    return {"wall_s": m.wall_s, "peak_rss_mib": m.peak_rss_mib, "exit_code": m.exit_code, "stopped": m.stopped,
            "ok": ok, "stderr_tail": "" if ok else m.stderr_tail[-400:],
            # connhunt's own stdout should be the JSON document alone; say so when something came before it
            "stdout_before_json": "{" in text and not text.lstrip().startswith("{")}


def bench_size(rows: int, args: argparse.Namespace, python: str) -> dict[str, Any]:
    fleet = fleet_dir(rows, args.hosts, args.seed, args.cache)
    truth = json.loads((fleet / "truth.json").read_text())
    work = fleet / "runs"
    work.mkdir(exist_ok=True)
    limits = {"timeout_s": args.timeout, "max_rss_mib": args.max_rss_gib * GIB, "cwd": ROOT}
    floor = measure.run([python, "-c", FLOOR, str(fleet / "connections.parquet")], work / "floor.out", **limits)
    use_parquet = args.input == "parquet" or (args.input == "auto" and reads_parquet(python, fleet, work))
    score = measure.run(connhunt_argv(python, fleet, use_parquet), work / "report.json", **limits)
    result: dict[str, Any] = {
        "rows": truth["rows"], "hosts": truth["hosts"], "rows_by_kind": truth["rows_by_kind"],
        "input": "parquet" if use_parquet else "jsonl", "floor": step(floor), "score": step(score, SCORE_OK),
    }
    # a stopped scorer's ratio is a lower bound; it is kept, and the table marks the step as stopped
    result["ratio_to_floor"] = round(score.wall_s / floor.wall_s, 2) if result["floor"]["ok"] else None
    if not args.skip_ingest:
        raw = measure.run([python, "-c", READ_JSON, str(fleet / "fleet.jsonl"), json.dumps(json_columns())],
                          work / "read_json.out", **limits)
        ingest = measure.run([python, "-c", INGEST, str(fleet / "fleet.jsonl")], work / "ingest.out", **limits)
        n = truth["rows"]
        result["read_json"] = {**step(raw), "rows_per_s": round(n / raw.wall_s)}
        result["ingest"] = {**step(ingest), "rows_per_s": round(n / ingest.wall_s)}
        if result["read_json"]["ok"] and result["ingest"]["ok"]:
            result["ingest_vs_read_json"] = round(raw.wall_s / ingest.wall_s, 3)
    if result["score"]["ok"]:
        result["precision"] = evaluate(read_report(score.stdout), truth)
    return result


def reference(args: argparse.Namespace, python: str, rows_per_host: float) -> dict[str, Any] | None:
    """Plant risks on a small fleet of the same density: the large runs must find each plant at the same risk."""
    if not args.reference_hosts:
        return None
    fleet = fleet_dir(round(rows_per_host * args.reference_hosts), args.reference_hosts, args.seed, args.cache)
    work = fleet / "runs"
    work.mkdir(exist_ok=True)
    use_parquet = args.input == "parquet" or (args.input == "auto" and reads_parquet(python, fleet, work))
    m = measure.run(connhunt_argv(python, fleet, use_parquet), work / "report.json", timeout_s=args.timeout,
                    max_rss_mib=args.max_rss_gib * GIB, cwd=ROOT)
    if not step(m, SCORE_OK)["ok"]:
        return {"hosts": args.reference_hosts, "score": step(m, SCORE_OK), "risks": None}
    truth = json.loads((fleet / "truth.json").read_text())
    judged = evaluate(read_report(m.stdout), truth)
    return {"hosts": args.reference_hosts, "rows": truth["rows"], "score": step(m, SCORE_OK),
            "risks": {p["id"]: p["best_risk"] for p in judged["planted"]}}


def growth(results: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """log(t2/t1) / log(n2/n1) between consecutive sizes: 1.0 is linear."""
    out = []
    for a, b in zip(results, results[1:]):
        ta, tb = a[key]["wall_s"], b[key]["wall_s"]
        if a[key]["ok"] and b[key]["ok"] and ta > 0 and tb > 0:
            out.append({"from": a["rows"], "to": b["rows"],
                        "exponent": round(math.log(tb / ta) / math.log(b["rows"] / a["rows"]), 2)})
    return out


def targets(results: list[dict[str, Any]], ref: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The issue's acceptance targets, judged at the largest size measured (precision: at every size)."""
    big = results[-1]
    ok_run = big["score"]["ok"]
    out = [
        {"target": f"{big['rows']:,} rows scored in < 60 s", "value": big["score"]["wall_s"],
         "pass": ok_run and big["score"]["wall_s"] < 60},
        {"target": "<= 8x the floor", "value": big["ratio_to_floor"],
         "pass": ok_run and big["ratio_to_floor"] is not None and big["ratio_to_floor"] <= 8},
        {"target": "< 4 GiB peak RSS", "value": round(big["score"]["peak_rss_mib"] / GIB, 2),
         "pass": ok_run and big["score"]["peak_rss_mib"] < 4 * GIB},
    ]
    if "ingest_vs_read_json" in big or "ingest" in big:
        ratio = big.get("ingest_vs_read_json")
        out.append({"target": "JSONL ingest >= 0.5x read_json rows/s", "value": ratio,
                    "pass": ratio is not None and ratio >= 0.5})
    if big["input"] != "parquet":
        out.append({"target": "scored from Parquet", "value": big["input"], "pass": False})
    for r in results:
        p = r.get("precision")
        label = f"{r['rows']:,} rows"
        if p is None:
            out.append({"target": f"{label}: report to judge", "value": "no report", "pass": False})
            continue
        out += [
            {"target": f"{label}: every planted anomaly at High+", "value": f"{p['planted_high']}/{p['planted_total']}",
             "pass": p["planted_high"] == p["planted_total"]},
            {"target": f"{label}: <= 1 benign High+ per 1,000 hosts", "value": p["benign_high_per_1000_hosts"],
             "pass": p["benign_high_per_1000_hosts"] <= 1},
            {"target": f"{label}: <= 1 Medium per 100 hosts", "value": p["medium_per_100_hosts"],
             "pass": p["medium_per_100_hosts"] <= 1},
            {"target": f"{label}: no benign server's inbound clients at Medium+", "value": p["inbound_medium_or_above"],
             "pass": p["inbound_medium_or_above"] == 0},
        ]
        if ref is not None:
            risks = ref.get("risks") or {}
            differ = [f"{x['id']} {risks.get(x['id'])}->{x['best_risk']}" for x in p["planted"]
                      if risks.get(x["id"]) != x["best_risk"]]
            out.append({"target": f"{label}: every plant at the same risk as in the {ref['hosts']}-host run",
                        "value": ", ".join(differ) if differ else "same", "pass": bool(risks) and not differ})
    return out


def _cell(step_result: dict[str, Any]) -> str:
    flag = f" ({step_result['stopped']})" if step_result["stopped"] else (
        "" if step_result["ok"] else f" (exit {step_result['exit_code']})")
    return f"{step_result['wall_s']:.1f} s / {step_result['peak_rss_mib'] / GIB:.2f} GiB{flag}"


def render(doc: dict[str, Any]) -> str:
    lines = [f"# Scoring benchmark ({doc['run']['hosts']:,} hosts, seed {doc['run']['seed']})", "",
             "| rows | input | floor (wall / peak RSS) | connhunt score | ratio | read_json | JSONL ingest "
             "| ingest/read_json | findings C/H/M/L | planted High+ | benign High+ /1k hosts | Medium /100 hosts |",
             "| ---: | --- | --- | --- | ---: | --- | --- | ---: | --- | ---: | ---: | ---: |"]
    for r in doc["sizes"]:
        p = r.get("precision")
        risks = "/".join(str(v) for v in p["findings_by_risk"].values()) if p else "-"
        planted = f"{p['planted_high']}/{p['planted_total']}" if p else "-"
        lines.append(
            f"| {r['rows']:,} | {r['input']} | {_cell(r['floor'])} | {_cell(r['score'])} | {r['ratio_to_floor']}x | "
            f"{_cell(r['read_json']) if 'read_json' in r else '-'} | {_cell(r['ingest']) if 'ingest' in r else '-'} | "
            f"{r.get('ingest_vs_read_json', '-')} | {risks} | "
            f"{planted} | "
            f"{p['benign_high_per_1000_hosts'] if p else '-'} | {p['medium_per_100_hosts'] if p else '-'} |")
    lines += ["", "Growth exponent (log t2/t1 / log n2/n1; 1.0 = linear): connhunt "
              + (", ".join(f"{g['from']:,}->{g['to']:,}: {g['exponent']}" for g in doc["growth"]["score"]) or "-")
              + "; floor " + (", ".join(f"{g['from']:,}->{g['to']:,}: {g['exponent']}"
                                       for g in doc["growth"]["floor"]) or "-"), "", "## Targets", "",
              "| target | value | result |", "| --- | --- | --- |"]
    lines += [f"| {t['target']} | {t['value']} | {'pass' if t['pass'] else 'FAIL'} |" for t in doc["targets"]]
    for r in doc["sizes"]:
        p = r.get("precision")
        if not p:
            continue
        ref = (doc.get("reference") or {}).get("risks") or {}
        lines += ["", f"## Planted anomalies at {r['rows']:,} rows", "",
                  "| id | scenario | host | process | remote | best risk | any destination | small fleet |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {x['id']} | {x['scenario']} | {x['host']} | `{x['process_identity']}` | {x['remote'] or '-'} | "
                  f"{x['best_risk'] or 'not found'} | {x['best_risk_any_destination'] or '-'} | "
                  f"{ref.get(x['id'], '-') or 'not found'} |" for x in p["planted"]]
        for title, key in (("Benign High+ by lookalike", "benign_high_by_name"),
                           ("Medium by lookalike (top 15)", "medium_by_name")):
            if p[key]:
                lines += ["", f"{title}: " + ", ".join(f"{k} {v}" for k, v in p[key].items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1M,3M,10M", help="row counts, e.g. 100k,1M,3M,10M")
    p.add_argument("--hosts", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--input", choices=("auto", "parquet", "jsonl"), default="auto",
                   help="what connhunt score reads (auto: Parquet when connhunt accepts it)")
    p.add_argument("--cache", type=Path, default=CACHE, help="where generated fleets are kept")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds before a step is stopped")
    p.add_argument("--max-rss-gib", type=float, default=8.0, help="a step past this resident size is stopped")
    p.add_argument("--skip-ingest", action="store_true", help="skip the JSONL ingest comparison")
    p.add_argument("--reference-hosts", type=int, default=100,
                   help="also score a fleet this small at the same rows per host; plants must score the same (0: skip)")
    p.add_argument("--results", type=Path, default=HERE, help="where results.json / results.md go")
    args = p.parse_args(argv)
    python = sys.executable
    # Byte-code for the checkout, as `pip install` writes it for an installed connhunt: under
    # PYTHONDONTWRITEBYTECODE (set on this machine) every run would otherwise compile ~100 modules, 0.07 s.
    for package in ("orchestrator", "agent_local"):
        compileall.compile_dir(ROOT / package, quiet=1)
    sizes = sorted(parse_size(s) for s in args.sizes.split(","))
    results = []
    for rows in sizes:
        print(f"bench: {rows:,} rows x {args.hosts:,} hosts", file=sys.stderr)
        results.append(bench_size(rows, args, python))
        r = results[-1]
        print(f"bench: floor {_cell(r['floor'])}; connhunt score ({r['input']}) {_cell(r['score'])}; "
              f"ratio {r['ratio_to_floor']}x", file=sys.stderr)
    ref = reference(args, python, results[-1]["rows"] / args.hosts)
    doc = {"run": {"hosts": args.hosts, "seed": args.seed, "sizes": sizes, "cpus": os.cpu_count(),
                   "load_average": os.getloadavg()},
           "sizes": results, "reference": ref,
           "growth": {"score": growth(results, "score"), "floor": growth(results, "floor")}}
    doc["targets"] = targets(results, ref)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    rendered = render(doc)
    (args.results / "results.md").write_text(rendered)
    print(rendered, end="")
    return 0 if all(t["pass"] for t in doc["targets"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
