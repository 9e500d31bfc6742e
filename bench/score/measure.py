"""Run one benchmark step as a fresh subprocess and measure its wall time and peak RSS.

Peak RSS is the kernel's own figure for the step, read by GNU time (``/usr/bin/time -f %M``) around it. Not
``os.wait4`` on our own child: Linux carries the forking process's high-water RSS into the child's ru_maxrss at
exec, so a harness that has just generated a fleet would report its own 2 GiB for a 300 MiB step. /usr/bin/time
is small when it forks the step, so its figure is the step's. A watcher thread polls the process tree with psutil
only to stop a run that passes the time or memory limit, so a runaway scorer cannot take the shared machine down.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Measured:
    argv: tuple[str, ...]
    wall_s: float
    peak_rss_mib: float
    exit_code: int
    stopped: str | None  # "timeout" / "memory" when the watcher stopped it
    stdout: Path
    stderr_tail: str


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        tree = [proc, *proc.children(recursive=True)]
    except psutil.Error:  # it has just exited
        return 0
    for p in tree:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(argv: list[str], stdout: Path, *, timeout_s: float, max_rss_mib: float, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> Measured:
    """Run ``argv`` with stdout to a file; stop it past ``timeout_s`` or ``max_rss_mib`` (tree RSS)."""
    stderr = stdout.with_suffix(stdout.suffix + ".stderr")
    rss_file = stdout.with_suffix(stdout.suffix + ".maxrss")
    rss_file.unlink(missing_ok=True)
    wrapped = [TIME, "-f", "%M", "-o", str(rss_file), *argv] if Path(TIME).exists() else argv
    started = time.monotonic()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        child = subprocess.Popen(wrapped, stdout=out, stderr=err, cwd=cwd, env=env)
        stopped: list[str] = []
        polled = [0]  # the tree's largest RSS seen by polling: the fallback when time could not report
        done = threading.Event()

        def watch() -> None:
            try:
                proc = psutil.Process(child.pid)
            except psutil.Error:
                return
            while not done.wait(0.2):
                rss = _tree_rss(proc)
                polled[0] = max(polled[0], rss)
                reason = "timeout" if time.monotonic() - started > timeout_s else \
                    "memory" if rss > max_rss_mib * 1024 * 1024 else None
                if reason:
                    stopped.append(reason)
                    try:  # the step under /usr/bin/time, so that time still reports its peak; only what we started
                        steps = (proc.children(recursive=True) if wrapped is not argv else []) or [proc]
                        for p in steps:
                            p.kill()
                    except psutil.Error:
                        child.kill()
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, _usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        done.set()
        watcher.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    tail = stderr.read_text(errors="replace")[-2000:]
    kib = polled[0] // 1024  # only a fallback (sampled every 0.2 s), see the module docstring
    if rss_file.exists():
        words = rss_file.read_text().split()
        kib = int(words[-1]) if words and words[-1].isdigit() else kib
    code = child.returncode
    if wrapped is not argv and rss_file.exists():
        # GNU time exits with the step's status, and prints "Command exited with non-zero status N" before %M
        text = rss_file.read_text()
        if "terminated by signal" in text:
            code = -int(text.split("terminated by signal")[1].split()[0])
    return Measured(tuple(argv), round(wall, 2), round(kib / 1024, 1), code, stopped[0] if stopped else None,
                    stdout, tail)
