"""Install the lab's disguised binaries: copies of the Python interpreter under realistic names and paths.

A copy (not a symlink) is what makes /proc/PID/exe, and so the collector's process_path, show e.g. /dev/shm/.x/xmrig.
The interpreter finds its standard library from its build prefix, so a copy anywhere still runs the role scripts.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from orchestrator.lab import scenarios

# Directories the lab may create for its binaries and files; removed at teardown when empty.
_OWNED_DIRS = ("/opt/connhunt-lab", "/tmp/.svc", "/dev/shm/.x", "/var/tmp/.p", "/var/tmp/.q", "/tmp/.n")


def interpreter() -> Path:
    """The real interpreter binary behind this (possibly venv) Python."""
    return Path(os.path.realpath(sys.executable))


def install(paths: list[str], source: Path | None = None) -> list[Path]:
    """Copy the interpreter to each path (atomically, so a running copy is never half-written)."""
    src = source or interpreter()
    installed = []
    for path in map(Path, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        shutil.copy2(src, tmp)
        tmp.chmod(0o755)
        os.replace(tmp, path)
        installed.append(path)
    return installed


def write_exfil_file(size: int) -> Path:
    """The "stolen" file the DNS exfiltration scenario leaks: a fake HR export, about ``size`` bytes."""
    path = Path(scenarios.EXFIL_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["employee_id,name,iban,salary"]
    n = 0
    while sum(len(x) + 1 for x in lines) < size and n < 100_000:
        lines.append(f"{10000 + n},Employee {n:05d},XX{n:02d}00000000000{n:06d},{40000 + 37 * n}")
        n += 1
    path.write_text("\n".join(lines) + "\n")
    return path


def remove_all() -> None:
    """Remove every binary and file the lab installs, and its own directories once empty."""
    for path in (*scenarios.role_binaries(), scenarios.EXFIL_FILE):
        Path(path).unlink(missing_ok=True)
    shutil.rmtree(scenarios.BENIGN_ROOT, ignore_errors=True)
    for directory in _OWNED_DIRS:
        try:
            Path(directory).rmdir()
        except OSError:
            pass  # absent, or holds something that is not the lab's
