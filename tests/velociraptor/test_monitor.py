"""End to end: `connhunt monitor enable`, a beacon, and `connhunt hunt --monitor-window` scoring its timing.

A beacon is planted on this machine: a copy of the Python interpreter renamed /tmp/connhunt-test-*/updaterd that
connects to 203.0.113.50:4444 every 2 s, a listener inside a network namespace made for the test (set up as in
test_hunt.py: point-to-point /32s, so nothing else of 203.0.113.0/24 is routed here). A netstat snapshot sees one
of those connections; only the monitor's events give the series of starts that the beacon detector (T1071) scores.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.store import Store
from orchestrator.velociraptor import api, monitor, pull
from tests.velociraptor.planted import PEER_IP, PORT, Planted, peer_namespace, planted_copy, run_cli

pytestmark = pytest.mark.velociraptor

PERIOD = 2.0
# Enough openings for the detector (beacon_min_connections is 6) with room for a missed sample or two.
WANT_OPENED = 10
EVENTS_TIMEOUT = 75.0


@pytest.fixture
def beacon() -> Iterator[Planted]:
    """The planted beacon and the namespace it talks to; everything is removed however the test ends."""
    # Bounded: at most 300 connections, and it gives up after 60 s without one.
    listener = ("import socket\n"
                f"s = socket.create_server(('{PEER_IP}', {PORT}))\n"
                "s.settimeout(60)\n"
                "print('ready', flush=True)\n"
                "for _ in range(300):\n"
                "    c, _ = s.accept(); c.sendall(b'ok'); c.close()\n")
    with peer_namespace("chmo", listener) as (workdir, procs):
        path = planted_copy(workdir)
        # Each check-in is a new socket held 1.5 s: longer than the monitor's 1 s sampling, so every one is seen.
        proc = subprocess.Popen(
            [str(path), "-c",
             "import socket, time\n"
             "print('started', flush=True)\n"
             "for _ in range(150):\n"
             "    start = time.monotonic()\n"
             f"    s = socket.create_connection(('{PEER_IP}', {PORT}), timeout=10)\n"
             "    s.recv(2); time.sleep(1.5); s.close()\n"
             f"    time.sleep(max(0.0, {PERIOD} - (time.monotonic() - start)))\n"],
            stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        yield Planted(path=path, proc=proc)


def _opened(client: api.VelociraptorClient, client_id: str, path: Path) -> int:
    now = time.time()
    return sum(1 for batch in monitor.events(client, client_id, now - 600, now) for row in batch
               if row.get("event") == "opened" and row.get("process_path") == str(path))


def test_monitor_window_gives_the_hunt_beacon_timing(velociraptor, beacon: Planted, tmp_path: Path) -> None:
    config = str(velociraptor.api_config)
    pushed = run_cli("artifacts", "push", "--api-config", config, tmp=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    try:
        # A short batch wait so the client uploads events within seconds, not the server's default 2 minutes.
        enabled = run_cli("monitor", "enable", "--api-config", config, "--interval", "1", "--batch-wait", "2",
                          tmp=tmp_path)
        assert enabled.returncode == 0, enabled.stderr
        # notes ("already enabled") reach a non-terminal stderr only with --verbose
        again = run_cli("--verbose", "monitor", "enable", "--api-config", config, "--interval", "1", "--batch-wait",
                        "2", tmp=tmp_path)
        assert again.returncode == 0 and "already enabled" in again.stderr, again.stderr
        with api.connect(config) as client:
            assert monitor.installed(client) == ["all"]
            # A client takes a new event table when it next sends the server something; a quick collection
            # makes that now rather than at its next event upload (up to two minutes away).
            api.collect_client(client, velociraptor.client_id, wait=60)
            deadline = time.monotonic() + EVENTS_TIMEOUT
            seen = 0
            for _ in range(int(EVENTS_TIMEOUT)):
                seen = _opened(client, velociraptor.client_id, beacon.path)
                if seen >= WANT_OPENED or time.monotonic() >= deadline:
                    break
                time.sleep(1)
        assert seen >= WANT_OPENED, f"only {seen} opened events from the monitor in {EVENTS_TIMEOUT:.0f}s"

        db = tmp_path / "hunt.duckdb"
        proc = run_cli("hunt", "--api-config", config, "--expires", "10m", "--wait", "120", "--db", str(db),
                       "--monitor-window", "10m", "--format", "json", "--min-risk", "low", tmp=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        report = json.loads(proc.stdout)
        mine = [f for f in report["findings"] if f["process_path"] == str(beacon.path)]
        assert mine, [(f["process_path"], f["destination"]) for f in report["findings"]]
        finding = mine[0]
        assert "T1071" in finding["techniques"], finding
        assert any(e.startswith("[beacon") for e in finding["evidence"]), finding["evidence"]
        assert finding["remote_ip"] == PEER_IP and finding["remote_port"] == PORT

        # Every opening is its own row, and the monitor pull is ledgered: a resume adds nothing.
        with Store(db) as store:
            starts = store.query("SELECT count(DISTINCT first_seen) AS n FROM connections WHERE process_path = ?",
                                 [str(beacon.path)])[0]["n"]
            ledger = store.query(f"SELECT hunt_id, flow_id FROM {pull.LEDGER}")
            before = store.count("connections")
        assert starts >= WANT_OPENED
        assert [r["flow_id"] for r in ledger].count(monitor.LEDGER_FLOW) == 1
        hunt_id = ledger[0]["hunt_id"]
        resumed = run_cli("hunt", "--resume", hunt_id, "--api-config", config, "--db", str(db), "--wait", "60",
                          "--monitor-window", "10m", "--format", "json", "--min-risk", "low", tmp=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        with Store(db) as store:
            assert store.count("connections") == before
    finally:
        disabled = run_cli("monitor", "disable", "--api-config", config, tmp=tmp_path)
    assert disabled.returncode == 0, disabled.stderr
    with api.connect(config) as client:
        assert monitor.installed(client) == []


def _group_specs(table: dict, label: str | None) -> list | None:
    """(artifacts, specs without compiled args) of one group of the client event table, None if no such group."""
    if not label:
        group = table.get("artifacts") or {}
    else:
        groups = [g.get("artifacts") or {} for g in table.get("label_events") or () if g.get("label") == label]
        if not groups:
            return None
        group = groups[0]
    specs = sorted(json.dumps(s, sort_keys=True) for s in group.get("specs") or ())
    return [sorted(group.get("artifacts") or ()), specs]


def test_monitor_enable_touches_only_its_own_entry(velociraptor, tmp_path: Path) -> None:
    """Another artifact installed first, in the all-clients group and in a label group, survives enable and disable
    byte for byte; disabling in a label group that held only connhunt removes the group."""
    config = str(velociraptor.api_config)
    with api.connect(config) as client:
        api.push_artifacts(client)
        for label in ("", "connhunt-shared"):
            client.query("SELECT add_client_monitoring(artifact='Generic.Client.Stats', label=Label, "
                         "parameters=dict(Frequency='17')) FROM scope()", {"Label": label})
        before = monitor._get_table(client)
    others = {label: _group_specs(before, label) for label in (None, "connhunt-shared")}
    assert "Generic.Client.Stats" in others[None][0] and "Generic.Client.Stats" in others["connhunt-shared"][0]
    try:
        for label in (None, "connhunt-shared", "connhunt-alone"):
            args = ("--label", label) if label else ()
            proc = run_cli("monitor", "enable", "--api-config", config, "--interval", "3", *args, tmp=tmp_path)
            assert proc.returncode == 0, proc.stderr
        with api.connect(config) as client:
            assert sorted(monitor.installed(client)) == ["all", "label:connhunt-alone", "label:connhunt-shared"]
            during = monitor._get_table(client)
        for label, (artifacts, specs) in others.items():
            now_artifacts, now_specs = _group_specs(during, label)
            assert set(artifacts) <= set(now_artifacts) and set(specs) <= set(now_specs), (label, during)
    finally:
        for label in (None, "connhunt-shared", "connhunt-alone"):
            args = ("--label", label) if label else ()
            proc = run_cli("monitor", "disable", "--api-config", config, *args, tmp=tmp_path)
            assert proc.returncode == 0, proc.stderr
    with api.connect(config) as client:
        after = monitor._get_table(client)
        assert monitor.installed(client) == []
        # leave the server as the other tests expect it
        for label in ("", "connhunt-shared"):
            client.query("SELECT rm_client_monitoring(artifact='Generic.Client.Stats', label=Label) FROM scope()",
                         {"Label": label})
    assert {label: _group_specs(after, label) for label in others} == others
    assert _group_specs(after, "connhunt-alone") is None, after
    missing = run_cli("--verbose", "monitor", "disable", "--api-config", config, "--label", "connhunt-nowhere",
                      tmp=tmp_path)
    assert missing.returncode == 0 and "was not enabled" in missing.stderr
    with api.connect(config) as client:
        assert _group_specs(monitor._get_table(client), "connhunt-nowhere") is None


def test_hunt_watch_window_gives_beacon_timing_without_a_standing_monitor(velociraptor, beacon: Planted,
                                                                          tmp_path: Path) -> None:
    """`hunt --watch 30s`: the hunt itself runs Custom.Connhunt.MonitorWindow next to the snapshot, on the real
    client, and the beacon detector gets the series of reconnects from it. No monitor is installed."""
    config = str(velociraptor.api_config)
    pushed = run_cli("artifacts", "push", "--api-config", config, tmp=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    with api.connect(config) as client:
        assert monitor.installed(client) == []
    db = tmp_path / "hunt.duckdb"
    started = time.monotonic()
    proc = run_cli("hunt", "--api-config", config, "--expires", "10m", "--wait", "120", "--db", str(db),
                   "--watch", "30s", "--format", "json", "--min-risk", "low", tmp=tmp_path)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert 30 <= elapsed < 120, elapsed
    report = json.loads(proc.stdout)
    mine = [f for f in report["findings"] if f["process_path"] == str(beacon.path)]
    assert mine, [(f["process_path"], f["destination"]) for f in report["findings"]]
    assert "T1071" in mine[0]["techniques"] and any(e.startswith("[beacon") for e in mine[0]["evidence"]), mine[0]
    with Store(db) as store:
        starts = store.query("SELECT count(*) AS n, count(DISTINCT first_seen) AS d FROM connections "
                             "WHERE process_path = ? AND remote_port = ?", [str(beacon.path), PORT])[0]
        ledger = store.query(f"SELECT flow_id FROM {pull.LEDGER}")
    # one row per opening (opened/closed events merged), a check-in every 2 s over 30 s; plus the snapshot's one
    assert starts["n"] >= WANT_OPENED and starts["d"] >= WANT_OPENED - 1, starts
    assert len(ledger) == 1  # one flow holds both artifacts
