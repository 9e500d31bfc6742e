"""Issue 12's lab acceptance: each High/Critical outbound finding's Sigma network rule, converted by pySigma's sqlite
backend and run over the lab's own connection events (in Sysmon's field names), selects exactly the events of that
process to that destination, and nothing of any benign process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.rules import generator
from orchestrator.rules.convert import Target, convert
from orchestrator.rules.facts import FindingFacts
from tests.rules.scenario import run_sql


def lab_events(agent_files: list[Path]) -> list[dict[str, Any]]:
    """Every connection record the lab's collectors wrote, numbered, as Sysmon network_connection events."""
    rows = [json.loads(line) for path in agent_files for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    return [{"event": i, "Computer": r["host"], "Image": r.get("process_path"), "User": r.get("username"),
             "SourceIp": r.get("local_ip"), "SourcePort": r.get("local_port"), "DestinationIp": r["remote_ip"],
             "DestinationPort": r.get("remote_port"), "Protocol": r["protocol"],
             "Initiated": "false" if r.get("direction") == "inbound" else "true"}
            for i, r in enumerate(rows) if r.get("kind", "connection") == "connection"]


def check_rules_match_lab_events(report: dict[str, Any], agent_files: list[Path], malicious_paths: set[str]) -> int:
    """Assert the acceptance for every High/Critical outbound finding with an address; returns how many checked."""
    events = lab_events(agent_files)
    by_number = {e["event"]: e for e in events}
    checked = 0
    for finding in report["findings"]:
        facts = FindingFacts.from_dict(finding)
        if finding["risk"] not in ("High", "Critical") or facts.direction != "outbound" or not facts.remote_ip:
            continue
        if not facts.remote_port or not finding["process_path"]:
            continue  # a raw socket or an unattributed one: its rule is destination-only, not process-specific
        rule = generator.network_rule(facts)
        assert rule is not None, finding["hunt_id"]
        (query,) = convert([rule], Target.sqlite)
        assert query.error is None, query.error
        selected = run_sql(events, query.query)
        expected = {e["event"] for e in events if e["Image"] == finding["process_path"]
                    and e["DestinationIp"] == facts.remote_ip and e["DestinationPort"] == facts.remote_port
                    and e["Initiated"] == "true"}
        assert selected == expected and expected, (finding["hunt_id"], finding["destination"], query.query)
        assert {by_number[i]["Image"] for i in selected} <= malicious_paths, finding["hunt_id"]
        checked += 1
    return checked
