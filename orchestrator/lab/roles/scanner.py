"""Malicious (T1046): a connect scan of the internal range from a compromised host.

Some targets answer, some ports are closed (RST), and some targets drop SYNs, so half-open sockets linger in SYN_SENT.
The rate is limited so the sweep spans the run, as a careful operator's would.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, setup, sleep_until  # noqa: E402

PORTS = (21, 22, 23, 80, 135, 139, 443, 445, 3389, 5985)
MAX_TARGETS = 2000


def targets(ranges: list[str]) -> list[tuple[str, int]]:
    hosts = [str(h) for r in ranges for h in ipaddress.ip_network(r, strict=False).hosts()]
    return [(h, port) for h in hosts for port in PORTS][:MAX_TARGETS]


def main() -> None:
    p = parser("internal connect scan")
    p.add_argument("--rate", type=float, default=6.0, help="new connects per second")
    p.add_argument("--timeout", type=float, default=4.0, help="seconds before a silent target is given up")
    p.add_argument("--start-delay", type=float, default=15.0)
    p.add_argument("ranges", nargs="+")
    args = p.parse_args()
    deadline = setup(args)
    todo = targets(args.ranges)
    if not sleep_until(deadline, args.start_delay):
        return
    pending: dict[socket.socket, float] = {}
    open_ports: list[tuple[str, int]] = []
    next_start = time.monotonic()
    while (todo or pending) and time.monotonic() < deadline:
        now = time.monotonic()
        while todo and now >= next_start:
            target = todo.pop(0)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            if sock.connect_ex(target) in (0, 115):  # 115: EINPROGRESS
                pending[sock] = now
            else:
                sock.close()
            next_start += 1.0 / args.rate
        writable: list[socket.socket] = []
        if pending:
            _, writable, _ = select.select([], list(pending), [], 0.1)
        else:
            time.sleep(0.1)
        for sock in writable:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                open_ports.append(sock.getpeername())
            pending.pop(sock)
            sock.close()
        for sock, started in list(pending.items()):
            if time.monotonic() - started > args.timeout:
                pending.pop(sock)
                sock.close()
    for sock in pending:
        sock.close()
    print(f"open: {open_ports}", file=sys.stderr)


if __name__ == "__main__":
    main()
