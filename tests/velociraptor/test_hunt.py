"""End to end through the real server and client: push, hunt, pull, score; and an interrupted pull resumed.

A backdoor is planted on this machine: a copy of the Python interpreter renamed /tmp/connhunt-test-*/updaterd holding
a TCP connection to 203.0.113.50:4444, a listener inside a network namespace made for the test. connhunt's `hunt`
must name that process and technique T1571 (or T1071). Traffic goes only to that namespace and to loopback.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.store import Store
from orchestrator.velociraptor import api, pull
from tests.velociraptor.planted import PEER_IP, PORT, ROOT, Planted, peer_namespace, planted_copy, run_cli

pytestmark = pytest.mark.velociraptor

BENCH_ARTIFACT = ROOT / "bench" / "pull" / "Custom.Connhunt.Bench.Rows.yaml"


@pytest.fixture
def backdoor() -> Iterator[Planted]:
    """The planted process and the namespace it talks to; everything is removed however the test ends."""
    listener = ("import socket, sys\n"
                f"s = socket.create_server(('{PEER_IP}', {PORT}))\n"
                "print('ready', flush=True)\n"
                "s.settimeout(60); c, _ = s.accept(); c.sendall(b'ok')\n"
                "sys.stdin.read()\n")
    with peer_namespace("chvr", listener) as (workdir, procs):
        path = planted_copy(workdir)
        proc = subprocess.Popen(
            [str(path), "-c",
             "import socket, sys\n"
             f"s = socket.create_connection(('{PEER_IP}', {PORT}), timeout=30)\n"
             "s.recv(2); print('connected', flush=True)\n"
             "sys.stdin.read()\n"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "connected"
        yield Planted(path=path, proc=proc)


def test_hunt_finds_the_planted_backdoor(velociraptor, backdoor: Planted, tmp_path: Path) -> None:
    config = str(velociraptor.api_config)
    pushed = run_cli("artifacts", "push", "--api-config", config, tmp=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    listed = run_cli("clients", "--api-config", config, "--format", "json", tmp=tmp_path)
    assert velociraptor.client_id in {c["client_id"] for c in json.loads(listed.stdout)}

    # Label and OS together: the path where hunt(os=) would silently drop the label condition.
    with api.connect(config) as client:
        api.label_client(client, velociraptor.client_id, "connhunt-e2e")
    db = tmp_path / "hunt.duckdb"
    proc = run_cli("hunt", "--api-config", config, "--label", "connhunt-e2e", "--os", "linux", "--expires", "10m",
                   "--wait", "180", "--db", str(db), "--format", "json", "--min-risk", "low", "--label-findings",
                   tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    mine = [f for f in report["findings"] if f["process_path"] == str(backdoor.path)]
    assert mine, [(f["process_path"], f["destination"]) for f in report["findings"]]
    finding = mine[0]
    assert {"T1571", "T1071"} & {finding["technique"], *finding["techniques"]}, finding
    assert finding["remote_ip"] == PEER_IP and finding["remote_port"] == PORT
    assert finding["host"] == velociraptor.hostname
    with api.connect(config) as client:
        labels = {c.client_id: c.labels for c in api.list_clients(client)}[velociraptor.client_id]
    assert "connhunt-finding" in labels, labels

    with Store(db) as store:
        rows = store.query("SELECT host_id, pid, exe_sha256 FROM connections WHERE process_path = ?",
                           [str(backdoor.path)])
        ledger = store.query(f"SELECT * FROM {pull.LEDGER}")
    assert rows and all(r["host_id"] == velociraptor.client_id for r in rows)
    assert rows[0]["pid"] == backdoor.proc.pid and len(rows[0]["exe_sha256"]) == 64
    assert len(ledger) == 1 and ledger[0]["client_id"] == velociraptor.client_id


def _wait_for_flows(client: api.VelociraptorClient, hunt_id: str, count: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flows = api.hunt_flows(client, hunt_id)
        if len(flows) >= count and all(api.flow_done(f) for f in flows):
            return
        time.sleep(1)
    raise AssertionError(f"hunt {hunt_id}: {count} flows did not finish in {timeout}s: {flows}")


def test_resume_after_the_server_dies_mid_pull(velociraptor, tmp_path: Path) -> None:
    """Three flows of 25,000 rows; the server is killed while the second streams; --resume completes it."""
    rows_per_flow = 25000
    artifact = "Custom.Connhunt.Bench.Rows"
    with api.connect(velociraptor.api_config) as client:
        api.push_artifacts(client, [BENCH_ARTIFACT])
        hunt_id = api.create_hunt(client, artifact, expires="30m", parameters={"Rows": rows_per_flow})
        _wait_for_flows(client, hunt_id, 1)
        for _ in range(2):  # the same client again: one hunt, three flows
            client.query("SELECT hunt_add(client_id=ClientId, hunt_id=HuntId, relaunch=TRUE) FROM scope()",
                         {"ClientId": velociraptor.client_id, "HuntId": hunt_id})
        _wait_for_flows(client, hunt_id, 3)
        server_rows = api.hunt_result_count(client, hunt_id, artifact)
    assert server_rows == 3 * rows_per_flow

    db = tmp_path / "hunt.duckdb"
    killed: list[int] = []

    def kill_mid_second_flow(progress: pull.PullProgress) -> None:
        # After the first flow is stored and part of the second has streamed in.
        if not killed and progress.pulled_flows == 1 and progress.rows > rows_per_flow:
            killed.append(progress.rows)
            velociraptor.stop("frontend")

    store = Store(db)
    try:
        with api.connect(velociraptor.api_config, timeout=30) as client, pytest.raises(api.VelociraptorError):
            pull.pull_hunt(client, store, hunt_id, artifact, wait=60, on_progress=kill_mid_second_flow)
        assert killed, "the server was never killed"
        assert store.count("connections") == rows_per_flow  # the half-read flow left nothing behind
        assert len(pull.pulled(store, hunt_id)) == 1
    finally:
        store.close()
        velociraptor.start_server()

    proc = run_cli("hunt", "--resume", hunt_id, "--artifact", artifact, "--db", str(db), "--wait", "120",
                   "--api-config", str(velociraptor.api_config), "--format", "json", tmp=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    with Store(db) as store:
        stored = store.count("connections")
        distinct = store.query("SELECT count(DISTINCT command_line) AS n FROM connections")[0]["n"]
        ledger = store.query(f"SELECT flow_id, rows FROM {pull.LEDGER} WHERE hunt_id = ?", [hunt_id])
    assert stored == server_rows == distinct
    assert sorted(r["rows"] for r in ledger) == [rows_per_flow] * 3


def test_collect_one_client_to_jsonl_that_score_reads(velociraptor, tmp_path: Path) -> None:
    with api.connect(velociraptor.api_config) as client:
        api.push_artifacts(client)
    out = tmp_path / "client.jsonl"
    proc = run_cli("collect", "--client", velociraptor.client_id, "--api-config", str(velociraptor.api_config),
                   "-o", str(out), tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and all(r["host_id"] == velociraptor.client_id and r["source"] == "velociraptor"
                           for r in records)
    scored = run_cli("score", str(out), "--format", "json", tmp=tmp_path)
    assert scored.returncode == 0, scored.stderr
    kinds = [r.get("kind", "connection") for r in records]
    assert set(kinds) == {"connection", "listener"}  # the client's own listening sockets are rows too
    assert json.loads(scored.stdout)["hunt"]["rows"]["connections"] == kinds.count("connection")
    assert all(r["local_port"] and "remote_ip" not in r for r in records if r.get("kind") == "listener")


def test_collect_unknown_client_is_exit_3(velociraptor, tmp_path: Path) -> None:
    proc = run_cli("collect", "--client", "C.0000000000000000", "--api-config", str(velociraptor.api_config),
                   "-o", str(tmp_path / "x.jsonl"), tmp=tmp_path)
    assert proc.returncode == 3 and "unknown client C.0000000000000000" in proc.stderr
