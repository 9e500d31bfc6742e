"""The Linux snapshot backend: the socket tables (TCP from sock_diag, the rest from /proc/net) joined to owners found
in one pass over /proc."""

from __future__ import annotations

import threading
import time
from operator import itemgetter
from typing import Any

from agent_local import netfiles, procfs, tcpdiag
from agent_local.direction import is_listening
from agent_local.enrich import LinuxFacts, ProcessFacts
from agent_local.hashing import ExeHasher
from agent_local.netfiles import SocketRow
from agent_local.snapshot import CLOSED, EXITED, HIDDEN, Observation, Snapshot

_UDP_TABLES = tuple(t for t in netfiles.TABLES if t[1] == "udp")
_TCP_TABLES = tuple(t for t in netfiles.TABLES if t[1] == "tcp")
_RAW_TABLES = tuple(t for t in netfiles.TABLES if t[1] == "raw")
_INODE = itemgetter(7)  # SocketRow.inode


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
        self._tcp = netfiles.SocketTables(net_root, _TCP_TABLES, keep_unconnected=True)
        self._raw = netfiles.SocketTables(net_root, _RAW_TABLES, keep_unconnected=True)
        self._udp = netfiles.SocketTables(net_root, _UDP_TABLES, keep_unconnected=True)
        # TCP sockets from a sock_diag dump (see agent_local.tcpdiag: a third of the cost at 20,000 sockets), unless
        # the tables are not this namespace's own (a test's fake /proc/net) or the kernel refused it once.
        self._diag: tcpdiag.TcpDiag | None = tcpdiag.TcpDiag() if net_root == netfiles.PROC_NET else None
        self._ticks = 0

    def take(self) -> Snapshot:
        taken_at = time.time()
        # Reading the socket tables is kernel time that releases the GIL: a second thread reads them while this
        # one walks /proc, so on two or more cores the two costs overlap instead of adding up.
        raw: dict[str, Any] = {}
        reader = threading.Thread(target=self._fetch, args=(raw,), name="agent_local-tables")
        reader.start()
        try:
            scan = self.owners.scan(None, None)
        finally:
            reader.join()
        every, missing = self._raw.parse(raw["raw"])
        udp_all, missing_udp = self._udp.parse(raw["udp"])
        every.extend(udp_all)
        missing.extend(missing_udp)
        diag = raw.get("diag")
        if diag is None:
            tcp_all, missing_tcp = self._tcp.parse(raw["tcp"])
            every.extend(tcp_all)
            missing.extend(missing_tcp)
            tcp_rows: list[SocketRow] = []
            tcp_listening: list[SocketRow] = []
        else:
            # The dump came split: LISTEN sockets, and the rest (each with a peer: the kernel's established hash).
            tcp_rows, tcp_listening = tcpdiag.parse(diag[0]), tcpdiag.parse(diag[1])
        # Comprehensions, not one loop with appends: at 20,000 sockets this split is on the hot path. A remote peer
        # makes a connection (raw sockets have none, and count anyway); of the rest, LISTEN and bound UDP listen.
        rows = tcp_rows + [row for row in every if row[4] or row[0] == "raw"]
        listening = tcp_listening + [row for row in every if not row[4] and row[0] != "raw" and is_listening(row)]

        if scan.trusted:
            # Only a scan that trusted remembered fds needs every inode in the tables (a first scan trusts none).
            alive = {row[7] for row in every}
            alive.update(map(_INODE, tcp_rows))
            alive.update(map(_INODE, tcp_listening))
            self.owners.confirm(scan, alive)
        owners = scan.owners
        # Facts only for processes that hold a socket we report, not for every process with a socket (map() keeps
        # the per-socket step in C).
        owning = set(map(owners.get, map(_INODE, rows)))
        owning.update(map(owners.get, map(_INODE, listening)))
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

    def _fetch(self, raw: dict[str, Any]) -> None:
        """The reader thread: the TCP dump (or /proc/net/tcp{,6} where it is refused) and the other tables."""
        diag = self._diag.fetch() if self._diag is not None else None
        if diag is None:
            self._diag = None  # refused once, refused for good: /proc/net from now on
            raw["tcp"] = self._tcp.fetch()
        else:
            raw["diag"] = diag
        raw["raw"] = self._raw.fetch()
        raw["udp"] = self._udp.fetch()


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
