"""Real processes and real sockets for the agent_local tests: children that connect, listeners that accept.

Every child is killed in teardown and every wait is bounded, so a failing test cannot leave processes behind or hang.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def readline(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> str:
    """One line from a child's stdout, or AssertionError after ``timeout`` seconds.

    The child's stdout is unbuffered here (bufsize=0), so select() never misses a line already read into a buffer.
    """
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
    try:
        if not sel.select(timeout):
            raise AssertionError(f"child {proc.pid} said nothing in {timeout} s")
        line = proc.stdout.readline()  # type: ignore[union-attr]
    finally:
        sel.close()
    if not line:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise AssertionError(f"child {proc.pid} exited ({proc.poll()}): {err}")
    return line.decode().strip()


class Children:
    """Starts Python children and kills whatever is left of them at teardown."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def python(self, code: str, *args: str, executable: str = sys.executable,
               prefix: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([*prefix, executable, "-c", code, *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=CHILD_ENV)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def children() -> Iterator[Children]:
    kids = Children()
    try:
        yield kids
    finally:
        kids.close()


class Listener:
    """A loopback TCP listener in this process that accepts and holds connections until closed."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    try:
        yield lst
    finally:
        lst.close()


def wait_until(predicate, timeout: float = 10.0, step: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


# A child that connects to 127.0.0.1:<port>, says its local port, and holds the connection until stdin closes.
HOLD_CONNECTION = """
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(c.getsockname()[1], flush=True)
sys.stdin.read()
"""

requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")


def run_as_nobody(*agent_args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m agent_local ARGS`` as the nobody user (skips the test where that cannot be done)."""
    import shutil

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop to the nobody user")
    probe = subprocess.run([*NOBODY, sys.executable, "-c", "import psutil"], capture_output=True, timeout=60,
                           cwd="/", env=CHILD_ENV)
    if probe.returncode != 0:
        pytest.skip(f"the nobody user cannot run {sys.executable} with psutil")
    return subprocess.run([*NOBODY, sys.executable, "-m", "agent_local", *agent_args], capture_output=True,
                          text=True, timeout=timeout, cwd="/", env=CHILD_ENV)


def one_connection(records: list[dict], local_port: int, remote_port: int) -> dict:
    """The one connection record between two loopback ports. Both ports, because a local port alone can also
    belong to an older connection still in TIME_WAIT towards another peer (ephemeral ports are reused)."""
    found = [r for r in records if r["kind"] == "connection" and r["local_port"] == local_port
             and r["remote_port"] == remote_port]
    assert len(found) == 1, f"expected one connection {local_port} -> {remote_port}, got {found}"
    return found[0]


def has_ipv6() -> bool:
    """Whether this machine can bind an IPv6 loopback socket (some sandboxes have no ::1)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False
