"""Start the lab's processes inside namespaces and stop every one of them, whatever happened."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Spawned:
    name: str
    ns: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class ProcessRegistry:
    """Every process the lab started; ``stop_all`` ends them (SIGTERM, then SIGKILL) and is safe to call twice."""

    log_dir: Path
    spawned: list[Spawned] = field(default_factory=list)

    def spawn(self, ns: str, name: str, argv: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Spawned:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            # ip netns exec execs the command, so the pid is the role itself; its own session lets us end its group.
            popen = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd=cwd)
        item = Spawned(name, ns, popen, log)
        self.spawned.append(item)
        return item

    def wait(self, items: list[Spawned], timeout: float) -> list[Spawned]:
        """Wait up to ``timeout`` seconds for ``items`` to exit by themselves; returns those still running."""
        end = time.monotonic() + timeout
        for item in items:
            try:
                item.popen.wait(max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        return [i for i in items if i.popen.poll() is None]

    def stop_all(self, grace: float = 3.0) -> None:
        running = [i for i in self.spawned if i.popen.poll() is None]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for item in running:
                try:
                    os.killpg(item.popen.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            running = self.wait(running, grace)
            if not running:
                break
        for item in self.spawned:
            if item.popen.poll() is None:
                item.popen.wait(5)


def kill_pids(pids: list[int]) -> None:
    """SIGKILL stray processes found inside a lab namespace (leftovers of a crashed run)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
