"""Rules for findings: whole rules compared, pySigma's validators clean, stable ids, --format sigma = generator."""

from __future__ import annotations

import uuid

import yaml

from orchestrator.rules import generator, validate
from orchestrator.rules.facts import FindingFacts
from orchestrator.rules.report_input import load_findings
from tests.conftest import run_connhunt
from tests.rules.scenario import BACKDOOR, BACKDOOR_SHA, C2, EXFIL, EXFIL_DOMAIN, SYSMON_FIXTURE


def _by_process(scored) -> dict[str, FindingFacts]:
    return {f.process_path: f for f in load_findings(scored.report)}


def test_backdoor_rules_are_whole_and_specific(scored) -> None:
    backdoor = _by_process(scored)[BACKDOOR]
    network, process = generator.rules_for(backdoor)
    tags = ["attack.command-and-control", "attack.defense-evasion", "attack.t1071", "attack.t1571", "attack.t1036"]
    common = {"status": "experimental", "author": "connhunt", "date": "2026-11-23", "tags": tags,
              "falsepositives": ["Whatever made the activity legitimate, if the finding was not confirmed"],
              "level": "critical"}
    assert network == {
        "title": f"connhunt {backdoor.hunt_id}: updaterd connecting to {C2}:4444",
        "id": network["id"],
        "description": f"connhunt hunt {backdoor.hunt_id} (T1071, Critical) on web1: {BACKDOOR} connecting to "
                       f"{C2}:4444.",
        **common,
        "logsource": {"category": "network_connection", "product": "linux"},
        "detection": {"selection": {"Image": BACKDOOR, "DestinationIp": C2, "DestinationPort": 4444,
                                    "Initiated": "true"}, "condition": "selection"},
    }
    # the report carries the binary's SHA-256 now, so the process rule matches the binary anywhere too
    detection = {"selection_hash": {"Hashes|contains": f"SHA256={backdoor.exe_sha256.upper()}"},
                 "selection_image": {"Image": BACKDOOR, "CommandLine|contains": f"{C2}:4444"},
                 "condition": "selection_hash or selection_image"}
    assert backdoor.exe_sha256
    assert process == {
        "title": f"connhunt {backdoor.hunt_id}: updaterd starting ({C2}:4444)",
        "id": process["id"],
        "description": f"connhunt hunt {backdoor.hunt_id} (T1071, Critical) on web1: {BACKDOOR} starting "
                       f"({C2}:4444).",
        **common,
        "logsource": {"category": "process_creation", "product": "linux"},
        "detection": detection,
    }
    assert validate.issues([network, process]) == []


def test_hash_makes_the_process_rule_when_the_report_has_it(scored) -> None:
    """exe_sha256 is read with a default: once the report carries it, the rule matches the binary anywhere."""
    finding = next(f for f in scored.document()["findings"] if f["process_path"] == BACKDOOR)
    facts = FindingFacts.from_dict({**finding, "exe_sha256": BACKDOOR_SHA, "sources": ["agent_local"]})
    process = generator.process_rule(facts)
    assert process["detection"] == {
        "selection_hash": {"Hashes|contains": f"SHA256={BACKDOOR_SHA.upper()}"},
        "selection_image": {"Image": BACKDOOR, "CommandLine|contains": f"{C2}:4444"},
        "condition": "selection_hash or selection_image"}
    assert validate.issues([process]) == []


def test_dns_exfil_rule_uses_the_dns_logsource(scored) -> None:
    exfil = _by_process(scored)[EXFIL]
    rules = generator.rules_for(exfil)
    assert [r["logsource"] for r in rules] == [{"category": "dns_query", "product": "linux"}]
    assert rules[0]["detection"] == {"selection": {"Image": EXFIL, "QueryName|endswith": f".{EXFIL_DOMAIN}"},
                                     "condition": "selection"}
    assert rules[0]["tags"] == ["attack.exfiltration", "attack.command-and-control", "attack.t1048.003",
                                "attack.t1071"]
    assert rules[0]["level"] == "high"


def test_windows_finding_from_sysmon_gets_a_windows_logsource(tmp_path) -> None:
    result = run_connhunt("score", str(SYSMON_FIXTURE), "--format", "json", "--quiet")
    assert result.returncode == 0, result.stderr
    (tmp_path / "r.json").write_text(result.stdout)
    (finding,) = load_findings(tmp_path / "r.json")
    (network,) = generator.rules_for(finding)
    assert network["logsource"] == {"category": "network_connection", "product": "windows"}
    assert network["detection"]["selection"] == {"Image": "C:\\Users\\Public\\x.exe", "DestinationIp": "203.0.113.5",
                                                 "DestinationPort": 4444, "Initiated": "true"}
    assert validate.issues([network]) == []


