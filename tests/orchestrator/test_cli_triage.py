"""`connhunt triage` and `connhunt collect` for real on this host, with a real process holding loopback sockets:
Ctrl-C saves, scores and exits 130; raw data and the report have their own flags; the collector's options reach
it; a closed stdout is not a failed collection; bad output paths fail before the collection period."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psutil
import pytest

from orchestrator.cli_common import interrupted, interruptible, reports_errors
from tests.conftest import ROOT, run_connhunt

ENTRY = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
# A listener and one connection to it, both held by this child until it is killed.
_HOLDER = """
import socket, sys, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
client = socket.create_connection(server.getsockname())
peer, _ = server.accept()
print(server.getsockname()[1], client.getsockname()[1], flush=True)
time.sleep(120)
"""
ROW_FIELDS = ("kind", "protocol", "family", "local_ip", "local_port", "remote_ip", "remote_port", "state", "pid",
              "process_name", "process_path", "attributed")


@dataclass(frozen=True)
class Holder:
    pid: int
    listen_port: int
    client_port: int

    def connection_rows(self) -> list[dict[str, object]]:
        """The two ends of its connection as the collector must report them (ROW_FIELDS only)."""
        proc = psutil.Process(self.pid)
        same = {"kind": "connection", "protocol": "tcp", "family": "ipv4", "local_ip": "127.0.0.1",
                "remote_ip": "127.0.0.1", "state": "ESTABLISHED", "pid": self.pid, "process_name": proc.name(),
                "process_path": proc.exe(), "attributed": True}
        return sorted(({**same, "local_port": self.client_port, "remote_port": self.listen_port},
                       {**same, "local_port": self.listen_port, "remote_port": self.client_port}),
                      key=lambda r: r["local_port"])


@pytest.fixture
def holder() -> Iterator[Holder]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        listen_port, client_port = map(int, proc.stdout.readline().split())  # its sockets exist from here on
        yield Holder(proc.pid, listen_port, client_port)
    finally:
        proc.kill()
        proc.wait(10)


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _rows_of(records: list[dict[str, object]], holder: Holder) -> list[dict[str, object]]:
    """The holder's connection records, one per socket (the collector writes each once), in ROW_FIELDS."""
    ports = {holder.listen_port, holder.client_port}
    rows = [{k: r.get(k) for k in ROW_FIELDS} for r in records
            if r.get("kind") == "connection" and r.get("pid") == holder.pid and r.get("remote_port") in ports]
    return sorted(rows, key=lambda r: r["local_port"])


