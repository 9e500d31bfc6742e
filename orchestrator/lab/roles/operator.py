"""The attacker at the keyboard (runs on the operator's box, no collector): connects in to a bind shell once it
listens and types a read-only command every 6-10 s, reconnecting if the session drops; or (``--exploit PATH``) sends
one command-injection request to a web server once it listens, and is done."""

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
    p.add_argument("--exploit", help="PATH?QUERY of a command-injection request to send once")
    args = p.parse_args()
    deadline = setup(args)
    host, port = args.target.rsplit(":", 1)
    if args.exploit:
        sock = connect_when_listening(host, int(port), deadline, source=args.source)
        if sock is not None:
            with sock:
                sock.sendall(f"GET {args.exploit} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/8.5.0\r\n\r\n"
                             .encode())
                sock.recv(4096)
        return
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
