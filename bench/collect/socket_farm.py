"""Hold N established loopback TCP connections open (N client ends + N server ends) for the collection benchmark.

Two helper processes, one accepting and one connecting, so each stays well under its file-descriptor limit.
Both exit when their stdin closes, so the farm can never outlive the benchmark that started it.
"""

from __future__ import annotations

import resource
import selectors
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

READY_TIMEOUT_S = 120.0
# Linger on, timeout 0: closing resets the connection instead of leaving 10,000 TIME_WAIT sockets that would
# swell the socket table of the next run (for 60 s) and make back-to-back runs incomparable.
_ABORT_ON_CLOSE = struct.pack("ii", 1, 0)


def _raise_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, hard), max(want, hard)))
    except (ValueError, OSError):
        # Not root: only the soft limit can move, and only up to the hard one.
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def _serve(count: int) -> None:
    _raise_nofile(count + 64)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    print(listener.getsockname()[1], flush=True)
    accepted = []
    deadline = time.monotonic() + READY_TIMEOUT_S
    listener.settimeout(1.0)
    while len(accepted) < count and time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT_ON_CLOSE)
        accepted.append(conn)
    print(f"accepted {len(accepted)}", flush=True)
    sys.stdin.read()  # hold until the benchmark closes our stdin


def _connect(count: int, port: int) -> None:
    _raise_nofile(count + 64)
    conns = []
    for _ in range(count):
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT_ON_CLOSE)
        conns.append(conn)
    print(f"connected {len(conns)}", flush=True)
    sys.stdin.read()


@dataclass
class Farm:
    """A running pair of helper processes; ``close()`` tears both down."""

    server: subprocess.Popen[str]
    client: subprocess.Popen[str]
    port: int
    count: int

    def close(self) -> None:
        for proc in (self.client, self.server):
            if proc.poll() is None:
                try:
                    proc.stdin.close()  # type: ignore[union-attr]
                except OSError:
                    pass
        for proc in (self.client, self.server):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def __enter__(self) -> Farm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
    try:
        if not sel.select(timeout):
            raise TimeoutError(f"helper {proc.args!r} said nothing in {timeout:.0f} s")
        return proc.stdout.readline().strip()  # type: ignore[union-attr]
    finally:
        sel.close()


def start_farm(count: int) -> Farm:
    """Start the helpers and return once ``count`` connections are established on both ends."""
    popen = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    server = subprocess.Popen([sys.executable, __file__, "serve", str(count)], **popen)  # type: ignore[call-overload]
    client = None
    try:
        port = int(_readline(server, 30))
        client = subprocess.Popen([sys.executable, __file__, "connect", str(count), str(port)], **popen)  # type: ignore[call-overload]
        got = _readline(client, READY_TIMEOUT_S)
        accepted = _readline(server, READY_TIMEOUT_S)
        if got != f"connected {count}" or accepted != f"accepted {count}":
            raise RuntimeError(f"socket farm incomplete: {got!r}, {accepted!r}")
        return Farm(server, client, port, count)
    except BaseException:
        for proc in (client, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        raise


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        _serve(int(sys.argv[2]))
    else:
        _connect(int(sys.argv[2]), int(sys.argv[3]))
