"""Run one benchmark step as a fresh subprocess and measure its wall time and peak RSS.

Peak RSS is the kernel's own figure for that child (``os.wait4``'s ru_maxrss, covering the descendants it waited
for); a watcher thread polls the process tree with psutil only to stop a run that passes the time or memory limit,
so a runaway scorer cannot take the shared machine down.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


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
    started = time.monotonic()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        child = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd, env=env)
        stopped: list[str] = []
        done = threading.Event()

        def watch() -> None:
            try:
                proc = psutil.Process(child.pid)
            except psutil.Error:
                return
            while not done.wait(0.2):
                reason = None
                if time.monotonic() - started > timeout_s:
                    reason = "timeout"
                elif _tree_rss(proc) > max_rss_mib * 1024 * 1024:
                    reason = "memory"
                if reason:
                    stopped.append(reason)
                    child.kill()  # only the child this run started
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        done.set()
        watcher.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    tail = stderr.read_text(errors="replace")[-2000:]
    # ru_maxrss is in KiB on Linux
    return Measured(tuple(argv), round(wall, 2), round(usage.ru_maxrss / 1024, 1), child.returncode,
                    stopped[0] if stopped else None, stdout, tail)
