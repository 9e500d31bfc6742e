"""A child's loopback connection is attributed to the right process, with every process fact, by both backends."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import psutil
import pytest
from agent_helpers import HOLD_CONNECTION, has_ipv6, one_connection, readline

import agent_local
from agent_local import snapshot


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("backend", ["procfs", "psutil"])
def test_child_connection_attributed(children, listener, backend):
    marker = f"--marker=attr {backend}"
    child = children.python(HOLD_CONNECTION, str(listener.port), marker)
    port = int(readline(child))
    started = psutil.Process(child.pid).create_time()

    record = one_connection(snapshot(backend=backend), port, listener.port)

    exe = os.path.realpath(sys.executable)
    assert record["attributed"] is True
    assert record["pid"] == child.pid
    assert record["ppid"] == os.getpid()
    assert record["process_path"] == exe
    assert record["process_name"] == psutil.Process(child.pid).name()
    assert record["command_line"] == shlex.join([sys.executable, "-c", HOLD_CONNECTION, str(listener.port), marker])
    assert record["username"] == psutil.Process(child.pid).username()
    assert record["parent_name"] == psutil.Process().name()
    assert record["parent_path"] == exe
    assert record["exe_sha256"] == _sha256(exe)
    start = agent_local_time(record["process_start"])
    assert abs(start - started) < 1.5
    assert record["protocol"] == "tcp" and record["family"] == "ipv4" and record["state"] == "ESTABLISHED"
    assert (record["local_ip"], record["remote_ip"], record["remote_port"]) == ("127.0.0.1", "127.0.0.1",
                                                                                 listener.port)
    assert record["observations"] == 1 and record["first_seen"] == record["last_seen"]
    assert record["remote_hostname"] is None and record["source"] == "agent_local"
    assert set(record) == {"kind", *agent_local.CONNECTION_FIELDS}


def test_server_end_attributed_to_this_process(children, listener):
    child = children.python(HOLD_CONNECTION, str(listener.port))
    port = int(readline(child))
    assert _wait_accepted(listener, 1)
    server_ends = [r for r in snapshot() if r.get("remote_port") == port and r["local_port"] == listener.port]
    assert [r["pid"] for r in server_ends] == [os.getpid()]


def test_ipv6_connection(children):
    from agent_helpers import Listener

    if not os.path.exists("/proc/net/tcp6") or not has_ipv6():
        pytest.skip("no IPv6 loopback")
    lst = Listener("::1")
    try:
        child = children.python(
            "import socket,sys\nc=socket.create_connection(('::1', int(sys.argv[1])))\n"
            "print(c.getsockname()[1], flush=True)\nsys.stdin.read()", str(lst.port))
        port = int(readline(child))
        record = one_connection(snapshot(), port, lst.port)
        assert (record["family"], record["local_ip"], record["remote_ip"]) == ("ipv6", "::1", "::1")
        assert record["pid"] == child.pid
    finally:
        lst.close()


def test_deleted_exe_is_still_hashed(children, listener, tmp_path):
    # A copy of the interpreter that is deleted once running: malware often unlinks its own binary.
    original = os.path.realpath(sys.executable)
    copy = tmp_path / "dropper"
    shutil.copy2(original, copy)
    child = children.python(HOLD_CONNECTION, str(listener.port), executable=str(copy))
    port = int(readline(child))
    copy.unlink()

    record = one_connection(snapshot(), port, listener.port)
    assert record["process_path"] == f"{copy} (deleted)"
    assert record["exe_sha256"] == _sha256(original)


def test_hash_cap_skips_and_says_so(children, listener):
    child = children.python(HOLD_CONNECTION, str(listener.port))
    port = int(readline(child))
    records = list(agent_local.collect(0, 1, max_hash_bytes=1024))
    assert one_connection(records, port, listener.port)["exe_sha256"] is None
    health = [r for r in records if r["kind"] == "health" and r["check"] == "hash_skipped"]
    assert len(health) == 1 and health[0]["count"] >= 1
    assert os.path.realpath(sys.executable) in health[0]["message"]


def _wait_accepted(listener, count: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while len(listener.accepted) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(listener.accepted) >= count


def agent_local_time(text: str) -> float:
    from datetime import datetime

    assert text.endswith("Z")
    return datetime.fromisoformat(text[:-1] + "+00:00").timestamp()


def test_ipv4_mapped_peer_on_a_dual_stack_socket_reads_as_ipv4(children):
    import socket

    if not has_ipv6():
        pytest.skip("no IPv6")
    server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        server.bind(("::", 0))
        server.listen(4)
        child = children.python(HOLD_CONNECTION, str(server.getsockname()[1]))
        port = int(readline(child))
        conn, _ = server.accept()
        try:
            [server_end] = [r for r in snapshot() if r["kind"] == "connection" and r["remote_port"] == port
                            and r["pid"] == os.getpid()]
        finally:
            conn.close()
    finally:
        server.close()
    # The accepted socket lives in /proc/net/tcp6 as ::ffff:127.0.0.1; what went on the wire was IPv4.
    assert (server_end["family"], server_end["local_ip"], server_end["remote_ip"]) == ("ipv4", "127.0.0.1",
                                                                                       "127.0.0.1")


def test_command_line_with_invalid_utf8_stays_valid_text(children, listener):
    import json
    import subprocess

    from agent_helpers import CHILD_ENV

    proc = subprocess.Popen([sys.executable.encode(), b"-c", HOLD_CONNECTION.encode(), str(listener.port).encode(),
                             b"caf\xe9 \xff"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                            env=CHILD_ENV)
    children.procs.append(proc)
    port = int(readline(proc))
    record = one_connection(snapshot(), port, listener.port)
    assert record["command_line"].endswith("'caf\\xe9 \\xff'")
    json.dumps(record, ensure_ascii=False).encode("utf-8")  # no lone surrogates anywhere


def test_psutil_per_process_fallback_finds_our_connection(children, listener):
    # The path macOS takes when the system-wide table needs root: exercised here on its own.
    from agent_local.hashing import ExeHasher
    from agent_local.portable import PsutilSnapshotter

    child = children.python(HOLD_CONNECTION, str(listener.port))
    port = int(readline(child))
    conns, _denied = PsutilSnapshotter(ExeHasher())._per_process()
    mine = [c for c in conns if c.laddr and c.laddr.port == port and c.raddr and c.raddr.port == listener.port]
    assert [c.pid for c in mine] == [child.pid]


def test_rewritten_process_title_is_split_like_psutil(tmp_path):
    """A process that rewrote its title (setproctitle, as the lab's roles and many daemons do) leaves one
    space-separated string in /proc/PID/cmdline; it reads back as separate arguments, as psutil shows it."""
    import subprocess

    from agent_local.procfs import read_cmdline

    code = ("from orchestrator.lab.roles._common import set_proctitle; import sys, time; "
            "set_proctitle(['/var/tmp/dnsupd', '-f', '/etc/passwd']); print('ok', flush=True); time.sleep(10)")
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=root)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ok"
        assert read_cmdline(child.pid) == ["/var/tmp/dnsupd", "-f", "/etc/passwd"]
        assert read_cmdline(child.pid) == psutil.Process(child.pid).cmdline()
    finally:
        child.kill()
        child.wait()
