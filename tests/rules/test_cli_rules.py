"""`connhunt rules` and `connhunt pivot` as a user runs them: outputs, -o, --min-risk, and bad input as one line
with exit code 2; the HTML report shows each finding's queries."""

from __future__ import annotations

from html import escape

import yaml

from orchestrator.rules import generator, pivot, validate
from orchestrator.rules.convert import Target, convert, finding_queries
from orchestrator.rules.report_input import load_findings
from tests.conftest import run_connhunt
from tests.rules.scenario import BACKDOOR, C2, EXFIL, EXFIL_DOMAIN, dns_events, network_events, run_sql
from tests.rules.test_convert import expected_output


def test_rules_writes_yaml_and_honours_min_risk(scored, tmp_path) -> None:
    out = tmp_path / "rules.yml"
    result = run_connhunt("rules", str(scored.report), "--min-risk", "critical", "-o", str(out))
    assert result.returncode == 0 and result.stdout == "", result.stderr
    rules = list(yaml.safe_load_all(out.read_text()))
    critical = [f for f in load_findings(scored.report) if f.risk == "Critical"]
    assert [f.process_path for f in critical] == [BACKDOOR]
    assert rules == generator.rules_for_all(critical)
    assert validate.issues(rules) == []
    everything = run_connhunt("rules", str(scored.report), "--min-risk", "low")
    assert list(yaml.safe_load_all(everything.stdout)) == generator.rules_for_all(load_findings(scored.report))


def test_bad_reports_are_one_line_and_exit_2(scored, tmp_path) -> None:
    text = scored.report.read_text()
    cases = {
        "truncated.json": (text[: len(text) // 2], "truncated.json:"),
        "list.json": ("[1, 2]\n", "not a connhunt JSON report"),
        "risk.json": ('{"findings": [{"hunt_id": "X", "risk": "Severe"}]}', "finding 1: risk 'Severe'"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(content)
        result = run_connhunt("rules", str(tmp_path / name), "--target", "splunk")
        assert result.returncode == 2, (name, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr
        assert result.stderr.startswith("connhunt: error: ")
    missing = run_connhunt("rules", str(tmp_path / "absent.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    both = run_connhunt("rules", str(scored.report), "--pack", "miner")
    assert both.returncode == 2 and "Traceback" not in both.stderr


def test_pivot_prints_backend_output_and_finds_every_host(scored) -> None:
    findings = load_findings(scored.report)
    backdoor = next(f for f in findings if f.process_path == BACKDOOR)
    for target in ("kusto", "splunk"):
        result = run_connhunt("pivot", str(scored.report), backdoor.hunt_id, "--target", target)
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected_output(pivot.pivot_rules(backdoor), target)
    # Run as SQL: the backdoor's host and db1, whose package agent reached the same address on 443.
    linux = next(r for r in pivot.pivot_rules(backdoor) if r["logsource"]["product"] == "linux")
    events = network_events(scored.rows)
    (query,) = convert([linux], Target.sqlite)
    hits = run_sql(events, query.query)
    assert hits == {e["event"] for e in events if e["DestinationIp"] == C2}
    assert {e["Computer"] for e in events if e["event"] in hits} == {"web1", "db1"}

    exfil = next(f for f in findings if f.process_path == EXFIL)
    domain_rule = next(r for r in pivot.pivot_rules(exfil) if r["logsource"]["product"] == "linux")
    (query,) = convert([domain_rule], Target.sqlite)
    dns = dns_events(scored.rows)
    hits = run_sql(dns, query.query)
    assert hits == {e["event"] for e in dns if e["QueryName"].endswith("." + EXFIL_DOMAIN)}
    assert {e["Computer"] for e in dns if e["event"] in hits} == {"ws3", "web2"}
    assert validate.issues(pivot.pivot_rules(backdoor) + pivot.pivot_rules(exfil)) == []


def test_pivot_unknown_finding_is_exit_2(scored) -> None:
    result = run_connhunt("pivot", str(scored.report), "TH-NOPE-1")
    assert result.returncode == 2 and "no finding TH-NOPE-1" in result.stderr and "Traceback" not in result.stderr


def test_html_shows_each_findings_queries(scored) -> None:
    result = run_connhunt("score", str(scored.jsonl), "--format", "html", "--min-risk", "high", "--quiet")
    assert result.returncode == 0, result.stderr
    page = result.stdout
    for finding in load_findings(scored.report):
        section = page.split(f"<h3 id='{finding.hunt_id}'>")[1].split("<h3 id=")[0]
        rules = generator.rules_for(finding)
        for target in ("splunk", "kusto", "esql", "eql", "logscale"):
            for block in expected_output(rules, target).strip().split("\n\n"):
                query = block.split("\n", 1)[1]
                assert escape(query) in section, (finding.hunt_id, target, query)
        assert len(finding_queries(finding)) == section.count("<h4>")
