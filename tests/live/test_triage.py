"""`connhunt triage` on real processes and real sockets: a planted backdoor in /tmp beaconing to a test host on
port 4444 is High or Critical with the right technique; a client on 443 and ssh on 22 are not."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import run_connhunt
from tests.live.testnet import BEACON, TEST_HOST_IP, LiveNet

pytestmark = [pytest.mark.netns, pytest.mark.skipif(os.geteuid() != 0, reason="ip netns needs root")]


def test_triage_finds_the_backdoor_and_leaves_ordinary_traffic_alone(tmp_path) -> None:
    with LiveNet() as net:
        net.start_test_host(seconds=60)
        backdoor = net.planted_binary("updaterd")
        net.spawn(net.endpoint, [str(backdoor), "-c", BEACON, TEST_HOST_IP, "4444", "2", "15"])
        net.spawn(net.endpoint, ["curl", "-s", "-o", "/dev/null", "--max-time", "25",
                                 f"http://{TEST_HOST_IP}:443/"])
        net.spawn(net.endpoint, ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                                 "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20", f"probe@{TEST_HOST_IP}"],
                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # A loopback pair inside the endpoint: collected, but loopback peers are never findings.
        net.spawn(net.endpoint, [sys.executable, "-c",
                                 "import socket,time;s=socket.socket();s.bind(('127.0.0.1',0));s.listen();"
                                 "c=socket.create_connection(s.getsockname());a=s.accept();time.sleep(25)"])
        saved = tmp_path / "observations.jsonl"
        result = run_connhunt("triage", "--duration", "14", "--interval", "1", "--format", "json", "--min-risk",
                              "low", "--save", str(saved), netns=net.endpoint, timeout=120)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    by_path = {}
    for finding in document["findings"]:
        by_path.setdefault(finding["process_path"], []).append(finding)

    planted = by_path.get(str(backdoor))
    seen = [(f["process_path"], f["destination"]) for f in document["findings"]]
    assert planted, f"no finding for {backdoor}: {seen}"
    finding = planted[0]
    assert finding["technique"] in ("T1571", "T1071")
    assert finding["risk"] in ("High", "Critical")
    assert (finding["remote_ip"], finding["remote_port"], finding["user"]) == (TEST_HOST_IP, 4444, "root")
    assert any(str(backdoor) in line for line in finding["evidence"])
    assert finding["hunt_id"].startswith("TH-HUNTIN-") and finding["hunt_id"].endswith("-001")

    observed = [json.loads(line) for line in saved.read_text().splitlines()]
    connections = [r for r in observed if r["kind"] == "connection"]
    ordinary = {r["process_name"] for r in connections if r["remote_port"] in (22, 443)}
    assert {"curl", "ssh"} <= ordinary, ordinary  # the ordinary clients were seen...
    for name in ("curl", "ssh"):  # ...and judged ordinary
        assert all(f["risk"] in ("Low", "Medium") for f in document["findings"] if f["process_name"] == name)
    assert any(r["remote_ip"] == "127.0.0.1" and r["attributed"] for r in connections)
    assert not [f for f in document["findings"] if f["remote_ip"] == "127.0.0.1"]
    beacon_starts = {r["first_seen"] for r in connections if r["process_path"] == str(backdoor)}
    assert len(beacon_starts) >= 5  # every reconnect kept its own start time


def test_triage_text_output_is_the_hunt_format() -> None:
    with LiveNet() as net:
        net.start_test_host(seconds=30)
        backdoor = net.planted_binary("kupdate")
        net.spawn(net.endpoint, [str(backdoor), "-c", BEACON, TEST_HOST_IP, "4444", "1.5", "10"])
        result = run_connhunt("triage", "--duration", "6", "--interval", "0.5", "--fail-on", "high",
                              netns=net.endpoint, timeout=60)
    assert result.returncode == 1, result.stderr  # --fail-on high and a High/Critical finding
    block = result.stdout.split("\n\n")[1]
    labels = [line.split(":", 1)[0] for line in block.splitlines() if not line.startswith("  ")]
    assert labels == ["Hunt ID", "Technique", "Host", "User", "Evidence", "Risk Level", "Confidence",
                      "Recommended Action"]
    assert f"binary: {backdoor}" in block
