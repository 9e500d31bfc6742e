"""The Linux snapshot backend: /proc/net socket tables joined to owners found in one pass over /proc."""

from __future__ import annotations

import threading
import time

from agent_local import netfiles, procfs
from agent_local.direction import is_listening
from agent_local.enrich import LinuxFacts, ProcessFacts
from agent_local.hashing import ExeHasher
from agent_local.netfiles import SocketRow
from agent_local.snapshot import CLOSED, EXITED, HIDDEN, Observation, Snapshot

_UDP_TABLES = tuple(t for t in netfiles.TABLES if t[1] == "udp")
_OTHER_TABLES = tuple(t for t in netfiles.TABLES if t[1] != "udp")


class ProcfsSnapshotter:
    backend = "procfs"

    def __init__(self, hasher: ExeHasher, *, track_udp: bool = False, proc_root: str = procfs.PROC,
                 net_root: str = netfiles.PROC_NET) -> None:
        self.hasher = hasher
        self.track_udp = track_udp
        self.proc_root = proc_root
        self.net_root = net_root
        self.facts = LinuxFacts(hasher, proc_root)
        self.owners = procfs.OwnerScanner(proc_root)
        # Sockets without a peer are always read: listeners are records of their own and tell inbound from outbound
        # (and a resolver's unconnected sendto() socket is what DNS attribution needs).
        self._tables = netfiles.SocketTables(net_root, _OTHER_TABLES, keep_unconnected=True)
        self._udp = netfiles.SocketTables(net_root, _UDP_TABLES, keep_unconnected=True)
        self._ticks = 0

    def take(self) -> Snapshot:
        taken_at = time.time()
        # Reading the socket tables is kernel time that releases the GIL: a second thread reads them while this
        # one walks /proc, so on two or more cores the two costs overlap instead of adding up.
        raw: dict[str, dict[str, bytes | None]] = {}
        reader = threading.Thread(target=lambda: raw.update(tables=self._tables.fetch(), udp=self._udp.fetch()),
                                  name="agent_local-tables")
        reader.start()
        try:
            scan = self.owners.scan(None, None)
        finally:
            reader.join()
        every, missing = self._tables.parse(raw["tables"])
        udp_all, missing_udp = self._udp.parse(raw["udp"])
        every.extend(udp_all)
        missing.extend(missing_udp)
        # Comprehensions, not one loop with appends: at 20,000 sockets this split is on the hot path. A remote peer
        # makes a connection (raw sockets have none, and count anyway); of the rest, LISTEN and bound UDP listen.
        rows = [row for row in every if row[4] or row[0] == "raw"]
        listening = [row for row in every if not row[4] and row[0] != "raw" and is_listening(row)]

        alive = {row[7] for row in every}  # inodes
        self.owners.confirm(scan, alive)
        owners = scan.owners
        # Facts only for processes that hold a socket we report, not for every process with a socket.
        owning = {owners.get(row[7]) for row in rows}
        owning.update(owners.get(row[7]) for row in listening)
        facts_of: dict[int, ProcessFacts | None] = {
            pid: self.facts.get(pid, stat) for pid, stat in scan.stats.items() if pid in owning
        }
        unseen = HIDDEN if scan.denied else EXITED
        stdio = scan.stdio
        self._ticks += 1
        if self._ticks % 60 == 0:
            self.facts.forget_stale()
        return Snapshot(
            taken_at=taken_at, observations=_observations(rows, owners, facts_of, stdio, unseen),
            listening=_observations(listening, owners, facts_of, stdio, unseen),
            processes_denied=scan.denied, missing_tables=missing,
            udp_owners=_udp_owners(udp_all, owners) if self.track_udp else None,
        )


def _observations(rows: list[SocketRow], owners: dict[int, int], facts_of: dict[int, ProcessFacts | None],
                  stdio: set[int], unseen: str) -> list[Observation]:
    """Each socket with its owner's facts; stdio is checked wherever the owner's fds were read."""
    observations: list[Observation] = []
    append = observations.append
    new, cls = tuple.__new__, Observation  # see netfiles.parse_table: no __new__ frame per row
    for row in rows:
        inode = row[7]
        pid = owners.get(inode) if inode else None
        facts = facts_of.get(pid) if pid is not None else None
        if facts is not None:
            append(new(cls, (row, facts, None, inode in stdio, "pid", "snapshot")))
        else:
            reason = CLOSED if not inode else unseen if pid is None else EXITED
            append(new(cls, (row, None, reason, True if inode in stdio else None, None, "snapshot")))
    return observations


def _udp_owners(rows: list[SocketRow], owners: dict[int, int]) -> dict[int, tuple[int, int]]:
    found: dict[int, tuple[int, int]] = {}
    for row in rows:
        pid = owners.get(row.inode)
        if pid is not None:
            found[row.local_port] = (row.inode, pid)
    return found
