"""A two-namespace test network: an endpoint namespace to triage, and a test host on 203.0.113.0/24 (RFC 5737).

Both ends of the veth live in namespaces the test creates, so nothing touches the root namespace and traffic goes
nowhere but between them. ``LiveNet`` removes its namespaces and kills its processes even when a test fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ENDPOINT_IP = "203.0.113.2"
TEST_HOST_IP = "203.0.113.50"

# A test host service: accept on each port, answer what each client expects, hold the connection a while.
SERVER = textwrap.dedent("""
    import socket, sys, threading, time
    BANNERS = {22: b"SSH-2.0-OpenSSH_9.2p1 Debian-2\\r\\n", 443: b"", 4444: b"ok\\n", 31337: b"ok\\n"}
    deadline = time.monotonic() + float(sys.argv[2])
    def serve(conn, port):
        try:
            conn.settimeout(5)
            if BANNERS[port]:
                conn.sendall(BANNERS[port])
            if port == 443:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 1000000\\r\\n\\r\\n")
                for _ in range(40):  # a slow download: the client stays connected
                    conn.sendall(b"x" * 64)
                    time.sleep(0.5)
            elif port == 22:
                time.sleep(30)
            else:
                conn.recv(64)
        except OSError:
            pass
        finally:
            conn.close()
    def listen(port):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((sys.argv[1], port)); s.listen(64); s.settimeout(1)
        while time.monotonic() < deadline:
            try:
                conn, _ = s.accept()
            except socket.timeout:
                continue
            threading.Thread(target=serve, args=(conn, port), daemon=True).start()
    for port in BANNERS:
        threading.Thread(target=listen, args=(port,), daemon=True).start()
    print("ready", flush=True)
    time.sleep(max(0.0, deadline - time.monotonic()))
""")

# A backdoor: call home every N seconds, a bounded number of times.
BEACON = textwrap.dedent("""
    import socket, sys, time
    host, port, every, count = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    for _ in range(count):
        try:
            with socket.create_connection((host, port), timeout=3) as s:
                s.sendall(b"beacon\\n"); s.recv(64); time.sleep(1.2)
        except OSError:
            pass
        time.sleep(max(0.0, every - 1.2))
""")


class LiveNet:
    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.endpoint = f"chT-ep{tag}"
        self.host = f"chT-th{tag}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="connhunt-test-", dir="/tmp"))

    def __enter__(self) -> LiveNet:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)

    def _build(self) -> None:
        for ns in (self.endpoint, self.host):
            self._ip("netns", "add", ns)
            self._ip("-n", ns, "link", "set", "lo", "up")
        # Created inside the endpoint namespace, peer moved straight into the test host's: never in the root ns.
        self._ip("-n", self.endpoint, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns",
                 self.host)
        for ns, dev, addr in ((self.endpoint, "veth0", ENDPOINT_IP), (self.host, "veth1", TEST_HOST_IP)):
            self._ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            self._ip("-n", ns, "link", "set", dev, "up")

    def spawn(self, ns: str, argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], start_new_session=True, **kwargs)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def start_test_host(self, seconds: float) -> None:
        proc = self.spawn(self.host, [sys.executable, "-c", SERVER, TEST_HOST_IP, str(seconds)],
                          stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"

    def planted_binary(self, name: str) -> Path:
        """A copy of the Python interpreter under /tmp with a daemon-like name, as droppers leave them."""
        target = self.workdir / name
        shutil.copy2(os.path.realpath(sys.executable), target)
        return target

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for ns in (self.endpoint, self.host):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        shutil.rmtree(self.workdir, ignore_errors=True)


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False
