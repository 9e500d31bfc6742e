"""Benign beacons on every host: the package updater (every 60 s to 443) and the metrics agent (every 10 s)."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, resolve, setup, sleep_until, tcp_exchange, ticks  # noqa: E402


def main() -> None:
    p = parser("package updater")
    p.add_argument("--name", default="updates.example.org")
    p.add_argument("--interval", type=float, default=60.0)
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--path", default="/dists/stable/InRelease")
    args = p.parse_args()
    deadline = setup(args)
    # Hosts booted at different times: each starts its schedule at its own offset.
    if not sleep_until(deadline, random.uniform(0, min(8.0, args.interval))):
        return
    # A timer, as cron or systemd would run it: check-ins start on schedule, however long each one takes.
    next_start = time.monotonic()
    for _ in ticks(deadline):
        addr = resolve(args.name)
        if addr:
            tcp_exchange(addr, args.port, f"GET {args.path} HTTP/1.1\r\nHost: {args.name}\r\n\r\n".encode(),
                         hold=1.5)
        next_start += args.interval * random.uniform(0.99, 1.01)
        if not sleep_until(deadline, next_start - time.monotonic()):
            return


if __name__ == "__main__":
    main()
