"""Sysmon 1/3/22 and WFP 5154-5158 read from every shipper's shape into the same whole rows.

The fixtures under data/windows/ hold the events of tests/sources/windows_scenario.py, each in its producer's
documented shape (data/windows/README.md says where); the EVTX case writes the same events into a real .evtx file
(tests/sources/evtx_writer.py), as a ForwardedEvents log holds Sysmon and Security events side by side.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InputError
from orchestrator.sources import read_any, sniff
from orchestrator.sources.windows_events import query_answers, sha256_of
from tests.conftest import run_connhunt
from tests.sources.helpers import DATA, health, one_line_error, read, rows, score_json
from tests.sources.windows_scenario import EVENTS, EXPECTED_HEALTH, HOST, SECURITY, expected_rows, row_order

WINDOWS = DATA / "windows"
FIXTURES = [("nxlog.jsonl", "nxlog"), ("winlogbeat.ndjson", "winlogbeat"), ("splunk_results.json", "splunk"),
            ("splunk_export.csv", "splunk"), ("evtxecmd.json", "sysmon")]


def scenario_evtx(path: Path) -> Path:
    """EVENTS as one .evtx file, each value with the type its manifest gives it."""
    from tests.sources.evtx_writer import BOOL, UINT16, UINT32, UINT64, Typed, windows_event, write_evtx

    sysmon_types = {"ProcessId": UINT32, "SourcePort": UINT16, "DestinationPort": UINT16,
                    "ParentProcessId": UINT32, "TerminalSessionId": UINT32}
    wfp_types = {"ProcessID": UINT64, "ProcessId": UINT64, "Protocol": UINT32, "FilterRTID": UINT64,
                 "LayerRTID": UINT64}

    def typed(event: Any, name: str, value: str) -> Any:
        if event.provider == SECURITY:
            return Typed(wfp_types[name], int(value)) if name in wfp_types else value
        if name in ("Initiated", "SourceIsIpv6", "DestinationIsIpv6"):
            return Typed(BOOL, value == "true")
        return Typed(sysmon_types[name], int(value)) if name in sysmon_types else value

    events = [(e.record_id, e.time, windows_event(e.provider, e.event_id, e.record_id, HOST, e.time,
                                                  [(n, typed(e, n, v)) for n, v in e.data]))
              for e in EVENTS]
    path.write_bytes(write_evtx(events))
    return path


def without_health(records: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(((k, r) for k, r in records if k != "health"), key=row_order)


@pytest.mark.parametrize(("fixture", "source"), FIXTURES)
def test_every_shape_reads_to_the_same_whole_rows(fixture: str, source: str) -> None:
    name, records = read(WINDOWS / fixture)
    assert name == source
    assert without_health(records) == expected_rows()
    assert health(records) == EXPECTED_HEALTH
    # health rows come last, after every row they describe
    assert [k for k, _ in records][-len(EXPECTED_HEALTH):] == ["health"] * len(EXPECTED_HEALTH)


def test_forwarded_events_evtx_reads_to_the_same_whole_rows(tmp_path: Path) -> None:
    name, records = read(scenario_evtx(tmp_path / "ForwardedEvents.evtx"))
    assert name == "evtx"
    assert without_health(records) == expected_rows()
    assert health(records) == EXPECTED_HEALTH


@pytest.mark.parametrize(("fixture", "source"), FIXTURES)
def test_sniffed_by_content_under_any_name(tmp_path: Path, fixture: str, source: str) -> None:
    path = tmp_path / "export.txt"
    shutil.copy(WINDOWS / fixture, path)
    assert sniff(path)[0] == source


def test_forced_format_reads_what_sniffing_would(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    shutil.copy(WINDOWS / "nxlog.jsonl", path)
    name, records = read(path, input_format="nxlog")
    assert name == "nxlog" and without_health(records) == expected_rows()


def test_forced_wrong_format_is_a_located_error(tmp_path: Path) -> None:
    error = one_line_error(run_connhunt("score", "--input-format", "winlogbeat", str(WINDOWS / "nxlog.jsonl")),
                           f"{WINDOWS / 'nxlog.jsonl'}:1: ")
    assert "no 'winlog' object" in error
    with pytest.raises(InputError, match="unknown input format 'pcap'"):
        read_any(WINDOWS / "nxlog.jsonl", input_format="pcap")


def test_score_finds_the_beacon_with_its_process_facts() -> None:
    document = score_json(WINDOWS / "winlogbeat.ndjson")
    found = {(f["remote_ip"], f["remote_port"]): f for f in document["findings"] if f["process_identity"] == (
        "c:\\users\\public\\beacon.exe")}
    # the connection, the blocked attempt (4444) and the ICMP socket, each with what Sysmon 1 said of the process
    assert sorted(found) == [("198.51.100.99", 4444), ("203.0.113.77", 0), ("203.0.113.77", 8443)]
    for finding in found.values():
        assert (finding["host"], finding["pids"], finding["command_line"], finding["parent"]) == (
            HOST, [7312], "C:\\Users\\Public\\beacon.exe -c 203.0.113.77",
            "cmd.exe C:\\Windows\\System32\\cmd.exe (ppid 6100)")
    assert "remote endpoint: 198.51.100.99:4444 over tcp state BLOCKED" in found[("198.51.100.99", 4444)]["evidence"]
    assert document["hunt"]["rows"] == {"connections": 5, "listeners": 1, "dns": 1}
    assert {"host": HOST, "source": "winlogbeat", "check": "wfp_device_path", "count": 1,
            "message": "WFP application paths kept as \\device\\harddiskvolumeN\\... (no Sysmon event for the same "
                       "process named its drive letter)"} in document["health"]


def test_forced_format_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "splunk.out"
    shutil.copy(WINDOWS / "splunk_export.csv", path)
    document = score_json(path, extra=("--input-format", "splunk-csv"))
    assert document["hunt"]["sources"] == [f"splunk:{path}"]
    assert document["hunt"]["rows"] == {"connections": 5, "listeners": 1, "dns": 1}


def test_a_volume_map_names_the_drive_no_sysmon_event_does() -> None:
    from orchestrator.sources.nxlog import read_nxlog

    records = list(read_nxlog(WINDOWS / "nxlog.jsonl", volume_map={"\\Device\\HarddiskVolume4\\": "D:"}))
    (listener,) = [row for kind, row in records if kind == "listener"]
    assert (listener["process_path"], listener["process_identity"]) == ("D:\\tools\\nc.exe", "d:\\tools\\nc.exe")
    assert health(records) == {"wfp_seen_by_sysmon": 1}


def test_wfp_alone_keeps_device_paths_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "security.jsonl"
    path.write_text("".join(line + "\n" for line in (WINDOWS / "nxlog.jsonl").read_text().splitlines()
                            if '"SourceName": "Microsoft-Windows-Security-Auditing"' in line))
    records = read(path)[1]
    paths = sorted({row["process_path"] for kind, row in records if kind in ("connection", "listener")})
    assert paths == ["\\device\\harddiskvolume3\\users\\public\\beacon.exe",
                     "\\device\\harddiskvolume3\\windows\\system32\\svchost.exe",
                     "\\device\\harddiskvolume4\\tools\\nc.exe"]
    # with no Sysmon 3 twin, the permitted beacon connection is a WFP row of its own
    assert health(records) == {"wfp_device_path": 5}
    assert len([1 for kind, _ in records if kind == "connection"]) == 4


def test_two_wfp_events_a_second_apart_are_not_one_sysmon_twin(tmp_path: Path) -> None:
    """Only the Sysmon row's twin within 2 s is dropped; the same 5-tuple 10 s later is another connection."""
    lines = (WINDOWS / "nxlog.jsonl").read_text().splitlines()
    (wfp,) = [line for line in lines if '"RecordNumber": 9001' in line]
    later = wfp.replace("03:00:01", "03:00:11").replace('"RecordNumber": 9001', '"RecordNumber": 9011')
    path = tmp_path / "nxlog.jsonl"
    path.write_text("\n".join([*lines, later]) + "\n")
    records = read(path)[1]
    twins = [row for kind, row in records if kind == "connection" and row["local_port"] == 50100]
    assert [(row["source"], row["first_seen"].second) for row in twins] == [("sysmon", 1), ("wfp", 11)]
    assert health(records)["wfp_seen_by_sysmon"] == 1


