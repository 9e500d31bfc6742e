"""bench/ingest: rows/s and peak RSS of connhunt's ingest per input format, beside DuckDB's own reader of the file.

``python bench/ingest/run_edr.py [--size 200M] [--formats mde-csv,zeek-tsv] [--keep DIR]`` writes one synthetic file
per format of about ``--size`` bytes, then in a fresh child process each: reads it the way ``connhunt score`` does
(sniffed by content, normalised, inserted into a DuckDB file store) and, where DuckDB has a reader for the
container, ``CREATE TABLE AS SELECT * FROM read_json/read_csv(...)`` over the same file into a DuckDB file. Peak RSS
is the child's ``ru_maxrss``; rows/s counts the schema rows connhunt stored (DuckDB: rows of the file).

Each format is one ``Format`` entry (name, file suffix, generator, DuckDB SQL or None; edr_formats.py holds the
EDR/SIEM/network-log ones) in ``FORMATS``, all measured by the one ``measure`` function.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edr_formats import EDR_FORMATS, Format  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results-edr.json"
FORMATS: list[Format] = [*EDR_FORMATS]  # readers-win's Windows formats join this list

_CONNHUNT_CHILD = """
import json, sys
from pathlib import Path
from orchestrator.pipeline import ingest_files
from orchestrator.store import Store
store = Store(sys.argv[2])
stats = ingest_files([Path(sys.argv[1])], store)
print(json.dumps({"rows": sum(stats.rows.values()), "sources": stats.sources}))
"""
_DUCKDB_CHILD = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[2])
con.execute("SET enable_progress_bar = false")
con.execute("CREATE TABLE t AS " + sys.argv[1])
print(json.dumps({"rows": con.execute("SELECT count(*) FROM t").fetchone()[0]}))
"""


def _child(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; its JSON answer (last stdout line) plus wall seconds and peak RSS (MiB).

    Output goes to files, not pipes, so a chatty child can never block on a full pipe while we wait for it.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=out, stderr=err, cwd=ROOT,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"child failed: {err.read().decode(errors='replace')[-2000:]}")
        answer = json.loads(out.read().decode().strip().splitlines()[-1])
    answer.update({"seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
                   "rows_per_s": round(answer["rows"] / seconds)})
    return answer


def measure(fmt: Format, path: Path, work: Path) -> dict[str, Any]:
    """connhunt's ingest of ``path`` and DuckDB's own reader of it, each in a fresh process."""
    result: dict[str, Any] = {"format": fmt.name, "file_mib": round(path.stat().st_size / 2**20, 1)}
    store = work / f"{fmt.name}.connhunt.duckdb"
    result["connhunt"] = _child(_CONNHUNT_CHILD, str(path), str(store))
    store.unlink(missing_ok=True)
    print(f"  {fmt.name}: connhunt {result['connhunt']}", file=sys.stderr, flush=True)
    if fmt.duckdb:
        target = work / f"{fmt.name}.duckdb.duckdb"
        result["duckdb"] = _child(_DUCKDB_CHILD, fmt.duckdb.format(path=path), str(target))
        target.unlink(missing_ok=True)
        result["ratio_rows_per_s"] = round(result["connhunt"]["rows_per_s"] / result["duckdb"]["rows_per_s"], 3)
    return result


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="200M", help="bytes per generated file (200M, 1G...)")
    parser.add_argument("--formats", default="", help="comma-separated subset of: "
                                                      + ", ".join(f.name for f in FORMATS))
    parser.add_argument("--keep", type=Path, help="generate into (and keep) this folder instead of a temporary one")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"where the figures go ({RESULTS.name})")
    parser.add_argument("--no-save", action="store_true", help="do not write the figures")
    args = parser.parse_args()
    wanted = {name for name in args.formats.split(",") if name}
    formats = [f for f in FORMATS if not wanted or f.name in wanted]
    size = _size(args.size)
    results = []
    with tempfile.TemporaryDirectory(prefix="connhunt-bench-ingest-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            path = folder / f"{fmt.name}{fmt.suffix}"
            with path.open("w", encoding="utf-8") as out:
                records = fmt.generate(out, size, random.Random(1))
            result = measure(fmt, path, Path(scratch))
            result["records_in_file"] = records
            results.append(result)
            print(_line(result), flush=True)
            if not args.keep:
                path.unlink()
    if not args.no_save:
        args.output.write_text(json.dumps({"size": args.size, "results": results}, indent=2) + "\n")


def _line(result: dict[str, Any]) -> str:
    mine = result["connhunt"]
    text = (f"{result['format']:<22} {result['file_mib']:>7.1f} MiB  connhunt {mine['rows_per_s']:>9,} rows/s "
            f"peak {mine['peak_rss_mib']:>7.1f} MiB")
    if "duckdb" in result:
        theirs = result["duckdb"]
        text += (f"  | duckdb {theirs['rows_per_s']:>10,} rows/s peak {theirs['peak_rss_mib']:>7.1f} MiB"
                 f"  ratio {result['ratio_rows_per_s']:.3f}")
    return text


if __name__ == "__main__":
    main()
