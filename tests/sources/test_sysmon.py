"""Sysmon Event ID 3 (network) and 22 (DNS) read into whole schema rows from each export shape, and from .evtx.

No Windows here, so the JSON fixtures are written in the shapes the tools write, checked against their real output
on a real Sysmon log (the `evtx` package's records_json(), and Velociraptor 0.77's parse_evtx() and
Windows.EventLogs.EvtxHunter query): ``{"Event": {"System": {..."#attributes"...}, "EventData": ...}}`` (evtx_dump
-o jsonl), ``{"System": {"EventID": {"Value": 3}, "TimeCreated": {"SystemTime": <epoch>}}, "EventData": ...}``
(parse_evtx) and the flattened EvtxHunter row. The .evtx tests write the same events as an EVTX file
(tests/sources/evtx_writer.py) that the `evtx` package parses to exactly the JSON it gives for a real Sysmon log;
CONNHUNT_SYSMON_EVTX runs one more test on a real log.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.sources.sysmon import EVTX_MAGIC, query_answers
from tests.conftest import run_connhunt
from tests.sources.helpers import DATA, health, one_line_error, read, rows, score_json, utc

FIXTURES = ["sysmon_evtx_dump.jsonl", "sysmon_parse_evtx.jsonl", "sysmon_evtxhunter.jsonl"]
# EvtxHunter keeps the record time to the second only; the other shapes keep System.TimeCreated in full.
LOGGED = {"sysmon_evtx_dump.jsonl": ".125", "sysmon_parse_evtx.jsonl": ".125", "sysmon_evtxhunter.jsonl": ""}


def planted(fixture: str) -> dict:
    return {
        "host": "WS-7.corp.example", "host_id": "WS-7.corp.example", "os": "windows",
        "collected_at": utc(f"2026-11-23T01:00:05{LOGGED[fixture]}"), "source": "sysmon", "pid": 5120, "ppid": None,
        "process_name": "x.exe", "process_path": "C:\\Users\\Public\\x.exe",
        "process_identity": "c:\\users\\public\\x.exe",
        "command_line": None, "username": "CORP\\bob", "process_start": None, "parent_name": None, "parent_path": None,
        "exe_sha256": None, "protocol": "tcp", "family": "ipv4", "local_ip": "192.168.56.10", "local_port": 49712,
        "remote_ip": "203.0.113.5", "remote_port": 4444, "state": "ESTABLISHED",
        # UtcTime is when Sysmon saw the connection, to the millisecond
        "first_seen": utc("2026-11-23T01:00:05.123"), "last_seen": utc("2026-11-23T01:00:05.123"),
        "observations": 1, "remote_hostname": None, "attributed": True,
        "direction": "outbound", "seen_by": "event", "attribution": "pid", "stdio": None,
    }


def lookup(fixture: str) -> dict:
    return {
        "host": "WS-7.corp.example", "host_id": "WS-7.corp.example",
        "collected_at": utc(f"2026-11-23T01:00:04{'.9' if LOGGED[fixture] else ''}"), "source": "sysmon",
        "pid": 5120, "process_name": "x.exe", "process_path": "C:\\Users\\Public\\x.exe",
        "process_identity": "c:\\users\\public\\x.exe", "query": "update.bad.example", "qtype": None,
        # "type:  5 cdn.bad.example" is the CNAME: dropped; ::ffff:203.0.113.5 is the address
        "answers": ["203.0.113.5"], "response_code": "NOERROR", "server_ip": None,
        "timestamp": utc("2026-11-23T01:00:04.870"),
    }


@pytest.mark.parametrize("fixture", FIXTURES)
def test_each_export_shape_reads_to_the_same_rows(fixture: str) -> None:
    name, records = read(DATA / fixture)
    assert name == "sysmon"
    connections = rows(records, "connection")
    assert connections[0] == planted(fixture)
    assert [(c["process_name"], c["remote_ip"], c["remote_port"], c["remote_hostname"], c["direction"])
            for c in connections] == [
        ("x.exe", "203.0.113.5", 4444, None, "outbound"),
        ("firefox.exe", "198.51.100.10", 443, "www.example.org", "outbound"),
        ("System", "192.168.56.20", 50123, None, "inbound")]
    # Initiated=false: Sysmon's Source* is the client that reached this host's SMB service on Destination*
    assert connections[2] == {
        **planted(fixture), "collected_at": utc(f"2026-11-23T01:00:07{'.5' if LOGGED[fixture] else ''}"),
        "pid": 4, "process_name": "System", "process_path": "System", "process_identity": "system",
        "username": "NT AUTHORITY\\SYSTEM", "local_ip": "192.168.56.10", "local_port": 445,
        "remote_ip": "192.168.56.20", "remote_port": 50123, "first_seen": utc("2026-11-23T01:00:07.480"),
        "last_seen": utc("2026-11-23T01:00:07.480"), "direction": "inbound"}
    lookups = rows(records, "dns")
    assert lookups[0] == lookup(fixture)
    assert (lookups[1]["query"], lookups[1]["answers"], lookups[1]["response_code"]) == (
        "nope.example.org", [], "NXDOMAIN")
    # the process-creation event (whoami, a process with no network event) fills nothing and is not a row
    assert health(records) == {}


@pytest.mark.parametrize("fixture", FIXTURES)
def test_score_finds_the_planted_connection(fixture: str) -> None:
    document = score_json(DATA / fixture)
    top = document["findings"][0]
    assert (top["host"], top["process_identity"], top["remote_ip"], top["remote_port"], top["pids"]) == (
        "WS-7.corp.example", "c:\\users\\public\\x.exe", "203.0.113.5", 4444, [5120])
    assert document["hunt"]["rows"] == {"connections": 3, "listeners": 0, "dns": 2}
    # the inbound SMB connection is a fact about this host's service, never a destination
    assert all(finding["remote_port"] != 50123 for finding in document["findings"])


def test_records_json_items_saved_as_lines(tmp_path: Path) -> None:
    """PyEvtxParser.records_json() items ({event_record_id, timestamp, data: "<json>"}) written one per line."""
    import json

    lines = (DATA / "sysmon_evtx_dump.jsonl").read_text().splitlines()
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps({"event_record_id": 1201 + i, "timestamp": "2026-11-23 01:00:05.125 UTC",
                                        "data": line}) + "\n" for i, line in enumerate(lines)))
    name, records = read(path)
    assert name == "sysmon"
    assert rows(records, "connection")[0] == planted("sysmon_evtx_dump.jsonl")


@pytest.mark.parametrize(("text", "answers"), [
    ("type:  5 cdn.example.net;::ffff:192.0.2.7;", ["192.0.2.7"]),
    ("::ffff:192.0.2.7;::ffff:192.0.2.8;2001:db8::1;", ["192.0.2.7", "192.0.2.8", "2001:db8::1"]),
    ("type:  5 a.example;type:  5 b.example;", []),
    ("", []),
    ("type:  33 srv.example;not-an-ip;", []),
])
def test_query_results(text: str, answers: list[str]) -> None:
    assert query_answers(text) == answers


def test_bad_event_names_file_and_line(tmp_path: Path) -> None:
    lines = (DATA / "sysmon_parse_evtx.jsonl").read_text().splitlines()
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([lines[0], lines[1].replace('"Initiated":true', '"Initiated":"maybe"'), *lines[2:]]))
    error = one_line_error(run_connhunt("score", str(path)), f"{path}:2: ")
    assert "field 'Initiated' must be true or false, got 'maybe'" in error
    result = run_connhunt("score", str(path), "--skip-bad", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "skipped 1 bad line(s)" in result.stderr


@pytest.mark.parametrize(("content", "reason"), [
    (EVTX_MAGIC + os.urandom(3000), "EVTX"),
    (EVTX_MAGIC, "EVTX"),
    (EVTX_MAGIC + b"\x00" * 4088, "EVTX"),
])
def test_evtx_garbage_is_a_one_line_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "Microsoft-Windows-Sysmon%4Operational.evtx"
    path.write_bytes(content)
    error = one_line_error(run_connhunt("score", str(path)), f"{path}: ")
    assert reason in error


def test_not_evtx_despite_the_name(tmp_path: Path) -> None:
    path = tmp_path / "Sysmon.evtx"
    path.write_bytes(os.urandom(2000).replace(b"\n", b" "))
    one_line_error(run_connhunt("score", str(path)), f"{path}:1: ")


@pytest.mark.skipif(not os.environ.get("CONNHUNT_SYSMON_EVTX"), reason="set CONNHUNT_SYSMON_EVTX to a real Sysmon "
                    ".evtx (e.g. samples/sysmon.evtx of the evtx crate's repository) to test the EVTX path on one")
def test_real_sysmon_evtx() -> None:
    path = Path(os.environ["CONNHUNT_SYSMON_EVTX"])
    skipped: list[str] = []
    name, records = read(path, skip_bad=True, on_skip=skipped.append)
    assert name == "evtx"
    connections = rows(records, "connection")
    assert connections, "no Sysmon Event ID 3 in this log"
    for row in connections:
        assert row["os"] == "windows" and row["source"] == "sysmon" and row["remote_ip"] and row["host"]
        assert row["process_identity"] == (row["process_path"] or "").lower() or row["process_path"] is None
    assert all(message.startswith(f"{path}") for message in skipped)


# --- .evtx files written by tests/sources/evtx_writer.py, read by the `evtx` package as connhunt reads any log ----


def evtx_from_fixture(path: Path) -> bytes:
    """The events of a JSON fixture as an EVTX file, each value with the type Sysmon's manifest gives it."""
    import json

    from tests.sources.evtx_writer import BOOL, UINT16, UINT32, Typed, sysmon_event, write_evtx

    types = {"ProcessId": UINT32, "SourcePort": UINT16, "DestinationPort": UINT16}
    events = []
    for line in path.read_text().splitlines():
        event = json.loads(line)["Event"]
        system = event["System"]
        logged = utc(system["TimeCreated"]["#attributes"]["SystemTime"].removesuffix("Z"))
        data = [(name, Typed(BOOL, value) if isinstance(value, bool)
                 else Typed(types[name], value) if name in types else value)
                for name, value in event["EventData"].items()]
        record_id = system["EventRecordID"]
        events.append((record_id, logged, sysmon_event(system["EventID"], record_id, system["Computer"], logged,
                                                       data)))
    return write_evtx(events)


