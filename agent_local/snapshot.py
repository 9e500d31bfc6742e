"""One system-wide socket snapshot: every socket with its owning process's facts, from the best backend here.

On Linux the /proc backend (agent_local.linux) is used: it is fast and sees raw sockets. Elsewhere, or when /proc
is missing, psutil's system-wide net_connections (agent_local.portable) is.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from agent_local.enrich import ProcessFacts
from agent_local.hashing import DEFAULT_MAX_HASH_BYTES, ExeHasher
from agent_local.netfiles import SocketRow

# Why a socket has no process: it was already closed (TIME_WAIT, no inode: nobody owns it any more), or its owner
# could not be seen (another user's process without root, or it exited between the socket table and the /proc pass).
CLOSED = "closed"
HIDDEN = "hidden"
EXITED = "exited"


class Observation(NamedTuple):
    sock: SocketRow
    facts: ProcessFacts | None
    unattributed: str | None  # None when attributed, else CLOSED / HIDDEN / EXITED
    # Whether fd 0, 1 or 2 of some process is this socket (a reverse shell's stdio): None where it was not checked
    # (the psutil backend, an owner out of sight).
    stdio: bool | None = None
    # How the owner was found ("pid": the socket table/fd scan of this tick; an event's "inode", "history"...), and
    # whether a snapshot or a kernel event saw it.
    attribution: str | None = None
    seen_by: str = "snapshot"


@dataclass
class Snapshot:
    taken_at: float  # epoch seconds
    observations: list[Observation]
    # Listening sockets (TCP LISTEN, UDP bound with no peer): kind "listener" records, and what tells inbound apart.
    listening: list[Observation] = field(default_factory=list)
    processes_denied: int = 0  # processes whose sockets this user may not inspect
    missing_tables: list[str] = field(default_factory=list)  # socket tables this backend cannot read
    raw_visible: bool = True  # False where the backend cannot list raw sockets at all
    # local UDP port -> (socket inode or -1 where unknown, pid); only when asked, for DNS attribution
    udp_owners: dict[int, tuple[int, int]] | None = None


class Snapshotter(Protocol):
    hasher: ExeHasher
    backend: str

    def take(self) -> Snapshot: ...


def make_snapshotter(*, max_hash_bytes: int = DEFAULT_MAX_HASH_BYTES,
                     track_udp: bool = False, backend: str | None = None) -> Snapshotter:
    """The snapshotter for this OS: "procfs" on Linux with /proc, else "psutil". ``backend`` forces one."""
    hasher = ExeHasher(max_hash_bytes)
    if backend is None:
        backend = "procfs" if sys.platform.startswith("linux") and os.path.exists("/proc/net/tcp") else "psutil"
    if backend == "procfs":
        from agent_local.linux import ProcfsSnapshotter

        return ProcfsSnapshotter(hasher, track_udp=track_udp)
    if backend == "psutil":
        from agent_local.portable import PsutilSnapshotter

        return PsutilSnapshotter(hasher, track_udp=track_udp)
    raise ValueError(f"unknown backend {backend!r} (procfs or psutil)")
