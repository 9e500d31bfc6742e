"""`connhunt collect` then `connhunt score`; triage ended early by a signal still reports; triage without root
says what it could not see."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_connhunt
from tests.live.testnet import BEACON, TEST_HOST_IP, LiveNet

pytestmark = [pytest.mark.netns, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]
ENTRY = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def test_collect_then_score(tmp_path: Path) -> None:
    out = tmp_path / "endpoint.jsonl"
    with LiveNet() as net:
        net.start_test_host(seconds=30)
        backdoor = net.planted_binary("syslogd-helper")
        net.spawn(net.endpoint, [str(backdoor), "-c", BEACON, TEST_HOST_IP, "31337", "1", "12"])
        collected = run_connhunt("collect", "--duration", "8", "--interval", "0.5", "--host", "ep-1", "-o", str(out),
                                 "--verbose", netns=net.endpoint, timeout=60)
    assert collected.returncode == 0, collected.stderr
    assert f"to {out}" in collected.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["host"] for r in records} == {"ep-1"}
    scored = run_connhunt("score", str(out), "--format", "jsonl")
    assert scored.returncode == 0, scored.stderr
    findings = [json.loads(line) for line in scored.stdout.splitlines()]
    hit = next(f for f in findings if f["process_path"] == str(backdoor))
    assert (hit["host"], hit["remote_port"]) == ("ep-1", 31337)
    # A beacon as regular as this one can outweigh the port (then T1071 names it); the port must have fired.
    assert hit["technique"] in ("T1571", "T1071") and "T1571" in hit["techniques"]


def test_triage_interrupted_still_reports_what_it_collected(tmp_path: Path) -> None:
    with LiveNet() as net:
        net.start_test_host(seconds=40)
        backdoor = net.planted_binary("dbus-daemon-x")
        net.spawn(net.endpoint, [str(backdoor), "-c", BEACON, TEST_HOST_IP, "4444", "1", "30"])
        saved = tmp_path / "raw.jsonl"
        proc = subprocess.Popen(["ip", "netns", "exec", net.endpoint, *ENTRY, "triage", "--duration", "120",
                                 "--format", "json", "--save", str(saved)], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(8)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr  # interrupted, after saving and scoring what was collected
    document = json.loads(stdout)
    assert any(f["process_path"] == str(backdoor) for f in document["findings"])
    assert saved.stat().st_size > 0  # the raw observations were kept too


def test_triage_without_root_says_what_it_could_not_see(tmp_path: Path) -> None:
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                            "import orchestrator.cli"], cwd=ROOT, capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"the test virtualenv is not readable by nobody: {probe.stderr.strip()[-200:]}")
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *ENTRY, "triage",
                             "--duration", "2", "--format", "json", "--min-risk", "low"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    checks = {h["check"] for h in json.loads(result.stdout)["health"]}
    assert "not_root" in checks


def test_triage_of_a_quiet_host_still_names_the_host() -> None:
    with LiveNet() as net:
        result = run_connhunt("triage", "--duration", "1", "--format", "json", "--host", "quiet-1",
                              netns=net.endpoint, timeout=60)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["hunt"]["hosts"] == ["quiet-1"]
    assert document["findings"] == [] and document["hunt"]["rows"]["connections"] == 0
