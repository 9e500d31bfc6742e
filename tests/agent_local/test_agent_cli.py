"""``python -m agent_local``: JSONL that the orchestrator's schema accepts, signals, exit codes, psutil only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from agent_helpers import CHILD_ENV, HOLD_CONNECTION, REPO, one_connection, readline, run_as_nobody

from agent_local import CONNECTION_FIELDS, DNS_FIELDS, HEALTH_FIELDS, LISTENER_FIELDS
from orchestrator.schema import (
    CONNECTION_COLUMNS,
    DNS_COLUMNS,
    HEALTH_COLUMNS,
    LISTENER_COLUMNS,
    normalise_connection,
    normalise_dns,
    normalise_health,
    normalise_listener,
)


def _run(*args: str, timeout: float = 60, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "agent_local", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=CHILD_ENV)


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_fields_match_the_orchestrator_schema():
    def without_identity(columns):
        return tuple(name for name, _ in columns if name != "process_identity")

    assert CONNECTION_FIELDS == without_identity(CONNECTION_COLUMNS)
    assert DNS_FIELDS == without_identity(DNS_COLUMNS)
    assert HEALTH_FIELDS == without_identity(HEALTH_COLUMNS)
    assert LISTENER_FIELDS == without_identity(LISTENER_COLUMNS)


def test_jsonl_parses_with_the_schema(children, listener, tmp_path):
    child = children.python(HOLD_CONNECTION, str(listener.port))
    port = int(readline(child))
    out = tmp_path / "out.jsonl"
    done = _run("--duration", "0.5", "--interval", "0.25", "-o", str(out), "--host", "ws01")
    assert done.returncode == 0, done.stderr
    records = _lines(out.read_text())
    assert records
    normalisers = {"connection": normalise_connection, "listener": normalise_listener, "dns": normalise_dns,
                   "health": normalise_health}
    for record in records:
        row = normalisers[record["kind"]](record)
        assert row["host"] == "ws01"
        if record["kind"] == "connection":
            assert set(record) == {"kind", *CONNECTION_FIELDS}
            assert record["host_id"] == "ws01" and record["collected_at"].endswith("Z")
        elif record["kind"] == "listener":
            assert set(record) == {"kind", *LISTENER_FIELDS}
    [ours] = [r for r in records if r["kind"] == "listener" and r["local_port"] == listener.port]
    assert (ours["pid"], ours["protocol"], ours["local_ip"]) == (os.getpid(), "tcp", "127.0.0.1")
    mine = one_connection(records, port, listener.port)
    row = normalise_connection(mine)
    assert row["pid"] == child.pid and 2 <= row["observations"] <= 3 and row["attributed"] is True
    assert row["process_identity"] == os.path.realpath(sys.executable)


def test_stdout_output_and_summary_on_stderr():
    done = _run("--duration", "0", "-o", "-")
    assert done.returncode == 0, done.stderr
    assert all("kind" in r for r in _lines(done.stdout))
    assert "agent_local: wrote" in done.stderr
    quiet = _run("--duration", "0", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_sigterm_mid_run_writes_what_was_collected(children, listener, tmp_path):
    child = children.python(HOLD_CONNECTION, str(listener.port))
    port = int(readline(child))
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "agent_local", "--duration", "60", "--interval", "0.1", "-o",
                             str(out), "--quiet"], cwd=REPO, env=CHILD_ENV, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
    records = _lines(out.read_text())
    mine = one_connection(records, port, listener.port)
    assert mine["observations"] >= 3
    assert mine["pid"] == child.pid


def test_sigint_too(tmp_path):
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "agent_local", "--duration", "60", "-o", str(out)], cwd=REPO,
                            env=CHILD_ENV, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert "stopped early" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.parametrize("args", [["--interval", "0"], ["--duration", "-1"], ["--bogus"], ["--max-hash-bytes", "x"]])
def test_bad_usage_exits_2(args):
    assert _run(*args).returncode == 2


def test_unwritable_output_exits_3(tmp_path):
    done = _run("--duration", "0", "-o", str(tmp_path / "missing" / "out.jsonl"))
    assert done.returncode == 3 and "cannot write" in done.stderr


def test_dns_without_dnspython_is_a_clear_error():
    code = ("import sys; sys.modules['dns'] = None\n"
            "from agent_local.cli import main; sys.exit(main(['--dns', '--duration', '0']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO,
                          env=CHILD_ENV)
    assert done.returncode == 2
    assert "needs dnspython" in done.stderr


def test_runs_with_psutil_and_the_standard_library_alone():
    # Refuse every import that is neither the standard library, psutil nor agent_local itself.
    code = """
import sys
class Only:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in ("psutil", "agent_local") or top.startswith("_"):
            return None
        raise ImportError(f"agent_local imported {name}")
sys.meta_path.insert(0, Only())
from agent_local.cli import main
sys.exit(main(["--duration", "0.2", "--interval", "0.1", "--quiet"]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO,
                          env=CHILD_ENV)
    assert done.returncode == 0, done.stderr
    assert _lines(done.stdout)


def test_not_root_still_works_and_says_what_it_could_not_see(listener, children):
    # A connection owned by root, which nobody can see but not attribute.
    child = children.python(HOLD_CONNECTION, str(listener.port))
    port = int(readline(child))
    done = run_as_nobody("--duration", "0.3", "--interval", "0.1", "-o", "-")
    assert done.returncode == 0, done.stderr
    assert "not running as root" in done.stderr
    records = _lines(done.stdout)
    mine = one_connection(records, port, listener.port)
    assert mine["attributed"] is False and mine["pid"] is None and mine["process_path"] is None
    assert mine["username"] == "root"  # the socket table still names the owning user
    health = {r["check"]: r for r in records if r["kind"] == "health"}
    assert health["not_root"]["count"] > 0 and "not root" in health["not_root"]["message"]
    assert health["unattributed_sockets"]["count"] >= 1
    assert "may not inspect" in health["unattributed_sockets"]["message"]
    assert all(normalise_health(r)["message"] for r in health.values())


def test_dns_capture_without_privilege_is_a_health_record_not_a_failure():
    pytest.importorskip("dns.message")
    done = run_as_nobody("--dns", "--duration", "0", "-o", "-")
    assert done.returncode == 0, done.stderr
    [health] = [r for r in _lines(done.stdout) if r["kind"] == "health" and r["check"] == "dns_capture"]
    assert "not captured" in health["message"]
    assert "not captured" in done.stderr


def test_not_root_still_sees_raw_sockets_of_others(children):
    from test_agent_raw import HOLD_RAW_ICMP

    if os.geteuid() != 0:
        pytest.skip("needs root to open the raw socket")
    child = children.python(HOLD_RAW_ICMP)
    assert readline(child) == "ready"
    done = run_as_nobody("--duration", "0", "-o", "-")
    assert done.returncode == 0, done.stderr
    raw = [r for r in _lines(done.stdout) if r["kind"] == "connection" and r["protocol"] == "raw"]
    assert any(r["state"] == "PROTO_1" and r["attributed"] is False and r["username"] == "root" for r in raw), raw