def test_every_rule_of_the_report_is_sigma_check_clean_and_ids_are_stable(scored, tmp_path) -> None:
    rules = generator.rules_for_all(load_findings(scored.report))
    assert len(rules) == 3 and validate.issues(rules) == []
    assert all(uuid.UUID(r["id"]).version == 5 for r in rules)
    again = generator.rules_for_all(load_findings(scored.report))
    assert [r["id"] for r in again] == [r["id"] for r in rules]
    # The id is of the identifying facts: another destination is another rule, the hunt id is not part of it.
    finding = next(f for f in scored.document()["findings"] if f["process_path"] == BACKDOOR)
    other_run = generator.rules_for(FindingFacts.from_dict({**finding, "hunt_id": "TH-OTHER-1"}))
    other_dest = generator.rules_for(FindingFacts.from_dict({**finding, "destination": "192.0.2.9:4444",
                                                             "remote_ip": "192.0.2.9"}))
    assert other_run[0]["id"] == rules[0]["id"] and other_dest[0]["id"] != rules[0]["id"]


def test_validation_can_fail() -> None:
    """The validator set is live: an unknown technique tag and a bad logsource are reported."""
    bad = {"title": "t", "id": "8d7b1a4e-1b1e-4f5e-9d2b-0a6b1c2d3e4f", "status": "experimental",
           "description": "d", "tags": ["attack.t9999"], "logsource": {"category": "network_connection"},
           "detection": {"selection": {"DestinationPort": 1}, "condition": "selection"}, "level": "low"}
    found = validate.issues([bad])
    assert any(line.startswith("InvalidATTACKTagIssue") for line in found)


def test_format_sigma_is_the_generator_and_honours_min_risk(scored) -> None:
    for floor, expected in (("critical", [BACKDOOR]), ("high", [BACKDOOR, EXFIL])):
        result = run_connhunt("score", str(scored.jsonl), "--format", "sigma", "--min-risk", floor, "--quiet")
        assert result.returncode == 0, result.stderr
        rules = list(yaml.safe_load_all(result.stdout))
        findings = [f for f in load_findings(scored.report) if f.process_path in expected]
        assert [r["id"] for r in rules] == [r["id"] for r in generator.rules_for_all(findings)]
        assert validate.issues(rules) == []


def test_listener_finding_matches_the_listening_port(scored) -> None:
    """Findings about a listening port (direction/local_port arrive with the lead's Finding change)."""
    finding = next(f for f in scored.document()["findings"] if f["process_path"] == BACKDOOR)
    facts = FindingFacts.from_dict({**finding, "direction": "listener", "local_port": 31337, "remote_ip": None,
                                    "remote_port": None, "destination": "listening on 0.0.0.0:31337"})
    network = generator.network_rule(facts)
    assert network["title"] == f"connhunt {facts.hunt_id}: updaterd accepting connections on port 31337"
    assert network["detection"] == {"selection": {"Image": BACKDOOR, "Initiated": "false"},
                                    "port_destination": {"DestinationPort": 31337},
                                    "port_source": {"SourcePort": 31337},
                                    "condition": "selection and 1 of port_*"}
    assert validate.issues([network]) == []


def test_unattributed_socket_gets_a_destination_rule_without_an_image(tmp_path) -> None:
    """Without root the owner of a socket may be unknown: the rule matches the destination, never '<unknown>'."""
    from tests.conftest import connection, write_jsonl

    rows = [connection(pid=0, process_name=None, process_path=None, command_line=None, attributed=False,
                       remote_ip="203.0.113.77", remote_port=31337, local_port=43000 + i,
                       first_seen=f"2026-11-23T01:0{i}:00Z", last_seen=f"2026-11-23T01:0{i}:01Z") for i in range(3)]
    result = run_connhunt("score", str(write_jsonl(tmp_path / "u.jsonl", rows)), "--format", "json", "--quiet")
    assert result.returncode == 0, result.stderr
    (tmp_path / "r.json").write_text(result.stdout)
    (finding,) = load_findings(tmp_path / "r.json")
    rules = generator.rules_for(finding)
    assert [r["detection"] for r in rules] == [{"selection": {"DestinationIp": "203.0.113.77", "DestinationPort": 31337,
                                                              "Initiated": "true"}, "condition": "selection"}]
    assert rules[0]["title"] == f"connhunt {finding.hunt_id}: unknown process connecting to 203.0.113.77:31337"
    assert validate.issues(rules) == []