@pytest.fixture
def sysmon_evtx(tmp_path: Path) -> Path:
    path = tmp_path / "Microsoft-Windows-Sysmon%4Operational.evtx"
    path.write_bytes(evtx_from_fixture(DATA / "sysmon_evtx_dump.jsonl"))
    return path


def test_evtx_file_reads_to_the_same_rows_as_its_json_export(sysmon_evtx: Path) -> None:
    name, records = read(sysmon_evtx)
    assert name == "evtx"
    assert records == read(DATA / "sysmon_evtx_dump.jsonl")[1]
    assert rows(records, "connection")[0] == planted("sysmon_evtx_dump.jsonl")


def test_score_evtx_finds_the_planted_connection(sysmon_evtx: Path) -> None:
    document = score_json(sysmon_evtx)
    top = document["findings"][0]
    assert (top["host"], top["process_identity"], top["remote_ip"], top["remote_port"]) == (
        "WS-7.corp.example", "c:\\users\\public\\x.exe", "203.0.113.5", 4444)
    assert document["hunt"]["sources"] == [f"evtx:{sysmon_evtx}"]


def test_cut_evtx_is_an_error_that_says_events_are_lost(sysmon_evtx: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(sysmon_evtx.read_bytes()[: 4096 + 30000])
    error = one_line_error(run_connhunt("score", str(cut)), f"{cut}: ")
    assert "EVTX file is truncated: it ends inside chunk 1" in error


def test_damaged_evtx_record_names_the_file(sysmon_evtx: Path, tmp_path: Path) -> None:
    data = bytearray(sysmon_evtx.read_bytes())
    second = data.index(b"\x2a\x2a\x00\x00", 4096 + 512 + 8)  # the second record
    data[second + 40: second + 60] = b"\xff" * 20  # inside its template instance
    damaged = tmp_path / "damaged.evtx"
    damaged.write_bytes(bytes(data))
    result = run_connhunt("score", str(damaged))
    one_line_error(result, f"{damaged}")
    result = run_connhunt("score", str(damaged), "--skip-bad", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr
