"""Benign: an ssh server giving an admin's session an interactive bash on a pseudo-terminal, as sshd does.

The login shell's stdio is the pty, never the socket (sshd keeps the socket and copies between the two), so an
interactive session looks nothing like a reverse shell. A connection that sends no client banner (a port scan) gets
no shell. No crypto: the lab's client speaks plain text after the banner exchange.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, setup, ticks  # noqa: E402

BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


def session(conn: socket.socket, deadline: float) -> None:
    with conn:
        conn.settimeout(10)
        try:
            conn.sendall(BANNER)
            if not conn.recv(256).startswith(b"SSH-"):
                return
        except OSError:
            return
        master, slave = os.openpty()
        shell = subprocess.Popen(["/bin/bash", "--norc", "--noprofile", "-i"], stdin=slave, stdout=slave,
                                 stderr=slave, start_new_session=True, cwd="/root",
                                 env={"PATH": "/usr/bin:/bin", "TERM": "xterm", "HOME": "/root", "PS1": "$ "})
        os.close(slave)
        conn.setblocking(False)
        try:
            for _ in ticks(deadline):
                ready, _, _ = select.select([conn, master], [], [], 1.0)
                if conn in ready:
                    data = conn.recv(4096)
                    if not data:
                        return
                    os.write(master, data)
                if master in ready:
                    conn.sendall(os.read(master, 4096))
        except OSError:
            return
        finally:
            shell.kill()
            shell.wait(5)
            os.close(master)


def main() -> None:
    p = parser("ssh server")
    p.add_argument("--port", type=int, default=22)
    args = p.parse_args()
    deadline = setup(args)
    server = socket.create_server(("0.0.0.0", args.port), backlog=16)
    server.settimeout(1.0)
    for _ in ticks(deadline):
        try:
            conn, _ = server.accept()
        except OSError:
            continue
        threading.Thread(target=session, args=(conn, deadline), daemon=True).start()


if __name__ == "__main__":
    main()
