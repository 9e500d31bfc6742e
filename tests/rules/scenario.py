"""A small fleet as connhunt JSONL: one planted backdoor beaconing to a C2 port, one DNS exfiltration tool, and
benign hosts (one of them reaching the same C2 address on 443 with an ordinary program, one querying the same
registered domain with a browser), scored by the real `connhunt score`; plus the same rows as Sysmon-named events
(the field names the Sigma taxonomy and the sqlite backend use), so converted rules can be run over them."""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import at, connection, run_connhunt, write_jsonl

C2 = "203.0.113.50"
BACKDOOR = "/tmp/.x/updaterd"
BACKDOOR_SHA = "f1ee188b790e43cac8701a497db3c780abc4557ec9c5f55b0d11a49de3958347"
BACKDOOR_CMD = f"{BACKDOOR} --connect {C2}:4444 --interval 5"
EXFIL = "/tmp/dnsx"
EXFIL_DOMAIN = "example.net"
SYSMON_FIXTURE = Path(__file__).resolve().parents[1] / "sources" / "data" / "sysmon_evtx_dump.jsonl"


def records() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(12):  # the backdoor on web1: every 5 s to the C2 port
        rows.append(connection(host="web1", pid=4242, process_name="updaterd", process_path=BACKDOOR,
                               command_line=BACKDOOR_CMD, exe_sha256=BACKDOOR_SHA, remote_ip=C2, remote_port=4444,
                               local_port=42000 + i, first_seen=at(5 * i), last_seen=at(5 * i + 1)))
    for host in ("web1", "web2", "db1", "ws3"):  # every host downloads with curl on 443
        rows.append(connection(host=host, pid=300, process_name="curl", process_path="/usr/bin/curl",
                               command_line="curl -fsS https://updates.example.org/feed", exe_sha256="c" * 64,
                               remote_ip="198.51.100.10", remote_port=443, first_seen=at(7), last_seen=at(8)))
    # db1's package agent talks to the C2 address too, but on 443 and as itself: not the backdoor.
    rows.append(connection(host="db1", pid=301, process_name="pkgagent", process_path="/usr/lib/pkg/pkgagent",
                           command_line="/usr/lib/pkg/pkgagent --sync", exe_sha256="d" * 64, remote_ip=C2,
                           remote_port=443, first_seen=at(9), last_seen=at(10)))
    encoder = random.Random(12)  # seeded: the same base32-looking labels on every run
    for i in range(40):  # the exfiltration tool on ws3: long encoded labels under one domain
        label = "".join(encoder.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(40))
        rows.append({"kind": "dns", "host": "ws3", "source": "agent_local", "pid": 77, "process_name": "dnsx",
                     "process_path": EXFIL, "query": f"{label}.data.{EXFIL_DOMAIN}", "qtype": "TXT",
                     "timestamp": at(i)})
    for host in ("ws3", "web2"):  # a browser asking for the same registered domain's web site
        rows.append({"kind": "dns", "host": host, "source": "agent_local", "pid": 90, "process_name": "firefox",
                     "process_path": "/usr/lib/firefox/firefox", "query": f"www.{EXFIL_DOMAIN}", "qtype": "A",
                     "timestamp": at(3)})
    return rows


@dataclass(frozen=True)
class Scored:
    jsonl: Path
    report: Path
    rows: list[dict[str, Any]]

    def document(self) -> dict[str, Any]:
        return json.loads(self.report.read_text(encoding="utf-8"))


def score(folder: Path, rows: list[dict[str, Any]] | None = None) -> Scored:
    """Run the real `connhunt score --format json` over the rows."""
    rows = records() if rows is None else rows
    jsonl = write_jsonl(folder / "fleet.jsonl", rows)
    result = run_connhunt("score", str(jsonl), "--format", "json", "--min-risk", "low", "--quiet")
    assert result.returncode == 0, result.stderr
    report = folder / "report.json"
    report.write_text(result.stdout, encoding="utf-8")
    return Scored(jsonl, report, rows)


# -- the same rows as events in Sysmon's field names, one table per logsource category ------------------------

def network_events(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"event": i, "Computer": r["host"], "Image": r["process_path"], "User": r.get("username"),
             "SourceIp": r["local_ip"], "SourcePort": r["local_port"], "DestinationIp": r["remote_ip"],
             "DestinationPort": r["remote_port"], "Protocol": r["protocol"], "Initiated": "true",
             "timestamp": r["first_seen"]}
            for i, r in enumerate(rows) if r.get("kind", "connection") == "connection"]


def process_events(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One process-creation event per process the connection rows name (Sysmon's Hashes is KEY=HEX,...)."""
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    for i, r in enumerate(rows):
        if r.get("kind", "connection") == "connection" and (r["host"], r["pid"]) not in seen:
            seen[(r["host"], r["pid"])] = {
                "event": i, "Computer": r["host"], "ProcessId": r["pid"], "Image": r["process_path"],
                "CommandLine": r["command_line"], "Hashes": f"SHA256={r['exe_sha256'].upper()}",
                "timestamp": r["first_seen"]}
    return list(seen.values())


def dns_events(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"event": i, "Computer": r["host"], "Image": r["process_path"], "QueryName": r["query"],
             "timestamp": r["timestamp"]} for i, r in enumerate(rows) if r.get("kind") == "dns"]


def sysmon_fixture_events(event_id: int) -> list[dict[str, Any]]:
    """The EventData of one Event ID from the Sysmon fixture (evtx_dump JSON), booleans as EVTX renders them."""
    events = []
    for number, line in enumerate(SYSMON_FIXTURE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        event = json.loads(line)["Event"]
        if event["System"]["EventID"] != event_id:
            continue
        data = {k: ("true" if v is True else "false" if v is False else v) for k, v in event["EventData"].items()}
        events.append({"event": number, "Computer": event["System"]["Computer"], **data})
    return events


def run_sql(events: list[dict[str, Any]], query: str) -> set[int]:
    """The `event` numbers the query selects from a `logs` table holding the events."""
    columns = sorted({key for event in events for key in event})
    db = sqlite3.connect(":memory:")
    quoted = ", ".join('"' + c + '"' for c in columns)
    db.execute(f"CREATE TABLE logs ({quoted})")
    db.executemany(f"INSERT INTO logs VALUES ({', '.join('?' for _ in columns)})",
                   [tuple(event.get(c) for c in columns) for event in events])
    cursor = db.execute(query)
    names = [d[0] for d in cursor.description]
    return {row[names.index("event")] for row in cursor.fetchall()}
