"""CrowdStrike Falcon events (FDR NDJSON, Event Search CSV) joined to ProcessRollup2, read into whole schema rows."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.sources.falcon import read_falcon
from tests.conftest import run_connhunt
from tests.sources.edr_rows import EDR, connection, dns, listener
from tests.sources.helpers import health, one_line_error, read, rows, score_json, utc

AID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
RUNDLL_PATH = r"\Device\HarddiskVolume3\Windows\System32\rundll32.exe"
# The connection comes before its ProcessRollup2 in the file: the join is by (aid, ContextProcessId), either order.
RUNDLL = {"host": AID, "source": "falcon", "os": "windows", "pid": 7344, "ppid": 6012, "process_name": "rundll32.exe",
          "process_path": RUNDLL_PATH, "process_identity": RUNDLL_PATH.lower(),
          "command_line": r"rundll32.exe C:\ProgramData\svc.dll,Entry", "username": "bob",
          "process_start": utc("2026-11-23T01:00:00.040"), "parent_name": "cmd.exe",
          "parent_path": r"\Device\HarddiskVolume3\Windows\System32\cmd.exe",
          "exe_sha256": "9c2e4f6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a",
          "attribution": "falcon_process_id"}


def test_fdr_events_joined_to_processes() -> None:
    name, records = read(EDR / "falcon_fdr.ndjson")
    assert name == "falcon"
    assert rows(records, "connection") == [
        connection(**RUNDLL, protocol="tcp", local_ip="10.0.0.8", local_port=49801, remote_ip="203.0.113.9",
                   remote_port=8443, state="NONE", direction="outbound", first_seen=utc("2026-11-23T01:00:01.437"),
                   collected_at=utc("2026-11-23T01:00:01.5")),
        connection(**RUNDLL, protocol="tcp", local_ip="10.0.0.8", local_port=5555, remote_ip="10.0.0.66",
                   remote_port=51515, state="NONE", direction="inbound", first_seen=utc("2026-11-23T01:00:02.9"),
                   collected_at=utc("2026-11-23T01:00:03")),
        # no ProcessRollup2 for this one: kept, unattributed, and counted in health
        connection(host=AID, source="falcon", pid=0, attributed=False, attribution=None,
                   process_identity="<unknown>", protocol="tcp", family="ipv6", local_ip="fd00::8", local_port=49900,
                   remote_ip="2001:db8::77", remote_port=443, state="NONE", direction="outbound",
                   first_seen=utc("2026-11-23T01:00:03.99"), collected_at=utc("2026-11-23T01:00:04")),
    ]
    listener_facts = {k: v for k, v in RUNDLL.items() if k != "attribution"}
    assert rows(records, "listener") == [
        listener(**listener_facts, protocol="tcp", local_ip="0.0.0.0", local_port=5555,
                 first_seen=utc("2026-11-23T01:00:01.95"), collected_at=utc("2026-11-23T01:00:02")),
    ]
    assert rows(records, "dns") == [
        dns(host=AID, source="falcon", pid=7344, process_name="rundll32.exe", process_path=RUNDLL_PATH.lower(),
            process_identity=RUNDLL_PATH.lower(), query="update.example.org", qtype="A", answers=["203.0.113.9"],
            timestamp=utc("2026-11-23T01:00:01.1"), collected_at=utc("2026-11-23T01:00:01.2")),
    ]
    assert health(records) == {"falcon_other_events": 1, "falcon_process_unknown": 1}


def test_event_search_csv() -> None:
    name, records = read(EDR / "falcon_search.csv")
    assert name == "falcon"
    assert rows(records, "connection") == [
        connection(host="LNX-DB-2", host_id="b2c3d4e5f60718293a4b5c6d7e8f90a1", source="falcon", pid=31337,
                   process_name="kthreadd", process_path="/dev/shm/.k/kthreadd",
                   process_identity="/dev/shm/.k/kthreadd",
                   command_line="/dev/shm/.k/kthreadd -o pool.example.net:3333", username="postgres",
                   process_start=utc("2026-11-23T01:00:00"), parent_name="bash", attribution="falcon_process_id",
                   exe_sha256="5e7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a", protocol="tcp",
                   local_ip="10.0.1.2", local_port=40222, remote_ip="198.51.100.33", remote_port=3333, state="NONE",
                   direction="outbound", first_seen=utc("2026-11-23T01:00:01")),
    ]


def test_process_table_is_on_disk_not_in_memory(tmp_path: Path) -> None:
    """50,000 processes and their connections: the join still finds each one (the table is SQLite, batched)."""
    path = tmp_path / "fdr.ndjson"
    with path.open("w") as out:
        for n in range(50_000):
            out.write(json.dumps({"event_simpleName": "NetworkConnectIP4", "aid": "a", "ContextProcessId": str(n),
                                  "timestamp": "1795395600000", "RemoteAddressIP4": "198.51.100.1",
                                  "RemotePort": "443", "LocalAddressIP4": "10.0.0.1", "LocalPort": "40000",
                                  "Protocol": "6"}) + "\n")
            out.write(json.dumps({"event_simpleName": "ProcessRollup2", "aid": "a", "TargetProcessId": str(n),
                                  "RawProcessId": str(n + 1), "ImageFileName": f"/opt/p{n % 7}",
                                  "timestamp": "1795395600000"}) + "\n")
    connections = [row for kind, row in read_falcon(path) if kind == "connection"]
    assert len(connections) == 50_000
    assert [row["pid"] for row in connections] == list(range(1, 50_001))
    assert {row["process_path"] for row in connections} == {f"/opt/p{k}" for k in range(7)}


def test_bad_event_named_by_line(tmp_path: Path) -> None:
    bad = tmp_path / "fdr.ndjson"
    lines = (EDR / "falcon_fdr.ndjson").read_text().splitlines()
    lines[5] = lines[5].replace('"RemoteAddressIP4":"10.0.0.66"', '"RemoteAddressIP4":"10.0.0.666"')
    bad.write_text("\n".join(lines) + "\n")
    line = one_line_error(run_connhunt("score", str(bad)), f"{bad}:6")
    assert "not an IP address" in line


def test_scored_end_to_end() -> None:
    report = score_json(EDR / "falcon_search.csv")
    found = {(f["host"], f["process_identity"], f["remote_ip"], f["remote_port"]): f for f in report["findings"]}
    miner = found[("LNX-DB-2", "/dev/shm/.k/kthreadd", "198.51.100.33", 3333)]
    assert miner["risk"] in ("High", "Critical"), miner


def test_event_search_json_array(tmp_path: Path) -> None:
    """Event Search's JSON export is one array of events: the same rows as the FDR lines."""
    events = [json.loads(line) for line in (EDR / "falcon_fdr.ndjson").read_text().splitlines()]
    array = tmp_path / "search.json"
    array.write_text(json.dumps(events, indent=1))
    name, records = read(array)
    assert name == "falcon"
    assert records == read(EDR / "falcon_fdr.ndjson")[1]
