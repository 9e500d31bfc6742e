"""Benign: a time daemon polling its NTP server over UDP 123 every 16 s from one socket."""

from __future__ import annotations

import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, resolve, setup, sleep_until, ticks  # noqa: E402


def main() -> None:
    p = parser("ntp-like client")
    p.add_argument("--name", default="ntp.example.org")
    p.add_argument("--poll", type=float, default=16.0)
    args = p.parse_args()
    deadline = setup(args)
    addr = None
    for _ in ticks(deadline):
        addr = resolve(args.name)
        if addr or not sleep_until(deadline, 2):
            break
    if addr is None:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((addr, 123))
        sock.settimeout(2)
        for _ in ticks(deadline):
            now = time.time() + 2208988800
            request = struct.pack("!BBbb3I2I2I2I2I", 0x23, 0, 4, -20, 0, 0, 0, 0, 0, 0, 0, 0, 0, int(now), 0)
            try:
                sock.send(request)
                sock.recv(128)
            except OSError:
                pass
            sleep_until(deadline, args.poll)


if __name__ == "__main__":
    main()
