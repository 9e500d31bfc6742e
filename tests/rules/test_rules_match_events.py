"""Acceptance: each finding's rules, converted by the sqlite backend and run over the events the fleet produced
(in Sysmon's field names), select exactly the events the finding came from and nothing of the benign hosts."""

from __future__ import annotations

from orchestrator.rules import generator
from orchestrator.rules.convert import Target, convert
from orchestrator.rules.facts import FindingFacts
from orchestrator.rules.report_input import load_findings
from tests.rules.scenario import (
    BACKDOOR,
    BACKDOOR_SHA,
    C2,
    EXFIL,
    dns_events,
    network_events,
    process_events,
    run_sql,
    sysmon_fixture_events,
)

_EVENTS = {"network_connection": network_events, "process_creation": process_events, "dns_query": dns_events}


def _matches(rules, rows) -> dict[str, set[int]]:
    """category -> the events the rules of that category select."""
    found: dict[str, set[int]] = {}
    for rule in rules:
        (query,) = convert([rule], Target.sqlite)
        assert query.error is None, query.error
        category = rule["logsource"]["category"]
        found[category] = found.get(category, set()) | run_sql(_EVENTS[category](rows), query.query)
    return found


def test_backdoor_rules_select_its_events_only(scored) -> None:
    rows = scored.rows
    backdoor = next(f for f in load_findings(scored.report) if f.process_path == BACKDOOR)
    own = {i for i, r in enumerate(rows) if r.get("process_path") == BACKDOOR and r["host"] == "web1"}
    first_start = min(own)  # the process-creation event of the backdoor is its first row
    assert _matches(generator.rules_for(backdoor), rows) == {"network_connection": own,
                                                              "process_creation": {first_start}}
    # The benign program on db1 reaching the same C2 address on 443 is not selected.
    assert any(r.get("remote_ip") == C2 and r["host"] == "db1" for r in rows)


def test_hash_rule_selects_the_binary_and_nothing_else(scored) -> None:
    finding = next(f for f in scored.document()["findings"] if f["process_path"] == BACKDOOR)
    facts = FindingFacts.from_dict({**finding, "exe_sha256": BACKDOOR_SHA})
    own = {i for i, r in enumerate(scored.rows) if r.get("process_path") == BACKDOOR}
    assert _matches([generator.process_rule(facts)], scored.rows) == {"process_creation": {min(own)}}


def test_dns_exfil_rule_selects_its_queries_only(scored) -> None:
    rows = scored.rows
    exfil = next(f for f in load_findings(scored.report) if f.process_path == EXFIL)
    own = {i for i, r in enumerate(rows) if r.get("kind") == "dns" and r["process_path"] == EXFIL}
    assert len(own) == 40
    # The browsers asking for www. of the same registered domain are not selected.
    assert _matches(generator.rules_for(exfil), rows) == {"dns_query": own}


def test_windows_rule_selects_the_sysmon_event_it_came_from(tmp_path) -> None:
    from tests.conftest import run_connhunt
    from tests.rules.scenario import SYSMON_FIXTURE

    result = run_connhunt("score", str(SYSMON_FIXTURE), "--format", "json", "--quiet")
    assert result.returncode == 0, result.stderr
    (tmp_path / "r.json").write_text(result.stdout)
    (finding,) = load_findings(tmp_path / "r.json")
    (network,) = generator.rules_for(finding)
    (query,) = convert([network], Target.sqlite)
    events = sysmon_fixture_events(3)
    own = {e["event"] for e in events if e["Image"] == finding.process_path}
    assert len(own) == 1 and len(events) == 3  # firefox and System are the benign ones
    assert run_sql(events, query.query) == own


def test_scan_rule_selects_the_scanners_connections_only(tmp_path) -> None:
    """A scan finding names no one destination: its rule is the scanner reaching internal networks."""
    from tests.conftest import at, connection
    from tests.rules.scenario import records, score

    scan = [connection(host="ws9", pid=555, process_name="masscan", process_path="/tmp/masscan",
                       command_line="/tmp/masscan 10.20.0.0/24 -p22", exe_sha256="e" * 64,
                       remote_ip=f"10.20.0.{i}", remote_port=22, state="SYN_SENT", local_port=50000 + i,
                       first_seen=at(i / 10), last_seen=at(i / 10)) for i in range(1, 80)]
    resolver = connection(host="ws9", pid=556, process_name="systemd-resolved", exe_sha256="a" * 64,
                          process_path="/usr/lib/systemd/systemd-resolved", protocol="udp", remote_ip="10.0.0.53",
                          remote_port=53, command_line="/usr/lib/systemd/systemd-resolved")
    fleet = score(tmp_path, records() + scan + [resolver])
    finding = next(f for f in load_findings(fleet.report) if f.process_path == "/tmp/masscan")
    assert finding.technique == "T1046" and finding.remote_ip is None
    network = generator.network_rule(finding)
    (query,) = convert([network], Target.sqlite)
    events = network_events(fleet.rows)
    assert run_sql(events, query.query) == {e["event"] for e in events if e["Image"] == "/tmp/masscan"}
