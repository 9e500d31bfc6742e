"""Benign: an ssh session to the jump host, long-lived, with ServerAlive keepalives; or (``--interactive``) an
admin typing a command every 8-15 s into a login shell on a lab host's sshd."""

from __future__ import annotations

import random
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, resolve, setup, sleep_until, ticks  # noqa: E402

KEEPALIVE = b"\x00\x00\x00\x0c\x0a" + bytes(11)
ADMIN_COMMANDS = (b"uptime\n", b"df -h /\n", b"systemctl is-system-running\n", b"ls /var/log\n", b"free -m\n")


def main() -> None:
    p = parser("ssh-like client")
    p.add_argument("--name", default="jump.corp.example.org")
    p.add_argument("--interactive", action="store_true", help="type commands instead of sending keepalives")
    args = p.parse_args()
    deadline = setup(args)
    for _ in ticks(deadline):
        addr = resolve(args.name)
        try:
            if addr is None:
                raise OSError("no address")
            with socket.create_connection((addr, 22), timeout=5) as sock:
                sock.recv(256)
                sock.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
                for i in ticks(deadline):
                    if not sleep_until(deadline, random.uniform(8, 15) if args.interactive else 15):
                        return
                    sock.sendall(ADMIN_COMMANDS[i % len(ADMIN_COMMANDS)] if args.interactive else KEEPALIVE)
                    if not sock.recv(256):
                        break
        except OSError:
            pass
        sleep_until(deadline, 5)


if __name__ == "__main__":
    main()