@pytest.mark.parametrize("delay", [0.2, 1.5, 3.0])
def test_ctrl_c_saves_scores_and_exits_130(tmp_path: Path, holder: Holder, delay: float) -> None:
    raw = tmp_path / "raw.jsonl"
    proc = subprocess.Popen([*ENTRY, "triage", "--duration", "120", "--interval", "0.5", "--format", "json",
                             "--min-risk", "low", "--save-raw", str(raw), "--verbose"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the note printed when collection starts
        assert first.startswith("collecting this host's connections for 120 s"), first
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr == "interrupted: scoring what was collected\n"  # no traceback, no "Query interrupted"
    hunt = json.loads(stdout)["hunt"]
    assert hunt["notes"] == [f"raw observations saved to {raw}", "collection was stopped early by a signal; "
                             "the report covers what was collected until then"]
    saved = _records(raw)
    assert hunt["rows"]["connections"] == sum(1 for r in saved if r["kind"] == "connection") > 0
    assert _rows_of(saved, holder) == holder.connection_rows()


def test_ctrl_c_during_collect_writes_everything_and_exits_130(tmp_path: Path, holder: Holder) -> None:
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([*ENTRY, "collect", "--duration", "120", "--interval", "0.5", "-o", str(out), "-v"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith("collecting this host's connections for 120 s"), first
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = _records(out)
    counts = {kind: sum(1 for r in saved if r["kind"] == kind) for kind in ("connection", "dns", "health")}
    assert (proc.returncode, stdout) == (130, "")
    assert stderr == (f"wrote {counts['connection']} connections, {counts['dns']} DNS queries, {counts['health']} "
                      f"health notes to {out} (stopped early by a signal)\n")
    assert _rows_of(saved, holder) == holder.connection_rows()


def test_a_signal_during_duckdb_work_only_sets_the_flag() -> None:
    """The cause of "RuntimeError: Query interrupted": SIGINT reaching a DuckDB query. Inside a command's
    interruptible() scope the query runs to the end and the command learns of the signal afterwards."""
    con = duckdb.connect()

    @reports_errors
    def command() -> int:
        with interruptible():
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
            row = con.execute("SELECT count(*) FROM range(200000000) t(x) WHERE x % 7 = 3").fetchone()
            assert interrupted()
            return int(row[0]) if row else -1

    assert command() == len(range(3, 200_000_000, 7))


def test_raw_data_and_report_have_their_own_flags(tmp_path: Path, holder: Holder) -> None:
    report, raw = tmp_path / "report.html", tmp_path / "raw.jsonl"
    result = run_connhunt("triage", "--duration", "1", "--interval", "0.5", "--format", "html", "-o", str(report),
                          "--save-raw", str(raw), "--max-hash-bytes", "0", "--no-listening")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert report.read_text().lstrip().lower().startswith("<!doctype html>")
    saved = _records(raw)
    assert _rows_of(saved, holder) == holder.connection_rows()
    # --max-hash-bytes 0 hashes nothing; --no-listening keeps no listening socket of the holder
    assert all(r.get("exe_sha256") is None for r in saved if r["kind"] == "connection")
    assert not [r for r in saved if r.get("local_port") == holder.listen_port and r.get("remote_port") in (None, 0)]


def test_collect_passes_hash_size_and_listeners_to_the_collector(tmp_path: Path, holder: Holder) -> None:
    out = tmp_path / "out.jsonl"
    result = run_connhunt("collect", "--duration", "1", "--interval", "0.5", "-o", str(out),
                          "--max-hash-bytes", "-1", "--include-listening")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    saved = _records(out)
    assert _rows_of(saved, holder) == holder.connection_rows()
    digest = hashlib.sha256(Path(psutil.Process(holder.pid).exe()).read_bytes()).hexdigest()
    assert {r["exe_sha256"] for r in saved if r.get("pid") == holder.pid} == {digest}
    # the listening socket: a listener record once the collector emits them, a LISTEN "connection" before that
    listening = [r for r in saved if r.get("pid") == holder.pid and r.get("local_port") == holder.listen_port
                 and (r["kind"] == "listener" or r.get("state") == "LISTEN")]
    assert len(listening) == 1, listening


def test_a_closed_stdout_is_not_a_failed_collection(holder: Holder) -> None:
    """`connhunt collect -o - | head -c 10`: the reader is gone before the first line is written."""
    proc = subprocess.Popen([*ENTRY, "collect", "--duration", "1", "-o", "-"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=60)
    assert (proc.returncode, stderr) == (141, "")


@pytest.mark.parametrize("flag", ["--save-raw", "-o"])
@pytest.mark.parametrize("target", ["directory", "missing folder", "unwritable"])
def test_an_unusable_output_fails_before_collecting(tmp_path: Path, flag: str, target: str) -> None:
    path, reason = {"directory": (tmp_path, "is a directory"),
                    "missing folder": (tmp_path / "no" / "out.jsonl", f"no such folder {tmp_path / 'no'}"),
                    # sysfs refuses new files even to root
                    "unwritable": (Path("/sys/kernel/connhunt-test.out"), "Permission denied")}[target]
    what = "raw observations" if flag == "--save-raw" else "report"
    started = time.monotonic()
    result = run_connhunt("triage", "--duration", "60", flag, str(path))
    assert time.monotonic() - started < 30  # before the 60 s collection, not after it
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"connhunt: error: {path}: cannot write the {what}: {reason}\n"


def test_a_missing_baseline_fails_before_collecting(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_connhunt("triage", "--duration", "60", "--baseline", str(tmp_path / "none.duckdb"))
    assert time.monotonic() - started < 30
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"connhunt: error: {tmp_path / 'none.duckdb'}: no such baseline file "
                             "(make one with connhunt baseline)\n")
