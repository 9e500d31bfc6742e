"""Benign: a chat desktop app holding a keep-alive HTTPS-like session to its API on 443, reconnecting now and then."""

from __future__ import annotations

import random
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, resolve, setup, sleep_until, ticks  # noqa: E402


def main() -> None:
    p = parser("https-like client")
    p.add_argument("--name", default="api.example.com")
    args = p.parse_args()
    deadline = setup(args)
    if not sleep_until(deadline, random.uniform(0, 5)):
        return
    for _ in ticks(deadline):
        addr = resolve(args.name)
        if addr is None:
            sleep_until(deadline, 10)
            continue
        try:
            with socket.create_connection((addr, 443), timeout=5) as sock:
                # One session lasts a minute or two, with a small request every few seconds.
                for _ in range(random.randint(8, 20)):
                    sock.sendall(b"GET /v1/messages HTTP/1.1\r\nHost: " + args.name.encode() + b"\r\n\r\n")
                    sock.recv(65536)
                    if not sleep_until(deadline, random.uniform(3, 9)):
                        return
        except OSError:
            pass
        sleep_until(deadline, random.uniform(1, 4))


if __name__ == "__main__":
    main()
