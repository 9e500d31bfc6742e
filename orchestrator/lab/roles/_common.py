"""What every lab role shares: a hard deadline, a bounded loop, a realistic command line, clean exit on SIGTERM."""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Iterator

# No role loops forever: this caps every loop even if a deadline were mis-set.
MAX_ITERATIONS = 100_000
MAX_DURATION = 3600.0


def set_proctitle(argv: list[str]) -> None:
    """Show ``argv`` as this process's command line, the way setproctitle(3) does (nginx, sshd, postgres...).

    /proc/PID/cmdline is read from the argv area of the process's memory; when the area's last byte is not NUL, the
    kernel returns the text up to the first NUL, which psutil splits on spaces. Roles use it so that a disguised
    binary shows the command line a real one would, instead of "python role.py ...". (Shrinking the area to hold
    NUL-separated arguments exactly needs prctl(PR_SET_MM), i.e. CAP_SYS_RESOURCE, which sandboxes often drop.)
    """
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
        rest = stat[stat.rindex(")") + 2:].split()
        start, end = int(rest[45]), int(rest[46])
        size = end - start
        text = " ".join(argv).encode()[: max(0, size - 2)]
        area = text + b"\0" + b" " * (size - len(text) - 1)
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(area)
    except (OSError, ValueError, IndexError):
        pass  # cosmetic only: the role still runs with its original command line


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--duration", type=float, required=True, help="seconds to run, then exit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--title", default="", help="command line to show (setproctitle)")
    return p


def setup(args: argparse.Namespace) -> float:
    """Apply the title and seed, make SIGTERM a clean exit, and return the monotonic deadline."""
    if args.title:
        set_proctitle(args.title.split())
    random.seed(args.seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return time.monotonic() + min(args.duration, MAX_DURATION)


def ticks(deadline: float) -> Iterator[int]:
    """Iteration numbers until the deadline passes (bounded in count and time)."""
    for i in range(MAX_ITERATIONS):
        if time.monotonic() >= deadline:
            return
        yield i


def sleep_until(deadline: float, seconds: float) -> bool:
    """Sleep ``seconds`` but never past the deadline; False when the deadline has come."""
    remaining = deadline - time.monotonic()
    time.sleep(max(0.0, min(seconds, remaining)))
    return time.monotonic() < deadline


def resolve(name: str) -> str | None:
    """An IPv4 address for ``name`` through the host's configured resolver (glibc, /etc/resolv.conf)."""
    try:
        return socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except OSError:
        return None


def tcp_exchange(addr: str, port: int, payload: bytes, *, hold: float = 0.0, timeout: float = 5.0) -> bytes:
    """Connect, send, read one reply, keep the socket open ``hold`` seconds more, close. Errors return b""."""
    try:
        with socket.create_connection((addr, port), timeout=timeout) as sock:
            sock.sendall(payload)
            reply = sock.recv(65536)
            if hold > 0:
                time.sleep(hold)
            return reply
    except OSError:
        return b""


def drop_privileges(user: str) -> None:
    """Become ``user`` for good (group first), the way a service drops root after binding its port."""
    import pwd

    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ["HOME"] = entry.pw_dir


def connect_when_listening(addr: str, port: int, deadline: float, timeout: float = 5.0,
                           source: str | None = None) -> socket.socket | None:
    """Connect once the peer listens (retrying each second, never past the deadline); None if it never did."""
    for _ in ticks(deadline):
        try:
            return socket.create_connection((addr, port), timeout=timeout,
                                            source_address=(source, 0) if source else None)
        except OSError:
            if not sleep_until(deadline, 1.0):
                return None
    return None


# A home of the lab's own for the shells it starts as root: `bash -i` reads ~/.bashrc, and the machine's own (root's
# pyenv/cargo setup) must neither run nor be touched by the lab. Under the lab root, so teardown removes it.
LAB_HOME = "/opt/connhunt-lab/root"


def lab_shell_home() -> str:
    """Point HOME at the lab's own home (created empty) for this process and the shells it starts."""
    os.makedirs(LAB_HOME, exist_ok=True)
    os.environ["HOME"] = LAB_HOME
    return LAB_HOME
