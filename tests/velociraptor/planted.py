"""The peer for the planted-process tests: a network namespace at 203.0.113.50 with a listener inside, and a copy
of the Python interpreter under /tmp to play the implant.

The namespace is reached through point-to-point /32s: this machine's package proxy lives in 203.0.113.0/24, so the
whole /24 must never be routed to a veth. Traffic goes only to that namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST_IP, PEER_IP, PORT = "203.0.113.1", "203.0.113.50", 4444


@dataclass
class Planted:
    """A planted process: its binary under /tmp and the running process."""

    path: Path
    proc: subprocess.Popen[str]


def run_cli(*args: str, tmp: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from orchestrator.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200", "CONNHUNT_DATA": str(tmp / "data")})


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


@contextmanager
def peer_namespace(prefix: str, listener_code: str) -> Iterator[tuple[Path, list[subprocess.Popen[str]]]]:
    """The namespace with ``listener_code`` running in it (it must print 'ready'); yields (workdir, procs).

    Processes the test appends to ``procs`` are stopped at exit, then the namespace and workdir are removed,
    however the test ends.
    """
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2 for a network namespace")
    tag = f"{os.getpid() % 100000}"
    ns, host_if, peer_if = f"{prefix}{tag}", f"{prefix}{tag}h", f"{prefix}{tag}n"
    workdir = Path(tempfile.mkdtemp(prefix="connhunt-test-", dir="/tmp"))
    procs: list[subprocess.Popen[str]] = []
    try:
        ip("netns", "add", ns)
        ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        ip("link", "set", peer_if, "netns", ns)
        ip("addr", "add", HOST_IP, "peer", f"{PEER_IP}/32", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("netns", "exec", ns, "ip", "addr", "add", PEER_IP, "peer", f"{HOST_IP}/32", "dev", peer_if)
        ip("netns", "exec", ns, "ip", "link", "set", peer_if, "up")
        ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        listener = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", listener_code],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(listener)
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        yield workdir, procs
    finally:
        _stop(procs)
        ip("netns", "del", ns, check=False)
        ip("link", "del", host_if, check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def planted_copy(workdir: Path, name: str = "updaterd") -> Path:
    """A copy of the interpreter with a daemon-like name, as droppers leave them."""
    path = workdir / name
    shutil.copy2(os.path.realpath(sys.executable), path)
    return path


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    """Processes reading stdin end when it closes; the others are killed."""
    for proc in reversed(procs):
        if proc.stdin:
            proc.stdin.close()
        else:
            proc.kill()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
