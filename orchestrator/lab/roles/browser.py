"""Benign: a browser opening bursts of short connections to several web hosts (80 and 443) after name lookups."""

from __future__ import annotations

import random
import socket
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, resolve, setup, sleep_until, tcp_exchange, ticks  # noqa: E402

SITES = ("www.example.com", "static.example.com", "cdn.example.com", "api.example.com", "intranet.corp.example.org")


def fetch(name: str) -> None:
    addr = resolve(name)
    if addr:
        port = random.choice((443, 443, 443, 80))
        tcp_exchange(addr, port, b"GET / HTTP/1.1\r\nHost: " + name.encode() + b"\r\n\r\n",
                     hold=random.uniform(0.2, 2.5))


def main() -> None:
    args = parser("browser-like client").parse_args()
    deadline = setup(args)
    socket.setdefaulttimeout(5)
    for _ in ticks(deadline):
        workers = [threading.Thread(target=fetch, args=(random.choice(SITES),), daemon=True)
                   for _ in range(random.randint(2, 6))]
        for w in workers:
            w.start()
        for w in workers:
            w.join(10)
        if not sleep_until(deadline, random.uniform(2, 8)):
            return


if __name__ == "__main__":
    main()
