"""bench/ingest: rows/s and peak RSS reading large exports into the store, beside DuckDB's own reader of the file.

``python bench/ingest/run.py [--size 200] [--formats nxlog,winlogbeat,...] [--keep DIR]`` writes one file of about
``--size`` MB per format (a synthetic fleet: 20 Windows hosts, 50 processes each, their Sysmon 1/3/22 and WFP
5156 events, a third of the connections seen by both), then in a fresh process each:

- connhunt: ``ingest_files`` (sniff, read, normalise, insert) into a file-backed DuckDB store, the ingest half of
  ``connhunt score``;
- duckdb: ``CREATE TABLE AS SELECT * FROM read_json(...)`` / ``read_csv(...)`` of the same file into a file-backed
  database, where DuckDB has a reader for the container (JSON lines, CSV). It only splits the container into columns:
  it does not parse the XML inside Splunk's ``_raw``, join Sysmon 1 to 3, or de-duplicate WFP.

Peak RSS is the child's ``ru_maxrss``. Other formats (readers-edr's) add one entry to ``FORMATS``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.sources.windows_scenario import SECURITY, SYSMON, Event  # noqa: E402
from tests.sources.windows_shapes import (  # noqa: E402
    SPLUNK_CSV_HEADER,
    evtxecmd_line,
    nxlog_line,
    splunk_csv_row,
    splunk_json_line,
    winlogbeat_line,
)

HOSTS, PROCESSES = 20, 50
T0 = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Format:
    name: str  # the --input-format name connhunt knows it by
    suffix: str
    header: str  # written once before the events
    line: Callable[[Event, int, str], str]  # (event, serial, host) -> one unit of the file, newline included
    duckdb: str | None  # DuckDB's own reader of the file ({path}), or None when it has none


FORMATS: tuple[Format, ...] = (
    Format("nxlog", ".jsonl", "", lambda e, i, h: nxlog_line(e, h) + "\n",
           "read_json('{path}', format='newline_delimited', union_by_name=true, sample_size=-1)"),
    Format("winlogbeat", ".ndjson", "", lambda e, i, h: winlogbeat_line(e, h) + "\n",
           "read_json('{path}', format='newline_delimited', union_by_name=true, sample_size=-1)"),
    Format("splunk-json", ".json", "", lambda e, i, h: splunk_json_line(e, i, h) + "\n",
           "read_json('{path}', format='newline_delimited', sample_size=-1)"),
    Format("splunk-csv", ".csv", SPLUNK_CSV_HEADER, lambda e, i, h: splunk_csv_row(e, i, h),
           "read_csv('{path}', header=true, all_varchar=true, max_line_size=1048576)"),
    Format("sysmon-json", ".json", "", lambda e, i, h: evtxecmd_line(e, h) + "\n",
           "read_json('{path}', format='newline_delimited', sample_size=-1)"),
)


def _host(index: int) -> str:
    return f"WS-{index:03d}.corp.example"


def _guid(host: int, process: int) -> str:
    return f"{{4b1d9c2e-{host:04x}-6742-{process:04x}-000000003100}}"


def _image(process: int) -> str:
    return f"C:\\Program Files\\Vendor{process}\\agent{process}.exe"


def synthetic_events() -> Iterator[tuple[str, Event]]:
    """(host, event) without end: each host's process creations, then connections, lookups and WFP events."""
    record = 0

    def at(seconds: float) -> str:
        return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    for h in range(HOSTS):
        for p in range(PROCESSES):
            record += 1
            yield _host(h), Event(record, at(0), SYSMON, 1, (
                ("RuleName", "-"), ("UtcTime", at(0).replace("T", " ").rstrip("Z")), ("ProcessGuid", _guid(h, p)),
                ("ProcessId", str(1000 + p)), ("Image", _image(p)), ("CommandLine", f'"{_image(p)}" --service'),
                ("User", "NT AUTHORITY\\SYSTEM"),
                ("Hashes", f"SHA1={'A' * 40},MD5={'B' * 32},SHA256={p:064X},IMPHASH={'C' * 32}"),
                ("ParentProcessGuid", _guid(h, 9999)), ("ParentProcessId", "600"),
                ("ParentImage", "C:\\Windows\\System32\\services.exe"),
                ("ParentCommandLine", "C:\\Windows\\system32\\services.exe")))
    tick = 0
    while True:
        tick += 1
        h, p = tick % HOSTS, (tick // HOSTS) % PROCESSES
        seconds = tick * 0.01
        port = 49152 + tick % 16000
        remote = f"198.51.100.{1 + tick % 200}"
        record += 1
        yield _host(h), Event(record, at(seconds + 0.5), SYSMON, 3, (
            ("RuleName", "-"), ("UtcTime", at(seconds).replace("T", " ").rstrip("Z")), ("ProcessGuid", _guid(h, p)),
            ("ProcessId", str(1000 + p)), ("Image", _image(p)), ("User", "NT AUTHORITY\\SYSTEM"), ("Protocol", "tcp"),
            ("Initiated", "true"), ("SourceIsIpv6", "false"), ("SourceIp", f"10.0.{h}.5"),
            ("SourceHostname", _host(h)), ("SourcePort", str(port)), ("SourcePortName", "-"),
            ("DestinationIsIpv6", "false"), ("DestinationIp", remote), ("DestinationHostname", "-"),
            ("DestinationPort", "443"), ("DestinationPortName", "https")))
        if tick % 3 == 0:  # the same connection through WFP: de-duplicated
            record += 1
            yield _host(h), _wfp(record, at(seconds + 0.1), p, f"10.0.{h}.5", port, remote, 443)
        if tick % 5 == 0:  # a WFP-only connection
            record += 1
            yield _host(h), _wfp(record, at(seconds + 0.2), p, f"10.0.{h}.5", port + 1, remote, 8443)
        if tick % 7 == 0:
            record += 1
            yield _host(h), Event(record, at(seconds), SYSMON, 22, (
                ("RuleName", "-"), ("UtcTime", at(seconds).replace("T", " ").rstrip("Z")),
                ("ProcessGuid", _guid(h, p)), ("ProcessId", str(1000 + p)),
                ("QueryName", f"host{tick % 500}.example.net"), ("QueryStatus", "0"),
                ("QueryResults", f"::ffff:{remote};"), ("Image", _image(p)), ("User", "NT AUTHORITY\\SYSTEM")))


def _wfp(record: int, logged: str, process: int, local: str, port: int, remote: str, remote_port: int) -> Event:
    return Event(record, logged, SECURITY, 5156, (
        ("ProcessID", str(1000 + process)),
        ("Application", f"\\device\\harddiskvolume3\\program files\\vendor{process}\\agent{process}.exe"),
        ("Direction", "%%14593"), ("SourceAddress", local), ("SourcePort", str(port)), ("DestAddress", remote),
        ("DestPort", str(remote_port)), ("Protocol", "6"), ("FilterRTID", "70201"), ("LayerName", "%%14611"),
        ("LayerRTID", "48"), ("RemoteUserID", "S-1-0-0"), ("RemoteMachineID", "S-1-0-0")),
        f"The Windows Filtering Platform has permitted a connection.\n\tProcess ID:\t\t{1000 + process}\n")


def write(fmt: Format, path: Path, size: int) -> int:
    """Write about ``size`` bytes of ``fmt`` to ``path``; returns the number of events."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        written = handle.write(fmt.header)
        for host, event in synthetic_events():
            written += handle.write(fmt.line(event, count, host))
            count += 1
            if written >= size:
                break
    return count


_CONNHUNT = """
import json, sys, time
from pathlib import Path
from orchestrator.pipeline import ingest_files
from orchestrator.store import Store
store = Store(sys.argv[2])
store.con.execute(f"SET memory_limit = '{sys.argv[4]}'")
start = time.perf_counter()
stats = ingest_files([Path(sys.argv[1])], store, input_format=sys.argv[3])
print(json.dumps({"seconds": time.perf_counter() - start, "rows": stats.rows}))
"""
_READER = """
import json, sys, time
from pathlib import Path
from orchestrator.sources import read_any
start = time.perf_counter()
rows = {}
for kind, _row in read_any(Path(sys.argv[1]), input_format=sys.argv[2])[1]:
    rows[kind] = rows.get(kind, 0) + 1
print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows}))
"""
_DUCKDB = """
import duckdb, json, sys, time
con = duckdb.connect(sys.argv[2])
con.execute("SET enable_progress_bar = false")  # it draws on stdout, where the result goes
con.execute(f"SET memory_limit = '{sys.argv[3]}'")
start = time.perf_counter()
con.execute("CREATE TABLE t AS SELECT * FROM " + sys.argv[1])
rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
print(json.dumps({"seconds": time.perf_counter() - start, "rows": {"rows": rows}}))
"""


def measure(code: str, *args: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; its JSON result plus the child's peak RSS in MiB."""
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    out: IO[bytes] | None = child.stdout
    output = out.read() if out else b""
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"benchmark child failed ({child.returncode}): {' '.join(args)}")
    result = json.loads(output.splitlines()[-1])
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="MB per format file (default 200; up to 1024)")
    parser.add_argument("--formats", default=",".join(f.name for f in FORMATS))
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results.json"))
    # Both sides write to a DuckDB file whose buffer pool would otherwise cache up to 80 % of RAM, hiding whether
    # the reader itself streams; the same cap for both keeps the comparison fair.
    parser.add_argument("--measure", default="connhunt,reader,duckdb",
                        help="which of connhunt (reader + store), reader (records only), duckdb to run")
    parser.add_argument("--duckdb-memory", default="256MB", help="DuckDB memory_limit for both (default 256MB)")
    options = parser.parse_args()
    chosen = [f for f in FORMATS if f.name in options.formats.split(",")]
    measured = set(options.measure.split(","))
    results = []
    with tempfile.TemporaryDirectory(prefix="connhunt-ingest-") as scratch:
        folder = options.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for fmt in chosen:
            path = folder / f"{fmt.name}{fmt.suffix}"
            started = time.perf_counter()
            events = write(fmt, path, options.size << 20)
            size = path.stat().st_size
            print(f"{fmt.name}: wrote {size / 2**20:.0f} MiB, {events} events in "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
            entry: dict[str, object] = {"format": fmt.name, "file_mib": round(size / 2**20), "events": events}
            runs = {"connhunt": (_CONNHUNT, str(path), str(Path(scratch) / f"{fmt.name}.duckdb"), fmt.name,
                                 options.duckdb_memory),
                    "reader": (_READER, str(path), fmt.name)}
            for what, (code, *args) in runs.items():
                if what not in measured:
                    continue
                ours = measure(code, *args)
                rows = sum(ours["rows"].values())  # type: ignore[union-attr]
                entry[what] = {**ours, "rows_per_s": round(rows / ours["seconds"]),  # type: ignore[operator]
                               "events_per_s": round(events / ours["seconds"])}  # type: ignore[operator]
            if fmt.duckdb and "duckdb" in measured:
                theirs = measure(_DUCKDB, fmt.duckdb.format(path=path), str(Path(scratch) / f"{fmt.name}-raw.duckdb"),
                                 options.duckdb_memory)
                entry["duckdb"] = {**theirs, "rows_per_s": round(
                    theirs["rows"]["rows"] / theirs["seconds"])}  # type: ignore[index,operator]
            results.append(entry)
            print(json.dumps(entry), file=sys.stderr)
            if not options.keep:
                path.unlink()
    options.output.write_text(json.dumps({"size_mb": options.size, "duckdb_memory": options.duckdb_memory,
                                          "results": results}, indent=2) + "\n")
    print(f"{'format':<12} {'MiB':>6} {'events':>9}" + "".join(
        f" {what + ' rows/s':>18} {'RSS MiB':>8}" for what in ("connhunt", "reader", "duckdb")))
    for entry in results:
        line = f"{entry['format']:<12} {entry['file_mib']:>6} {entry['events']:>9}"
        for what in ("connhunt", "reader", "duckdb"):
            figures = entry.get(what) or {}
            line += f" {figures.get('rows_per_s', '-'):>18} {figures.get('peak_rss_mib', '-'):>8}"
        print(line)


if __name__ == "__main__":
    main()
