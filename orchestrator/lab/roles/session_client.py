"""A client holding one connection to an internal server and sending a request now and then.

Benign as a database client (psql to PostgreSQL); malicious as an implant living inside a program that never
talks (T1055: a ``sleep`` holding a session to a relay). Same traffic shape on purpose: only who holds it differs.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import connect_when_listening, parser, setup, sleep_until, ticks  # noqa: E402


def main() -> None:
    p = parser("held session client")
    p.add_argument("--peer", required=True, help="HOST:PORT")
    p.add_argument("--message", default="SELECT 1;")
    p.add_argument("--every", type=float, nargs=2, default=(4.0, 12.0), metavar=("MIN", "MAX"))
    args = p.parse_args()
    deadline = setup(args)
    host, port = args.peer.rsplit(":", 1)
    for _ in ticks(deadline):
        sock = connect_when_listening(host, int(port), deadline)
        if sock is None:
            return
        with sock:
            try:
                for _ in ticks(deadline):
                    sock.sendall(args.message.encode() + b"\n")
                    if not sock.recv(4096):
                        break
                    if not sleep_until(deadline, random.uniform(*args.every)):
                        return
            except OSError:
                pass
        sleep_until(deadline, 2)


if __name__ == "__main__":
    main()
