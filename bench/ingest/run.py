"""bench/ingest: rows/s and peak RSS of connhunt's ingest per input format, beside DuckDB's own reader of the file.

``python bench/ingest/run.py [--size 200M] [--formats mde-csv,zeek-tsv] [--keep DIR]`` writes one synthetic file
per format of about ``--size`` bytes, then in a fresh child process each: reads it the way ``connhunt score`` does
(sniffed by content, normalised, inserted into a DuckDB file store) and, where DuckDB has a reader for the
container, ``CREATE TABLE AS SELECT * FROM read_json/read_csv(...)`` over the same file into a DuckDB file. Peak RSS
is the child's ``ru_maxrss``; rows/s counts the schema rows connhunt stored (DuckDB: rows of the file).

Each format is one ``Format`` entry in ``FORMATS`` (name, file suffix, generator, DuckDB SQL or None), all measured
by the one ``measure`` function, so other readers' formats are added as entries.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results.json"
BASE = 1795395600  # 2026-11-23T01:00:00Z

Generator = Callable[[IO[str], int, random.Random], int]


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    generate: Generator  # writes rows until about the given number of bytes; returns the number of records
    duckdb: str | None  # SQL reading the file ({path}) with DuckDB's own reader, or None when none applies


def _ip(rng: random.Random, prefix: str = "198.51.100") -> str:
    return f"{prefix}.{rng.randrange(1, 255)}"


def _until(out: IO[str], size: int, line: Callable[[int], str]) -> int:
    written = count = 0
    while written < size:
        text = line(count)
        out.write(text)
        written += len(text)
        count += 1
    return count


MDE_COLUMNS = ("Timestamp,DeviceId,DeviceName,ActionType,RemoteIP,RemotePort,RemoteUrl,LocalIP,LocalPort,Protocol,"
               "InitiatingProcessSHA256,InitiatingProcessFileName,InitiatingProcessFolderPath,InitiatingProcessId,"
               "InitiatingProcessCommandLine,InitiatingProcessParentId,InitiatingProcessParentFileName,"
               "InitiatingProcessAccountDomain,InitiatingProcessAccountName")
_IMAGES = [r"c:\windows\system32\svchost.exe", r"c:\program files\app\app.exe", r"c:\users\u\appdata\local\temp\x.exe",
           r"c:\windows\system32\rundll32.exe"]


def _mde_row(n: int, rng: random.Random) -> dict[str, Any]:
    image = _IMAGES[n % len(_IMAGES)]
    return {"Timestamp": f"2026-11-23T01:{(n // 60) % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z",
            "DeviceId": f"{n % 500:040x}", "DeviceName": f"ws-{n % 500}.corp.example",
            "ActionType": "ConnectionSuccess" if n % 10 else "InboundConnectionAccepted",
            "RemoteIP": _ip(rng), "RemotePort": rng.choice((443, 80, 4444, 8443)),
            "RemoteUrl": "cdn.example.net" if n % 3 == 0 else "", "LocalIP": f"10.0.{n % 250}.{n % 200 + 1}",
            "LocalPort": 49152 + n % 16000, "Protocol": "Tcp", "InitiatingProcessSHA256": f"{n % 97:064x}",
            "InitiatingProcessFileName": image.rsplit("\\", 1)[1], "InitiatingProcessFolderPath": image,
            "InitiatingProcessId": 1000 + n % 5000, "InitiatingProcessCommandLine": f"{image} --run {n % 13}",
            "InitiatingProcessParentId": 700, "InitiatingProcessParentFileName": "services.exe",
            "InitiatingProcessAccountDomain": "corp", "InitiatingProcessAccountName": f"user{n % 50}"}


def gen_mde_csv(out: IO[str], size: int, rng: random.Random) -> int:
    out.write(MDE_COLUMNS + "\n")
    return _until(out, size, lambda n: ",".join(f'"{v}"' if "," in str(v) else str(v)
                                                 for v in _mde_row(n, rng).values()) + "\n")


def gen_mde_json(out: IO[str], size: int, rng: random.Random) -> int:
    return _until(out, size, lambda n: json.dumps(_mde_row(n, rng)) + "\n")


def gen_falcon(out: IO[str], size: int, rng: random.Random) -> int:
    def line(n: int) -> str:
        process = n // 20
        if n % 20 == 0:  # one ProcessRollup2 per 19 network events of that process
            return json.dumps({"event_simpleName": "ProcessRollup2", "aid": f"{process % 300:032x}",
                               "TargetProcessId": str(process), "RawProcessId": str(process % 60000 + 100),
                               "ImageFileName": r"\Device\HarddiskVolume3\Windows\System32\rundll32.exe",
                               "CommandLine": f"rundll32.exe c:\\programdata\\{process % 11}.dll,Entry",
                               "SHA256HashData": f"{process % 89:064x}", "timestamp": str((BASE + n) * 1000)}) + "\n"
        return json.dumps({"event_simpleName": "NetworkConnectIP4", "aid": f"{process % 300:032x}",
                           "ContextProcessId": str(process), "ContextTimeStamp": f"{BASE + n}.{n % 1000:03d}",
                           "timestamp": str((BASE + n) * 1000), "LocalAddressIP4": "10.0.0.8",
                           "LocalPort": str(49152 + n % 16000), "RemoteAddressIP4": _ip(rng),
                           "RemotePort": "443", "Protocol": "6", "ConnectionDirection": "0"}) + "\n"
    return _until(out, size, line)


def gen_elastic(out: IO[str], size: int, rng: random.Random) -> int:
    def line(n: int) -> str:
        return json.dumps({
            "@timestamp": f"2026-11-23T01:{(n // 60) % 60:02d}:{n % 60:02d}Z", "agent": {"type": "endpoint"},
            "ecs": {"version": "8.10.0"},
            "event": {"action": "connection_attempted", "category": ["network"], "module": "endpoint",
                      "outcome": "success"},
            "host": {"name": f"web-{n % 400}", "id": f"{n % 400:032x}", "os": {"type": "linux"}},
            "network": {"direction": "egress", "transport": "tcp"},
            "process": {"executable": f"/usr/bin/app{n % 9}", "name": f"app{n % 9}", "pid": 2000 + n % 3000,
                        "parent": {"pid": 1, "name": "systemd"}},
            "source": {"ip": "10.0.2.3", "port": 40000 + n % 20000},
            "destination": {"ip": _ip(rng), "port": 443}, "user": {"name": "svc"}}) + "\n"
    return _until(out, size, line)


ZEEK_FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration",
               "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp", "missed_bytes", "history"]


def _zeek_row(n: int, rng: random.Random) -> list[Any]:
    return [f"{BASE + n / 10:.6f}", f"C{n:017d}", f"10.0.{n % 250}.{n % 200 + 1}", 49152 + n % 16000, _ip(rng),
            rng.choice((443, 80, 22, 4444)), "tcp", "-", f"{n % 300 / 7:.6f}", n % 5000, n % 9000,
            rng.choice(("SF", "S0", "REJ", "S1")), "T", "F", 0, "ShADadFf"]


def gen_zeek_tsv(out: IO[str], size: int, rng: random.Random) -> int:
    out.write("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
              f"#open\t2026-11-23-01-00-00\n#fields\t{chr(9).join(ZEEK_FIELDS)}\n#types\t"
              "time\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount"
              "\tstring\n")
    count = _until(out, size, lambda n: "\t".join(map(str, _zeek_row(n, rng))) + "\n")
    out.write("#close\t2026-11-23-02-00-00\n")
    return count


def gen_zeek_json(out: IO[str], size: int, rng: random.Random) -> int:
    def line(n: int) -> str:
        row = dict(zip(ZEEK_FIELDS, _zeek_row(n, rng)))
        row.update({"ts": BASE + n / 10, "local_orig": True, "local_resp": False, "duration": n % 300 / 7})
        del row["service"]
        return json.dumps(row) + "\n"
    return _until(out, size, line)


def gen_fleet(out: IO[str], size: int, rng: random.Random) -> int:
    def line(n: int) -> str:
        rows = [{"family": "2", "local_address": "10.0.7.11", "local_port": str(50000 + k), "name": "agent",
                 "path": f"/usr/local/bin/agent{k % 5}", "pid": str(900 + k), "protocol": "6",
                 "remote_address": _ip(rng), "remote_port": "443", "state": "ESTABLISHED", "cmdline": "agent -d",
                 "host_hostname": f"mac-{n}"} for k in range(50)]
        return json.dumps({"host": f"mac-{n}", "rows": rows}) + "\n"
    return _until(out, size, line)


def gen_osquery_socket_events(out: IO[str], size: int, rng: random.Random) -> int:
    def line(n: int) -> str:
        return json.dumps({
            "name": "pack_ir_socket_events", "hostIdentifier": f"db-{n % 300}", "unixTime": BASE + n // 100,
            "calendarTime": "Mon Nov 23 01:00:10 2026 UTC", "epoch": 0, "counter": 0, "numerics": False,
            "decorations": {"host_uuid": f"{n % 300:032x}"}, "action": "added",
            "columns": {"action": "connect", "auid": "1001", "family": "2", "fd": "3", "local_address": "",
                        "local_port": "0", "path": f"/usr/bin/client{n % 7}", "pid": str(4000 + n % 9000),
                        "protocol": "6", "remote_address": _ip(rng), "remote_port": "5432", "socket": "",
                        "success": "1", "time": str(BASE + n // 100), "uptime": "86400"}}) + "\n"
    return _until(out, size, line)


_NDJSON = "SELECT * FROM read_json('{path}', format = 'newline_delimited')"
FORMATS: list[Format] = [
    Format("mde-csv", ".csv", gen_mde_csv, "SELECT * FROM read_csv('{path}', header = true)"),
    Format("mde-ndjson", ".json", gen_mde_json, _NDJSON),
    Format("falcon-ndjson", ".json", gen_falcon, _NDJSON),
    Format("elastic-ndjson", ".ndjson", gen_elastic, _NDJSON),
    Format("zeek-tsv", ".log", gen_zeek_tsv,
           "SELECT * FROM read_csv('{path}', delim = '\\t', comment = '#', header = false, auto_detect = true)"),
    Format("zeek-json", ".json", gen_zeek_json, _NDJSON),
    # one line per host holds its rows: DuckDB unnests them, so both sides count socket rows
    Format("fleetctl-jsonl", ".jsonl", gen_fleet,
           "SELECT host, unnest(rows) AS r FROM read_json('{path}', format = 'newline_delimited')"),
    Format("osquery-socket-events", ".log", gen_osquery_socket_events, _NDJSON),
]

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
con.execute("CREATE TABLE t AS " + sys.argv[1])
print(json.dumps({"rows": con.execute("SELECT count(*) FROM t").fetchone()[0]}))
"""


def _child(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; its JSON answer plus wall seconds and peak RSS (MiB)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    out, err = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"child failed: {err.decode(errors='replace')[-2000:]}")
    answer = json.loads(out)
    answer.update({"seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
                   "rows_per_s": round(answer["rows"] / seconds)})
    return answer


def measure(fmt: Format, path: Path, work: Path) -> dict[str, Any]:
    """connhunt's ingest of ``path`` and DuckDB's own reader of it, each in a fresh process."""
    result: dict[str, Any] = {"format": fmt.name, "file_mib": round(path.stat().st_size / 2**20, 1)}
    store = work / f"{fmt.name}.connhunt.duckdb"
    result["connhunt"] = _child(_CONNHUNT_CHILD, str(path), str(store))
    store.unlink(missing_ok=True)
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