@pytest.mark.parametrize("raw", [
    # billion laughs: entity expansion without bound
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    '<Event><System><EventID>&lol2;</EventID></System></Event>',
    # an external entity that a careless parser would read from disk
    '<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]><Event><System><Computer>&x;</Computer></System></Event>',
])
def test_splunk_xml_with_entities_is_refused(tmp_path: Path, raw: str) -> None:
    lines = (WINDOWS / "splunk_results.json").read_text().splitlines()
    bad = json.dumps({"preview": False, "offset": 9, "result": {"_raw": raw, "host": "WS-9"}})
    path = tmp_path / "results.json"
    path.write_text("\n".join([lines[0], bad, *lines[1:]]) + "\n")
    error = one_line_error(run_connhunt("score", str(path)), f"{path}:2: ")
    assert "_raw XML declares a DTD or entities: refused" in error
    skipped: list[str] = []
    records = read(path, skip_bad=True, on_skip=skipped.append)[1]
    assert skipped == [f"{path}:2: _raw XML declares a DTD or entities: refused"]
    assert without_health(records) == expected_rows()


def test_splunk_classic_text_raw_says_to_export_xml(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"preview": False, "result": {"_raw": "11/23/2026 03:00:05 AM\nLogName=Security\n"
                                                                     "EventCode=5156\n", "host": "WS-9"}}) + "\n")
    error = one_line_error(run_connhunt("score", str(path)), f"{path}:1: ")
    assert "export the XmlWinEventLog sourcetype (renderXml=true)" in error


