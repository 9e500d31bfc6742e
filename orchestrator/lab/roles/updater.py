"""Benign: the package updater on every host, checking in with its update server every 60 s (a benign beacon)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, resolve, setup, sleep_until, tcp_exchange, ticks  # noqa: E402


def main() -> None:
    p = parser("package updater")
    p.add_argument("--name", default="updates.example.org")
    p.add_argument("--interval", type=float, default=60.0)
    args = p.parse_args()
    deadline = setup(args)
    # Hosts booted at different times: each starts its schedule at its own offset.
    if not sleep_until(deadline, random.uniform(0, 8)):
        return
    for _ in ticks(deadline):
        addr = resolve(args.name)
        if addr:
            tcp_exchange(addr, 443, b"GET /dists/stable/InRelease HTTP/1.1\r\nHost: " + args.name.encode()
                         + b"\r\n\r\n", hold=1.5)
        if not sleep_until(deadline, args.interval + random.uniform(-0.5, 0.5)):
            return


if __name__ == "__main__":
    main()
