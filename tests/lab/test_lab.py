"""Acceptance: a short lab run, scored as one fleet, meets every detection target, and leaves nothing behind.

About 3.5 minutes: 2.5 minutes of traffic, setup, collection and scoring.
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

pytestmark = [pytest.mark.netns, pytest.mark.lab, needs_netns, needs_agent]


@pytest.mark.timeout(330)
def test_short_lab_meets_detection_targets(tmp_path: Path) -> None:
    result = run_lab(LabConfig(minutes=2.5, hosts=8, out=tmp_path))
    assert list_namespaces(result.prefix) == [], "the lab left namespaces behind"
    assert not Path("/opt/connhunt-lab").exists() and not Path("/dev/shm/.x/xmrig").exists()
    assert len(result.agent_files) == 8 and all(r.get("connection") for r in result.records.values())

    report = score_files(result.agent_files, write_hunt_config(tmp_path))
    evaluation = evaluate(report, groundtruth.read(result.ground_truth))
    print(table(evaluation))
    assert evaluation.recall == 1.0, evaluation.failures
    assert evaluation.benign_alarms == (), evaluation.failures
    assert evaluation.targets_met, evaluation.failures