def test_a_file_of_bad_records_only_is_an_error_even_with_skip_bad(tmp_path: Path) -> None:
    path = tmp_path / "nxlog.jsonl"
    path.write_text('{"EventID": 3, "SourceName": "Microsoft-Windows-Sysmon", "Hostname": "h", "Initiated": "x"}\n'
                    '{"EventID": "three", "SourceName": "Microsoft-Windows-Sysmon", "Hostname": "h"}\n')
    error = one_line_error(run_connhunt("score", str(path), "--skip-bad"), f"{path}: ")
    assert "no readable event in the file (2 bad)" in error


def test_bad_csv_row_names_its_line(tmp_path: Path) -> None:
    text = (WINDOWS / "splunk_export.csv").read_text().splitlines()
    path = tmp_path / "export.csv"
    path.write_text("\n".join([text[0], text[1], '"only","three","fields"', *text[2:]]) + "\n")
    error = one_line_error(run_connhunt("score", str(path)), f"{path}:3: ")
    assert "3 fields where the header has 8" in error
    result = run_connhunt("score", str(path), "--skip-bad", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hunt"]["rows"] == {"connections": 5, "listeners": 1, "dns": 1}


@pytest.mark.parametrize(("hashes", "sha256"), [
    ("SHA1=AB,MD5=CD,SHA256=" + "A" * 64 + ",IMPHASH=EF", "a" * 64),
    ("SHA256=" + "b" * 64, "b" * 64),
    ("MD5=CD,IMPHASH=EF", None),
    ("SHA256=not-hex", None),
    ("", None),
])
def test_sha256_from_hashes(hashes: str, sha256: str | None) -> None:
    assert sha256_of(hashes) == sha256


def test_query_answers_still_importable_from_sysmon() -> None:
    from orchestrator.sources.sysmon import query_answers as legacy

    assert legacy is query_answers


def test_sysmon_and_security_logs_as_two_files_count_a_connection_once(tmp_path: Path) -> None:
    lines = (WINDOWS / "nxlog.jsonl").read_text().splitlines()
    security = [line for line in lines if '"SourceName": "Microsoft-Windows-Security-Auditing"' in line]
    sysmon_log = tmp_path / "sysmon.jsonl"
    sysmon_log.write_text("".join(line + "\n" for line in lines if line not in security))
    security_log = tmp_path / "security.jsonl"
    security_log.write_text("".join(line + "\n" for line in security))
    document = score_json(sysmon_log, security_log, extra=("--min-risk", "low"))
    # 2 Sysmon + 4 WFP connections, of which the beacon's 5156 is the Sysmon 3 row's twin
    assert document["hunt"]["rows"] == {"connections": 5, "listeners": 1, "dns": 1}
    assert {"host": HOST, "source": "wfp", "check": "wfp_seen_by_sysmon", "count": 1,
            "message": "WFP connection events also logged by Sysmon Event ID 3 (counted once, as the Sysmon row)"
            } in document["health"]
    beacon = [f for f in document["findings"] if f["remote_port"] == 8443]
    assert [f["process_identity"] for f in beacon] == ["c:\\users\\public\\beacon.exe"]


@pytest.mark.parametrize(("direction", "protocol", "expected"), [
    ("Inbound", "17", ("inbound", "udp", "NONE")),
    ("Outbound", "6", ("outbound", "tcp", "ESTABLISHED")),
    ("%%14592", "58", ("inbound", "raw", "PROTO_58")),
])
def test_wfp_rendered_direction_and_protocol_numbers(tmp_path: Path, direction: str, protocol: str,
                                                     expected: tuple[str, str, str]) -> None:
    (line,) = [line for line in (WINDOWS / "nxlog.jsonl").read_text().splitlines() if '"RecordNumber": 9002' in line]
    event = json.loads(line)
    event.update({"Direction": direction, "Protocol": protocol})
    path = tmp_path / "security.jsonl"
    path.write_text(json.dumps(event) + "\n")
    (row,) = [row for kind, row in read(path)[1] if kind == "connection"]
    assert (row["direction"], row["protocol"], row["state"]) == expected
    assert (row["pid"], row["local_port"], row["remote_ip"], row["remote_port"]) == (1020, 3389, "192.168.56.40",
                                                                                     51515)


def test_wfp_direction_that_is_neither_is_a_located_error(tmp_path: Path) -> None:
    (line,) = [line for line in (WINDOWS / "nxlog.jsonl").read_text().splitlines() if '"RecordNumber": 9002' in line]
    path = tmp_path / "security.jsonl"
    path.write_text(json.dumps({**json.loads(line), "Direction": "%%14599"}) + "\n")
    error = one_line_error(run_connhunt("score", str(path)), f"{path}:1: ")
    assert "field 'Direction' must be %%14592, %%14593, Inbound or Outbound, got '%%14599'" in error


def test_a_real_security_log_starting_with_a_log_cleared_event_is_read() -> None:
    """From a public capture: event 1102 has UserData and no EventData; it is counted, and the 5156 rows read."""
    name, records = read(WINDOWS / "real_security_1102_5156.jsonl")
    connections = rows(records, "connection")
    assert connections and all(r["source"] == "wfp" for r in connections)
    assert connections[0]["process_identity"] == "\\device\\harddiskvolume1\\windows\\system32\\svchost.exe"
    assert (connections[0]["remote_ip"], connections[0]["remote_port"], connections[0]["protocol"]) == (
        "ff02::1:2", 547, "udp")
    assert health(records)["other_security_events"] == 1
