"""The attacker at the keyboard (runs on the operator's box, no collector): connects in to a bind shell once it
listens and types a read-only command every 6-10 s, reconnecting if the session drops."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import connect_when_listening, parser, setup, sleep_until, ticks  # noqa: E402

COMMANDS = (b"id\n", b"hostname\n", b"pwd\n", b"ls -d /tmp\n")


def main() -> None:
    p = parser("bind-shell operator")
    p.add_argument("--target", required=True, help="HOST:PORT of the bind shell")
    p.add_argument("--source", help="the operator's own address to connect from")
    args = p.parse_args()
    deadline = setup(args)
    host, port = args.target.rsplit(":", 1)
    for _ in ticks(deadline):
        sock = connect_when_listening(host, int(port), deadline, source=args.source)
        if sock is None:
            return
        with sock:
            try:
                for i in ticks(deadline):
                    sock.sendall(COMMANDS[i % len(COMMANDS)])
                    sock.recv(4096)
                    if not sleep_until(deadline, random.uniform(6, 10)):
                        return
            except OSError:
                pass
        sleep_until(deadline, 2)


if __name__ == "__main__":
    main()
