"""osquery results (event, batch and snapshot log formats, and `osqueryi --json`) read into whole schema rows.

osquery cannot be installed here, so the fixtures in data/ are written in the formats osquery's own code writes
(osquery/core/query.cpp: legacy fields name, hostIdentifier, calendarTime, unixTime, epoch, counter, numerics,
decorations; osquery/devtools/printer.cpp jsonPrint: "[", one compact row per line, "]"; every value a string unless
--logger_numerics). Each test reads them as `connhunt score` does.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from orchestrator.sources.base import json_array_items
from tests.conftest import run_connhunt
from tests.sources.helpers import DATA, health, one_line_error, read, rows, score_json, utc

# The planted row: connhunt's pack columns (all strings in the log) as one normalised schema row.
KWORKERD = {
    "host": "web-1", "host_id": "4c4c4544-0042-3510-8054-b4c04f4d3232", "os": "linux",
    "collected_at": utc("2026-11-23T01:00:00"), "source": "osquery", "pid": 4242, "ppid": 1,
    "process_name": "kworkerd", "process_path": "/tmp/.x/kworkerd", "process_identity": "/tmp/.x/kworkerd",
    "command_line": "/tmp/.x/kworkerd -c 203.0.113.5", "username": "www-data",
    "process_start": utc("2026-11-23T00:50:00"), "parent_name": "systemd", "parent_path": "/usr/lib/systemd/systemd",
    "exe_sha256": None, "protocol": "tcp", "family": "ipv4", "local_ip": "10.0.0.5", "local_port": 41000,
    "remote_ip": "203.0.113.5", "remote_port": 4444, "state": "ESTABLISHED", "first_seen": utc("2026-11-23T01:00:00"),
    "last_seen": utc("2026-11-23T01:00:00"), "observations": 1, "remote_hostname": None, "attributed": True,
        "direction": "unknown", "seen_by": "snapshot", "attribution": "pid", "stdio": None,
}
# A hand-written query's row: process_open_sockets joined to processes and users, in osquery's own column names.
CURL = {
    "host": "web-1", "host_id": "4c4c4544-0042-3510-8054-b4c04f4d3232", "os": None,
    "collected_at": utc("2026-11-23T01:00:00"), "source": "osquery", "pid": 913, "ppid": 880,
    "process_name": "curl", "process_path": "/usr/bin/curl", "process_identity": "/usr/bin/curl",
    "command_line": "curl https://example.org/", "username": "alice", "process_start": utc("2026-11-23T00:59:30"),
    "parent_name": None, "parent_path": None,
    "exe_sha256": "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "protocol": "tcp", "family": "ipv4", "local_ip": "10.0.0.5", "local_port": 52814, "remote_ip": "198.51.100.10",
    "remote_port": 443, "state": "ESTABLISHED", "first_seen": utc("2026-11-23T01:00:00"),
    "last_seen": utc("2026-11-23T01:00:00"), "observations": 1, "remote_hostname": None, "attributed": True,
        "direction": "unknown", "seen_by": "snapshot", "attribution": "pid", "stdio": None,
}


def test_event_format() -> None:
    name, records = read(DATA / "osquery_event.log")
    assert name == "osquery"
    unknown_owner = {**CURL, "pid": 0, "ppid": None, "process_name": None, "process_path": None,
                     "process_identity": "<unknown>", "command_line": None, "username": None, "process_start": None,
                     "exe_sha256": None, "local_port": 52900, "remote_ip": "198.51.100.11", "state": "TIME_WAIT",
                     "attributed": False, "attribution": None}
    assert rows(records, "connection") == [KWORKERD, CURL, unknown_owner]
    # what was not read is said, not hidden: a listening socket, an AF_UNIX socket, a removed row, another query
    assert health(records) == {"not_connected": 1, "not_inet": 1, "osquery_removed": 1, "unknown_query": 1}


def test_batch_format_as_older_osquery_wrote_it() -> None:
    name, records = read(DATA / "osquery_batch.log")
    assert name == "osquery"
    # no decorations in this line, so the raw row's host_id falls back to the hostIdentifier
    assert rows(records, "connection") == [KWORKERD, {**CURL, "host_id": "web-1"}]
    assert health(records) == {"osquery_removed": 1}


def test_snapshot_format_with_numerics() -> None:
    name, records = read(DATA / "osquery_snapshot.log")
    assert name == "osquery"
    assert rows(records, "connection") == [CURL, KWORKERD]
    assert health(records) == {}


def test_osqueryi_json_array_names_host_after_file(tmp_path: Path) -> None:
    name, records = read(DATA / "osqueryi_ws-7.json")
    assert name == "osquery"
    x = rows(records, "connection")[0]
    assert {k: x[k] for k in ("host", "os", "pid", "process_path", "process_identity", "family", "remote_ip",
                              "remote_port", "username", "attributed")} == {
        "host": "osqueryi_ws-7", "os": "windows", "pid": 5120, "process_path": "C:\\Users\\Public\\x.exe",
        "process_identity": "c:\\users\\public\\x.exe", "family": "ipv4", "remote_ip": "203.0.113.5",
        "remote_port": 4444, "username": "CORP\\bob", "attributed": True}
    assert rows(records, "connection")[1]["family"] == "ipv6"  # AF_INET6 is 23 on Windows
    assert health(records) == {"host_from_file_name": 2}


@pytest.mark.parametrize("fixture", ["osquery_event.log", "osquery_batch.log", "osquery_snapshot.log"])
def test_score_finds_the_planted_connection(fixture: str) -> None:
    document = score_json(DATA / fixture)
    top = document["findings"][0]
    assert (top["host"], top["process_path"], top["remote_ip"], top["remote_port"], top["pids"]) == (
        "web-1", "/tmp/.x/kworkerd", "203.0.113.5", 4444, [4242])
    assert document["hunt"]["sources"] == [f"osquery:{DATA / fixture}"]


def test_score_osqueryi_json() -> None:
    document = score_json(DATA / "osqueryi_ws-7.json")
    top = document["findings"][0]
    assert (top["host"], top["process_identity"], top["remote_ip"], top["remote_port"]) == (
        "osqueryi_ws-7", "c:\\users\\public\\x.exe", "203.0.113.5", 4444)
    assert {"host": "osqueryi_ws-7", "source": "osquery", "check": "host_from_file_name", "count": 2,
            "message": "rows name no host: host 'osqueryi_ws-7' is the file name"} in document["health"]


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    lines = (DATA / "osquery_event.log").read_text().splitlines()
    path = tmp_path / "osqueryd.results.log"
    path.write_text("\n".join([*lines[:2], lines[2][:80], *lines[3:]]) + "\n")
    error = one_line_error(run_connhunt("score", str(path)), f"{path}:3: ")
    assert "malformed JSON" in error
    # --skip-bad reads the rest and says what it skipped
    result = run_connhunt("score", str(path), "--skip-bad", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "skipped 1 bad line(s)" in result.stderr
    assert json.loads(result.stdout)["hunt"]["rows"]["connections"] == 2


@pytest.mark.parametrize(("change", "reason"), [
    ({"columns": {"remote_address": "203.0.113.5", "remote_port": "http", "family": "2", "protocol": "6"}},
     "query 'pack_ir_sockets': field 'remote_port' must be an integer, got 'http'"),
    ({"columns": {"remote_address": "not-an-ip", "remote_port": "80", "family": "2", "protocol": "6"}},
     "query 'pack_ir_sockets': not an IP address: 'not-an-ip'"),
    ({"action": "changed"}, "unknown action 'changed'"),
    ({"diffResults": {"added": {"pid": "1"}}}, "'added' must be a list of rows"),
])
def test_bad_row_names_file_line_and_field(tmp_path: Path, change: dict, reason: str) -> None:
    line = json.loads((DATA / "osquery_event.log").read_text().splitlines()[1])
    line.update(change)
    if "diffResults" in change:
        del line["columns"], line["action"]
    path = tmp_path / "results.log"
    path.write_text((DATA / "osquery_event.log").read_text().splitlines()[0] + "\n" + json.dumps(line) + "\n")
    error = one_line_error(run_connhunt("score", str(path)), f"{path}:2: ")
    assert reason in error


def test_truncated_osqueryi_array(tmp_path: Path) -> None:
    text = (DATA / "osqueryi_ws-7.json").read_text()
    path = tmp_path / "ws-8.json"
    path.write_text(text[: len(text) // 2])
    error = one_line_error(run_connhunt("score", str(path)), f"{path}:")
    assert "malformed JSON" in error or "ends early" in error


def test_the_extension_does_not_decide(tmp_path: Path) -> None:
    path = tmp_path / "collected.jsonl"
    shutil.copy(DATA / "osquery_event.log", path)
    assert read(path)[0] == "osquery"


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64, 1 << 16])
def test_json_array_items_streams_across_chunk_boundaries(chunk_size: int) -> None:
    text = '[\n  {"a":"1","b":"x,]\\""},\n  {"a":"22"},\n  12345,\n  [1, 2]\n]\n'
    items = list(json_array_items(io.BytesIO(text.encode()), chunk_size=chunk_size))
    assert items == [(2, {"a": "1", "b": 'x,]"'}), (3, {"a": "22"}), (4, 12345), (5, [1, 2])]


def test_json_array_items_empty_and_pretty() -> None:
    assert list(json_array_items(io.BytesIO(b"[\n\n]\n"))) == []
    pretty = json.dumps([{"pid": "1"}, {"pid": "2"}], indent=2).encode()  # osqueryi --json_pretty
    assert [item for _, item in json_array_items(io.BytesIO(pretty), chunk_size=5)] == [{"pid": "1"}, {"pid": "2"}]


def test_pack_dns_lookups(tmp_path: Path) -> None:
    """connhunt_dns_lookups_windows rows: dns_lookup_events.response is QueryResults text, read to addresses."""
    line = {"name": "pack_connhunt_connhunt_dns_lookups_windows", "hostIdentifier": "WS-7", "calendarTime": "x",
            "unixTime": 1795395600, "epoch": 0, "counter": 3, "numerics": False,
            "columns": {"host": "WS-7", "host_id": "uuid-7", "collected_at": "1795395600", "source": "osquery",
                        "pid": "5120", "process_path": "C:\\Users\\Public\\x.exe", "query": "Update.Bad.Example.",
                        "qtype": "A", "answers": "type:  5 cdn.bad.example;::ffff:203.0.113.5;",
                        "response_code": "0", "timestamp": "1795395599"},
            "action": "added"}
    path = tmp_path / "osqueryd.results.log"
    path.write_text(json.dumps(line) + "\n")
    name, records = read(path)
    assert rows(records, "dns") == [{
        "host": "WS-7", "host_id": "uuid-7", "collected_at": utc("2026-11-23T01:00:00"), "source": "osquery",
        "pid": 5120, "process_name": None, "process_path": "C:\\Users\\Public\\x.exe",
        "process_identity": "c:\\users\\public\\x.exe", "query": "update.bad.example", "qtype": "A",
        "answers": ["203.0.113.5"], "response_code": "0", "server_ip": None, "timestamp": utc("2026-11-23T00:59:59")}]
