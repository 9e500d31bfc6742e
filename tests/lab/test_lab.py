"""Acceptance: a short lab run, scored as one fleet, meets every detection target, and leaves nothing behind.

About 3.5 minutes: 2.5 minutes of traffic, setup, collection and scoring. Eleven scenarios (twelve truth pairs: the
beacon runs on two hosts) next to the benign fleet, its web server, sshd, developer http.server and database client.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.lab import groundtruth
from orchestrator.lab.evaluate import evaluate, table
from orchestrator.lab.netns import list_namespaces
from orchestrator.lab.runner import LabConfig, run_lab
from orchestrator.lab.score import score_files, write_hunt_config
from tests.lab.conftest import needs_agent, needs_netns
from tests.lab.rules_check import check_rules_match_lab_events

pytestmark = [pytest.mark.netns, pytest.mark.lab, needs_netns, needs_agent]


@pytest.mark.timeout(330)
def test_short_lab_meets_detection_targets(tmp_path: Path) -> None:
    result = run_lab(LabConfig(minutes=2.5, hosts=8, out=tmp_path))
    assert list_namespaces(result.prefix) == [], "the lab left namespaces behind"
    assert not Path("/opt/connhunt-lab").exists() and not Path("/dev/shm/.x/xmrig").exists()
    assert not Path("/tmp/.n/ncat").exists()
    assert len(result.agent_files) == 8 and all(r.get("connection") for r in result.records.values())
    # The servers, the sshd, the dev server and the bind shell are listeners on their hosts.
    assert all(result.records[h].get("listener") for h in ("ws01", "ws04", "ws06", "ws08")), result.records

    report = score_files(result.agent_files, write_hunt_config(tmp_path))
    truth = groundtruth.read(result.ground_truth)
    assert len(truth) == 12 and {t.scenario for t in truth} == {
        "c2_beacon", "dns_exfiltration", "internal_scan", "cryptominer", "icmp_tunnel", "bash_reverse_shell",
        "pty_reverse_shell", "bind_shell", "web_shell", "lolbin_lateral", "injected_implant"}
    evaluation = evaluate(report, truth)
    print(table(evaluation))
    assert evaluation.recall == 1.0, evaluation.failures
    assert evaluation.benign_alarms == (), evaluation.failures
    assert evaluation.targets_met, evaluation.failures
    # issue 12: the findings' Sigma rules, as SQL over the lab's own events, select exactly what they came from
    malicious = {t.process_path for t in truth} | {p for t in truth for p in t.related}
    assert check_rules_match_lab_events(report, result.agent_files, malicious) >= 3
