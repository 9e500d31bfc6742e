"""Fleet live-query results (fleetctl query JSON lines, REST API response) as schema rows and per-host health."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.conftest import run_connhunt
from tests.sources.edr_rows import EDR, connection
from tests.sources.helpers import one_line_error, read, rows, utc

SAVED = utc("2026-11-23T01:05:00")  # neither form carries a time: the file's modification time stands for it


def _copy(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    shutil.copy(EDR / name, path)
    os.utime(path, (SAVED.timestamp(), SAVED.timestamp()))
    return path


def test_fleetctl_query(tmp_path: Path) -> None:
    name, records = read(_copy(tmp_path, "fleetctl_query.jsonl"))
    assert name == "fleet"
    assert rows(records, "connection") == [
        connection(host="mac-11", source="fleet", pid=991, ppid=1, process_name="agent",
                   process_path="/Users/dave/Library/.u/agent", process_identity="/Users/dave/Library/.u/agent",
                   command_line="/Users/dave/Library/.u/agent -b", username="dave", protocol="tcp",
                   local_ip="10.0.7.11", local_port=50600, remote_ip="203.0.113.31", remote_port=8080,
                   state="ESTABLISHED", direction="unknown", seen_by="snapshot", first_seen=SAVED),
    ]
    assert [(r["host"], r["check"], r["message"]) for k, r in records if k == "health"] == [
        ("mac-12", "collection_error", "mac-12: the live query failed: no such table: process_open_sockets_x"),
        ("mac-13", "not_connected", "listening or unconnected sockets not read (no remote end)"),
    ]


def test_live_query_api(tmp_path: Path) -> None:
    name, records = read(_copy(tmp_path, "fleet_live_query.json"))
    assert name == "fleet"
    assert rows(records, "connection") == [
        connection(host="fleet-host-41", source="fleet", pid=3131, process_name="python3",
                   process_path="/usr/bin/python3.11", process_identity="/usr/bin/python3.11", protocol="tcp",
                   local_ip="10.0.8.41", local_port=51000, remote_ip="198.51.100.140", remote_port=4444,
                   state="ESTABLISHED", direction="unknown", seen_by="snapshot", first_seen=SAVED),
    ]
    assert [(r["host"], r["check"], r["count"], r["message"]) for k, r in records if k == "health"] == [
        ("", "collection_error", 1, "1 of 3 targeted hosts did not respond to the live query"),
        ("fleet-host-42", "collection_error", 1, "fleet-host-42: the live query failed: query timed out"),
    ]


def test_rows_not_a_list_named(tmp_path: Path) -> None:
    bad = tmp_path / "fleet.jsonl"
    bad.write_text('{"host":"mac-1","rows":[]}\n{"host":"mac-2","rows":{"a":"b"}}\n')
    line = one_line_error(run_connhunt("score", str(bad)), f"{bad}:2")
    assert "'rows' must be a list" in line
