"""bench/ingest formats of the EDR/SIEM and network-log readers: one Format entry per format, with its generator.

Each generator writes a synthetic file of about ``size`` bytes in the producer's shape (the same shapes as the
fixtures in tests/sources/data/edr/) and returns how many records it wrote.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

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
EDR_FORMATS: list[Format] = [
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

