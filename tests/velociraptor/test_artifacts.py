"""connhunt's Velociraptor artifacts against the real binary: each verifies, and the Linux sources run for real.

The netstat artifact is collected on the enrolled client through the server and must attribute a socket this test
opens to its process (pid, exe path, SHA-256, parent); the monitor artifact runs locally and must report that
socket opening and closing.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.resources import artifacts_dir
from orchestrator.schema import CONNECTION_COLUMNS, LISTENER_COLUMNS
from orchestrator.velociraptor import api

pytestmark = pytest.mark.velociraptor

ARTIFACTS = sorted(artifacts_dir("velociraptor").glob("*.yaml"))
# What the endpoint reports; the store derives process_identity, and a socket table knows no remote hostname.
NETSTAT_COLUMNS = [c for c, _ in CONNECTION_COLUMNS if c not in ("process_identity", "remote_hostname")]
LISTENER_COLUMNS_REPORTED = [c for c, _ in LISTENER_COLUMNS if c != "process_identity"]
PYTHON = os.path.realpath(sys.executable)


def test_artifacts_exist() -> None:
    names = {p.stem for p in ARTIFACTS}
    assert {"Custom.Connhunt.Netstat", "Custom.Connhunt.Monitor", "Custom.Connhunt.MonitorWindow",
            "Custom.Connhunt.Windows.SysmonNetwork", "Custom.Connhunt.DNS"} <= names


@pytest.mark.parametrize("path", ARTIFACTS, ids=lambda p: p.stem)
def test_artifact_verifies(velociraptor_binary: Path, path: Path) -> None:
    # Verified together with the others, since the monitor imports the netstat artifact and DNS calls Sysmon.
    others = [str(p) for p in ARTIFACTS if p != path]
    proc = subprocess.run([str(velociraptor_binary), "artifacts", "verify", str(path), *others],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_verify_rejects_a_broken_artifact(velociraptor_binary: Path, tmp_path: Path) -> None:
    """The check above means something: a query naming an unknown plugin fails verification."""
    bad = tmp_path / "Custom.Broken.yaml"
    bad.write_text("name: Custom.Broken\nsources:\n  - query: SELECT * FROM no_such_plugin()\n")
    proc = subprocess.run([str(velociraptor_binary), "artifacts", "verify", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0


class HeldConnection:
    """A python child process holding a TCP connection to a loopback listener owned by this test."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        code = ("import socket, sys, time\n"
                f"s = socket.create_connection(('127.0.0.1', {self.port}))\n"
                "print(s.getsockname()[1], flush=True)\n"
                "sys.stdin.read()\n")  # hold until the test closes stdin (bounded by the test's own timeout)
        self.proc = subprocess.Popen([PYTHON, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.listener.settimeout(30)
        self.server_side, _ = self.listener.accept()
        assert self.proc.stdout is not None
        self.local_port = int(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.server_side.close()
        self.listener.close()


@pytest.fixture
def held_connection():
    conn = HeldConnection()
    try:
        yield conn
    finally:
        conn.close()


def test_netstat_on_the_real_client_attributes_a_socket(velociraptor, held_connection: HeldConnection) -> None:
    with api.connect(velociraptor.api_config) as client:
        api.push_artifacts(client)
        flow = api.collect_client(client, velociraptor.client_id, api.ARTIFACT,
                                  parameters={"ProcessNameRegex": "python"}, wait=120)
        assert flow.state == "FINISHED", flow.status
        # the other OS sources' preconditions held; listeners come in their own source
        assert sorted(flow.sources) == ["Custom.Connhunt.Netstat/Linux", "Custom.Connhunt.Netstat/Listeners"]
        rows, listeners = ([r for batch in api.flow_results(client, velociraptor.client_id, flow.flow_id, source)
                            for r in batch] for source in sorted(flow.sources))
    assert rows and listeners
    for row in rows:
        assert list(row) == NETSTAT_COLUMNS
    for row in listeners:
        assert list(row) == LISTENER_COLUMNS_REPORTED
    mine = [r for r in rows if r["pid"] == held_connection.proc.pid]
    assert len(mine) == 1, rows
    row = mine[0]
    expected_sha = hashlib.sha256(Path(PYTHON).read_bytes()).hexdigest()
    assert (row["process_path"], row["exe_sha256"], row["attributed"]) == (PYTHON, expected_sha, True)
    assert (row["local_ip"], row["local_port"], row["remote_ip"], row["remote_port"]) == (
        "127.0.0.1", held_connection.local_port, "127.0.0.1", held_connection.port)
    assert (row["protocol"], row["family"], row["state"], row["source"], row["os"]) == (
        "tcp", "ipv4", "ESTABLISHED", "velociraptor", "linux")
    assert (row["direction"], row["seen_by"], row["attribution"], row["stdio"]) == (
        "outbound", "snapshot", "pid", None)
    assert row["ppid"] == os.getpid() and row["parent_path"] == PYTHON
    assert row["host"] == velociraptor.hostname
    assert abs(row["process_start"] - time.time()) < 600 and row["username"] == "root"
    # This test's side of the connection is a client of its own listener: inbound, and the listener is a row.
    served = [r for r in rows if r["pid"] == os.getpid() and r["local_port"] == held_connection.port]
    assert [(r["remote_port"], r["direction"]) for r in served] == [(held_connection.local_port, "inbound")]
    listening = [r for r in listeners if r["pid"] == os.getpid() and r["local_port"] == held_connection.port]
    assert [(r["protocol"], r["local_ip"], r["process_path"], r["attributed"]) for r in listening] == [
        ("tcp", "127.0.0.1", PYTHON, True)]


def test_monitor_reports_connections_present_opening_and_closing(velociraptor_binary: Path) -> None:
    """The client event artifact, run locally: a socket open before it starts, one opened and closed after."""
    import queue
    import threading

    before = HeldConnection()
    conns = [before]
    monitor = subprocess.Popen(
        [str(velociraptor_binary), "--definitions", str(artifacts_dir("velociraptor")), "artifacts", "collect",
         "Custom.Connhunt.Monitor", "--args", "Interval=1", "--args", "IncludeLoopback=Y",
         "--args", "ProcessNameRegex=python",
         # rows are queued up to --max_wait seconds before they are written; --timeout ends the run by itself
         "--max_wait", "1", "--timeout", "180", "--format", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert monitor.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in monitor.stdout], daemon=True).start()
    seen: list[dict] = []

    def wait_event(pid: int, event: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for row in seen:
                if row["pid"] == pid and row["event"] == event:
                    return row
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line.startswith("{"):
                seen.append(json.loads(line))
        raise AssertionError(f"no {event!r} event for pid {pid} within {timeout}s: {seen}")

    try:
        present = wait_event(before.proc.pid, "present")  # also: the monitor's first sample is done
        after = HeldConnection()
        conns.append(after)
        opened = wait_event(after.proc.pid, "opened")
        after.close()
        closed = wait_event(after.proc.pid, "closed")
        before.close()
        closed_before = wait_event(before.proc.pid, "closed")
    finally:
        for conn in conns:
            conn.close()
        monitor.terminate()
        monitor.wait(30)
    assert [k for k in opened if not k.startswith("_")] == [*NETSTAT_COLUMNS, "event"]  # _Source: local runs
    assert closed["first_seen"] == opened["first_seen"] and closed["last_seen"] >= opened["first_seen"]
    assert closed["collected_at"] > opened["collected_at"] >= present["collected_at"]
    assert closed["remote_port"] == after.port and closed["process_path"] == PYTHON
    assert closed_before["first_seen"] == present["first_seen"]


def _evtx_writer():
    """tests/sources/evtx_writer.py (Sysmon-shaped EVTX files for tests), loaded by path; skip when absent."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "sources" / "evtx_writer.py"
    if not path.is_file():
        pytest.skip("tests/sources/evtx_writer.py is not there to write Sysmon EVTX files")
    spec = importlib.util.spec_from_file_location("connhunt_evtx_writer", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sysmon_artifact_reads_event_3_and_22(velociraptor_binary: Path, tmp_path: Path) -> None:
    """The Windows-only artifact's queries, run here on Sysmon EVTX files written for the test."""
    w = _evtx_writer()
    logged = w.utc("2026-11-20T10:00:00")
    image = r"C:\Users\bob\AppData\Local\Temp\updater.exe"
    net = [("ProcessGuid", "{1}"), ("Protocol", "tcp"), ("SourceIsIpv6", "false"), ("DestinationIsIpv6", "false")]
    events = {
        "outbound": w.sysmon_event(3, 1, "WS01", logged, [
            ("UtcTime", "2026-11-20 10:00:00.123"), ("ProcessId", "4242"), ("Image", image), ("User", r"CORP\bob"),
            *net, ("Initiated", "true"), ("SourceIp", "10.0.0.5"), ("SourcePort", "50123"),
            ("DestinationIp", "203.0.113.50"), ("DestinationHostname", "c2.example"), ("DestinationPort", "4444")]),
        "inbound": w.sysmon_event(3, 2, "WS01", logged, [
            ("UtcTime", "2026-11-20 10:00:02.000"), ("ProcessId", "4"), ("Image", "System"), ("User", "SYSTEM"),
            *net, ("Initiated", "false"), ("SourceIp", "10.0.0.9"), ("SourcePort", "40000"),
            ("DestinationIp", "10.0.0.5"), ("DestinationPort", "445")]),
        "dns": w.sysmon_event(22, 3, "WS01", logged, [
            ("UtcTime", "2026-11-20 10:00:01.000"), ("ProcessGuid", "{1}"), ("ProcessId", "4242"),
            ("QueryName", "c2.example"), ("QueryStatus", "0"),
            ("QueryResults", "type:  5 cdn.c2.example;::ffff:203.0.113.50;"), ("Image", image)]),
    }
    for name, event in events.items():  # one file per event: the glob reads them all
        (tmp_path / f"{name}.evtx").write_bytes(w.write_evtx([(1, logged, event)]))

    def collect(*args: str, artifact: str = "Custom.Connhunt.Windows.SysmonNetwork",
                glob_param: str = "EvtxGlob") -> list[dict]:
        proc = subprocess.run(
            [str(velociraptor_binary), "--definitions", str(artifacts_dir("velociraptor")), "artifacts", "collect",
             artifact, "--args", f"{glob_param}={tmp_path}/*.evtx", *args, "--format", "jsonl"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path)
        return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]

    rows = collect()
    conns = sorted((r for r in rows if r["_Source"].endswith("/Connections")), key=lambda r: r["pid"])
    dns = [r for r in rows if r["_Source"].endswith("/DNS")]
    assert [(c["pid"], c["local_port"], c["remote_ip"], c["remote_port"]) for c in conns] == [
        (4, 445, "10.0.0.9", 40000), (4242, 50123, "203.0.113.50", 4444)]  # inbound: the peer is the source
    assert conns[1]["process_name"] == "updater.exe" and conns[1]["remote_hostname"] == "c2.example"
    assert conns[1]["first_seen"] == 1795168800 and conns[1]["source"] == "sysmon"
    assert [(d["query"], d["answers"], d["response_code"]) for d in dns] == [
        ("c2.example", ["cdn.c2.example", "::ffff:203.0.113.50"], "NOERROR")]
    assert collect("--args", "DateAfter=2026-11-21") == []
    assert len(collect("--args", "DateBefore=2026-11-21", "--args", "IncludeInbound=N")) == 2
    # Custom.Connhunt.DNS reuses the Sysmon DNS source (its WMI cache source needs Windows).
    from_dns = [r for r in collect(artifact="Custom.Connhunt.DNS", glob_param="SysmonEvtxGlob")
                if r["_Source"].endswith("/WindowsSysmon")]
    assert [{k: v for k, v in r.items() if k not in ("_Source", "collected_at")} for r in from_dns] == [
        {k: v for k, v in r.items() if k not in ("_Source", "collected_at")} for r in dns]
