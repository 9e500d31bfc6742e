"""Microsoft Defender for Endpoint advanced-hunting exports (portal CSV, API JSON) read into whole schema rows."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from tests.conftest import run_connhunt
from tests.sources.edr_rows import EDR, connection, dns, listener
from tests.sources.helpers import health, one_line_error, read, rows, score_json, utc

HOST = "ws-7.corp.example"
DEVICE = "8d4ae3f0c2b5a6e1f7d9c0b3a2e4f6d8c1b3a5e7"
RUNDLL = {"host": HOST, "host_id": DEVICE, "source": "mde", "os": "windows", "pid": 6120, "ppid": 4404,
          "process_name": "rundll32.exe", "process_path": r"c:\users\alice\appdata\local\temp\rundll32.exe",
          "process_identity": r"c:\users\alice\appdata\local\temp\rundll32.exe",
          "command_line": r"rundll32.exe C:\Users\alice\AppData\Local\Temp\x.dll,Start", "username": r"corp\alice",
          "process_start": utc("2026-11-23T00:59:50"), "parent_name": "explorer.exe",
          "exe_sha256": "3f7a9e0c1b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a"}
SVCHOST = {"host": HOST, "host_id": DEVICE, "source": "mde", "os": "windows", "ppid": 700,
           "process_name": "svchost.exe", "process_path": r"c:\windows\system32\svchost.exe",
           "process_identity": r"c:\windows\system32\svchost.exe", "username": r"nt authority\network service",
           "process_start": utc("2026-11-22T08:00:00"), "parent_name": "services.exe"}
EDGE = r"c:\program files (x86)\microsoft\edge\application\msedge.exe"


def test_network_events_csv() -> None:
    name, records = read(EDR / "mde_network.csv")
    assert name == "mde"
    assert rows(records, "connection") == [
        connection(**RUNDLL, protocol="tcp", local_ip="10.0.0.7", local_port=49721, remote_ip="203.0.113.5",
                   remote_port=4444, state="ESTABLISHED", direction="outbound",
                   first_seen=utc("2026-11-23T01:00:01.5")),
        # a failed attempt never completed its handshake: half-open, for the scan detector
        connection(**RUNDLL, protocol="tcp", local_ip="10.0.0.7", local_port=49722, remote_ip="10.0.0.9",
                   remote_port=445, state="SYN_SENT", direction="outbound", first_seen=utc("2026-11-23T01:00:02")),
        connection(**SVCHOST, pid=1048, command_line="svchost.exe -k termsvcs -s TermService", protocol="tcp",
                   local_ip="10.0.0.7", local_port=3389, remote_ip="198.51.100.20", remote_port=50123,
                   state="ESTABLISHED", direction="inbound", first_seen=utc("2026-11-23T01:00:03")),
        connection(host=HOST, host_id=DEVICE, source="mde", os="windows", pid=5500, ppid=5400,
                   process_name="msedge.exe", process_path=EDGE, process_identity=EDGE,
                   command_line='"msedge.exe" --type=utility', username=r"corp\alice",
                   process_start=utc("2026-11-23T00:30:00"), parent_name="msedge.exe", protocol="tcp",
                   local_ip="10.0.0.7", local_port=49730, remote_ip="198.51.100.44", remote_port=443,
                   state="ESTABLISHED", direction="outbound", remote_hostname="cdn.example.net",
                   first_seen=utc("2026-11-23T01:00:05")),
        connection(**SVCHOST, pid=1500, command_line="svchost.exe -k NetworkService -p -s Dnscache", protocol="udp",
                   local_ip="10.0.0.7", local_port=53001, remote_ip="192.0.2.53", remote_port=53, state="NONE",
                   direction="outbound", first_seen=utc("2026-11-23T01:00:06")),
    ]
    # the folder path holds no file name here: the reader joins it
    powershell = r"c:\windows\system32\windowspowershell\v1.0\powershell.exe"
    assert rows(records, "listener") == [
        listener(host=HOST, host_id=DEVICE, source="mde", os="windows", pid=7010, ppid=4404,
                 process_name="powershell.exe", process_path=powershell, process_identity=powershell,
                 command_line="powershell.exe -nop -w hidden -c listener.ps1", username=r"corp\alice",
                 process_start=utc("2026-11-23T00:59:00"), parent_name="explorer.exe", protocol="tcp",
                 local_ip="0.0.0.0", local_port=8080, first_seen=utc("2026-11-23T01:00:04")),
    ]
    assert health(records) == {"mde_other_actions": 1}


def test_dns_from_api_response() -> None:
    name, records = read(EDR / "mde_api.json")
    assert name == "mde"
    assert rows(records, "dns") == [
        dns(host=HOST, host_id=DEVICE, source="mde", pid=6120, process_name="rundll32.exe",
            process_path=RUNDLL["process_path"], process_identity=RUNDLL["process_identity"],
            query="c2.example.org", qtype="A", answers=["203.0.113.5"], timestamp=utc("2026-11-23T01:00:10")),
    ]
    assert health(records) == {"mde_other_actions": 1}


def test_bad_row_named_by_line(tmp_path: Path) -> None:
    bad = tmp_path / "export.csv"
    lines = (EDR / "mde_network.csv").read_text().splitlines()
    lines[2] = lines[2].replace(",445,", ",99999,")
    bad.write_text("\n".join(lines) + "\n")
    one_line_error(run_connhunt("score", str(bad)), f"{bad}:3")
    report = score_json(bad, extra=("--skip-bad",))
    # the other rows are kept: four connections (the listener is its own table), the bad one named in a note
    assert report["hunt"]["rows"] == {"connections": 4, "listeners": 1, "dns": 0}
    assert report["hunt"]["notes"] == [f"skipped 1 bad line(s); first: {bad}:3: field 'remote_port' out of range: "
                                       "99999"]


def test_scored_end_to_end() -> None:
    """The rundll32 from a temp folder calling 203.0.113.5:4444 is a finding, with the process Defender named."""
    report = score_json(EDR / "mde_network.csv", EDR / "mde_api.json")
    found = {(f["host"], f["process_identity"], f["remote_ip"], f["remote_port"]): f["risk"]
             for f in report["findings"]}
    assert found[(HOST, RUNDLL["process_identity"], "203.0.113.5", 4444)] in ("High", "Critical")
    # inbound RDP is a fact about the local service, never a destination
    assert not any(f["remote_ip"] == "198.51.100.20" for f in report["findings"])


def test_header_only_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    shutil.copy(EDR / "mde_network.csv", empty)
    empty.write_text(empty.read_text().splitlines()[0] + "\n")
    line = one_line_error(run_connhunt("score", str(empty)), str(empty))
    assert "no valid record" in line


def _csv_rows() -> list[dict[str, str]]:
    with (EDR / "mde_network.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_same_rows_from_json_array_and_streaming_api(tmp_path: Path) -> None:
    """The JSON containers hold the same rows as the CSV: a JSON array of rows, and the streaming API's Event Hub
    batches ({"records": [{"category": "AdvancedHunting-DeviceNetworkEvents", "properties": row}]}, one per line)."""
    expected = read(EDR / "mde_network.csv")[1]
    array = tmp_path / "rows.json"
    array.write_text(json.dumps(_csv_rows(), indent=2))
    stream = tmp_path / "eventhub.json"
    batches = [{"records": [{"time": r["Timestamp"], "tenantId": "0c1d2e3f-0000-4000-8000-000000000001",
                             "operationName": "Publish", "category": "AdvancedHunting-DeviceNetworkEvents",
                             "properties": r} for r in part]} for part in (_csv_rows()[:3], _csv_rows()[3:])]
    stream.write_text("".join(json.dumps(batch) + "\n" for batch in batches))
    for path in (array, stream):
        name, records = read(path)
        assert name == "mde"
        assert records == expected
