"""Malicious (T1496): a cryptominer holding one long-lived stratum JSON-RPC connection to its pool on 3333."""

from __future__ import annotations

import json
import random
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, resolve, setup, sleep_until, ticks  # noqa: E402


def rpc(sock: socket.socket, mid: int, method: str, params: object) -> None:
    sock.sendall(json.dumps({"id": mid, "method": method, "params": params}).encode() + b"\n")


def main() -> None:
    p = parser("stratum miner")
    p.add_argument("--url", required=True, help="stratum+tcp://HOST:PORT")
    p.add_argument("--user", required=True)
    args = p.parse_args()
    deadline = setup(args)
    hostport = args.url.split("://", 1)[1]
    host, port = hostport.rsplit(":", 1)
    for _ in ticks(deadline):
        addr = resolve(host)
        try:
            if addr is None:
                raise OSError("pool name did not resolve")
            with socket.create_connection((addr, int(port)), timeout=10) as sock:
                sock.settimeout(1.0)
                rpc(sock, 1, "mining.subscribe", ["XMRig/6.21.0"])
                rpc(sock, 2, "mining.authorize", [args.user, "x"])
                mid = 3
                for _ in ticks(deadline):
                    try:
                        if not sock.recv(65536):
                            break
                    except TimeoutError:
                        pass
                    if random.random() < 0.08:  # a share found now and then
                        nonce, ntime, extra = (f"{random.getrandbits(32):08x}" for _ in range(3))
                        rpc(sock, mid, "mining.submit", [args.user, "1", extra, ntime, nonce])
                        mid += 1
        except OSError:
            pass
        sleep_until(deadline, 5)


if __name__ == "__main__":
    main()
