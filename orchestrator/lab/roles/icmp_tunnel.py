"""Malicious (T1095): a tunnel carrying data in ICMP echo payloads over a raw socket, at a steady rate."""

from __future__ import annotations

import os
import random
import socket
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, setup, sleep_until, ticks  # noqa: E402


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo(ident: int, seq: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq) + payload


def main() -> None:
    p = parser("icmp tunnel")
    p.add_argument("--peer", required=True)
    p.add_argument("--rate", type=float, default=2.0, help="packets per second")
    args = p.parse_args()
    deadline = setup(args)
    ident = random.getrandbits(16)
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        # Connected, so the socket table shows where the tunnel goes.
        sock.connect((args.peer, 0))
        sock.settimeout(0.5)
        for seq in ticks(deadline):
            sock.send(echo(ident, seq & 0xFFFF, b"TUN0" + os.urandom(508)))
            try:
                sock.recv(2048)
            except TimeoutError:
                pass
            if not sleep_until(deadline, 1.0 / args.rate):
                return


if __name__ == "__main__":
    main()
