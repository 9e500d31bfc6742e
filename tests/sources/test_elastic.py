"""Elastic Defend documents (scroll API response, Kibana NDJSON with nested or dotted keys) as whole schema rows."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_connhunt
from tests.sources.edr_rows import EDR, connection, dns
from tests.sources.helpers import health, one_line_error, read, rows, score_json, utc

WEB = {"host": "web-3", "host_id": "0b5a3c6e9d2f4e1aa7c8b9d0e1f2a3b4", "source": "elastic", "os": "linux"}
FIREFOX = r"C:\Program Files\Mozilla Firefox\firefox.exe"


def test_scroll_response() -> None:
    name, records = read(EDR / "elastic_scroll.json")
    assert name == "elastic"
    assert rows(records, "connection") == [
        connection(**WEB, pid=2211, ppid=2200, process_name="x", process_path="/tmp/.cache/x",
                   process_identity="/tmp/.cache/x", username="www-data", parent_name="sh",
                   parent_path="/usr/bin/dash", protocol="tcp", local_ip="10.0.2.3", local_port=45002,
                   remote_ip="203.0.113.7", remote_port=31337, state="ESTABLISHED", direction="outbound",
                   first_seen=utc("2026-11-23T01:00:01.25")),
        # accepted: ECS's source is the client, so local and remote swap
        connection(**WEB, pid=901, process_name="sshd", process_path="/usr/sbin/sshd",
                   process_identity="/usr/sbin/sshd", username="root", protocol="tcp", local_ip="10.0.2.3",
                   local_port=22, remote_ip="198.51.100.61", remote_port=60211, state="NONE", direction="inbound",
                   first_seen=utc("2026-11-23T01:00:02")),
    ]
    assert rows(records, "dns") == [
        dns(host="win-9", host_id="c4d5e6f7a8b90a1b2c3d4e5f6a7b8c9d", source="elastic", pid=4400,
            process_name="firefox.exe", process_path=FIREFOX, process_identity=FIREFOX.lower(),
            query="cdn.example.org", qtype="A", answers=["198.51.100.90", "198.51.100.91"],
            timestamp=utc("2026-11-23T01:00:03")),
    ]
    assert health(records) == {"elastic_connection_ends": 1, "elastic_other_events": 1}


def test_kibana_ndjson_dotted_and_nested() -> None:
    name, records = read(EDR / "elastic_kibana.ndjson")
    assert name == "elastic"
    powershell = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
    assert rows(records, "connection") == [
        connection(host="win-9", host_id="c4d5e6f7a8b90a1b2c3d4e5f6a7b8c9d", source="elastic", os="windows",
                   pid=5120, process_name="powershell.exe", process_path=powershell,
                   process_identity=powershell.lower(), command_line="powershell.exe -enc SQBFAFgA",
                   username=r"CORP\carol",
                   exe_sha256="ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12",
                   protocol="tcp", local_ip="10.0.3.9", local_port=50001, remote_ip="10.0.3.50", remote_port=445,
                   state="SYN_SENT", direction="outbound", first_seen=utc("2026-11-23T01:00:05")),
        connection(host="win-9", source="elastic", pid=1500, process_name="svchost.exe",
                   process_path=r"C:\Windows\System32\svchost.exe",
                   process_identity=r"c:\windows\system32\svchost.exe", protocol="udp", local_ip="10.0.3.9",
                   local_port=60000, remote_ip="192.0.2.123", remote_port=123, state="NONE", direction="outbound",
                   first_seen=utc("2026-11-23T01:00:06")),
    ]


def test_document_without_host_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "events.ndjson"
    lines = (EDR / "elastic_kibana.ndjson").read_text().splitlines()
    bad.write_text(lines[0] + "\n" + lines[1].replace('"host":{"name":"win-9"}', '"host":{}') + "\n")
    line = one_line_error(run_connhunt("score", str(bad)), f"{bad}:2")
    assert "no host.name" in line


def test_scored_end_to_end() -> None:
    report = score_json(EDR / "elastic_scroll.json")
    found = {(f["host"], f["process_identity"], f["remote_ip"], f["remote_port"]): f for f in report["findings"]}
    assert found[("web-3", "/tmp/.cache/x", "203.0.113.7", 31337)]["risk"] in ("High", "Critical")


def test_same_documents_as_ndjson_hits_and_array(tmp_path: Path) -> None:
    """One hit per line (elasticdump's form) and a JSON array of _source documents read as the scroll response."""
    expected = read(EDR / "elastic_scroll.json")[1]
    hits = json.loads((EDR / "elastic_scroll.json").read_text())["hits"]["hits"]
    lines = tmp_path / "hits.ndjson"
    lines.write_text("".join(json.dumps(hit) + "\n" for hit in hits))
    array = tmp_path / "docs.json"
    array.write_text(json.dumps([hit["_source"] for hit in hits]))
    for path in (lines, array):
        name, records = read(path)
        assert name == "elastic"
        assert records == expected


def test_first_line_longer_than_a_mebibyte(tmp_path: Path) -> None:
    """A 3 MiB command line in the first document: still one document per line, nothing cut."""
    lines = (EDR / "elastic_kibana.ndjson").read_text().splitlines()
    first = json.loads(lines[0])
    first["process.command_line"] = "powershell.exe -enc " + "A" * (3 << 20)
    path = tmp_path / "long.ndjson"
    path.write_text(json.dumps(first) + "\n" + lines[1] + "\n")
    name, records = read(path)
    assert name == "elastic"
    assert [row["command_line"] for row in rows(records, "connection")] == [first["process.command_line"], None]
