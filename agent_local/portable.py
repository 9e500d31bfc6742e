"""The portable snapshot backend: psutil's system-wide connection table, enriched through psutil.Process.

Used on macOS and Windows (and on Linux without /proc). psutil cannot list raw sockets, so the snapshot says so.
"""

from __future__ import annotations

import socket
import time
from typing import Any, NamedTuple

from agent_local.direction import is_listening
from agent_local.enrich import ProcessFacts, PsutilFacts
from agent_local.hashing import ExeHasher
from agent_local.netfiles import SocketRow
from agent_local.snapshot import CLOSED, EXITED, HIDDEN, Observation, Snapshot

_FAMILIES = {socket.AF_INET: "ipv4", getattr(socket, "AF_INET6", 10): "ipv6"}


class _Conn(NamedTuple):
    """One connection from either psutil call (the per-process one has no pid field of its own)."""

    family: int
    type: int
    laddr: Any
    raddr: Any
    status: str
    pid: int | None


def _ip(text: str) -> str:
    ip = text.split("%", 1)[0]  # drop an IPv6 zone id
    return ip[7:] if ip.lower().startswith("::ffff:") and "." in ip else ip


class PsutilSnapshotter:
    backend = "psutil"

    def __init__(self, hasher: ExeHasher, *, track_udp: bool = False) -> None:
        import psutil

        self._psutil = psutil
        self.hasher = hasher
        self.track_udp = track_udp
        self.facts = PsutilFacts(hasher)
        self._ticks = 0

    def _connections(self) -> tuple[list[_Conn], int]:
        """System-wide table; without the privilege for it (macOS), this user's processes one by one."""
        psutil = self._psutil
        try:
            table = psutil.net_connections(kind="inet")
        except psutil.AccessDenied:
            return self._per_process()
        return [_Conn(c.family, c.type, c.laddr, c.raddr, c.status, c.pid) for c in table], 0

    def _per_process(self) -> tuple[list[_Conn], int]:
        """Each visible process's own connections, and how many processes refused (another user's)."""
        psutil = self._psutil
        conns: list[_Conn] = []
        denied = 0
        for proc in psutil.process_iter():
            try:
                # psutil >= 6 names it net_connections; 5.9 (the oldest we support) connections
                method = getattr(proc, "net_connections", None) or proc.connections
                conns.extend(_Conn(c.family, c.type, c.laddr, c.raddr, c.status, proc.pid)
                             for c in method(kind="inet"))
            except psutil.AccessDenied:
                denied += 1
            except psutil.Error:
                continue
        return conns, denied

    def take(self) -> Snapshot:
        taken_at = time.time()
        conns, denied = self._connections()
        facts_of: dict[int, ProcessFacts | None] = {}
        observations: list[Observation] = []
        listening: list[Observation] = []
        udp_owners: dict[int, tuple[int, int]] = {}
        for conn in conns:
            protocol = "tcp" if conn.type == socket.SOCK_STREAM else "udp"
            pid = conn.pid or None
            if protocol == "udp" and conn.laddr and pid:
                udp_owners[conn.laddr.port] = (-1, pid)
            state = conn.status if protocol == "tcp" else "NONE"
            remote = conn.raddr
            local_ip, local_port = (_ip(conn.laddr.ip), conn.laddr.port) if conn.laddr else ("", 0)
            remote_ip, remote_port = (_ip(remote.ip), remote.port) if remote else ("", 0)
            family = "ipv4" if "." in (remote_ip or local_ip) else _FAMILIES.get(conn.family, "ipv4")
            row = SocketRow(protocol, local_ip, local_port, remote_ip, remote_port, family, state or "NONE", -1, -1)
            if remote_ip and remote_port:
                out = observations
            elif is_listening(row):
                out = listening
            else:
                continue  # a TCP socket neither listening nor connected (bound, closed) is no connection
            if pid is not None and pid not in facts_of:
                facts_of[pid] = self.facts.get(pid)
            facts = facts_of.get(pid) if pid is not None else None
            # psutil does not show fds, so stdio stays None (not checked).
            if facts is not None:
                out.append(Observation(row, facts, None, None, "pid"))
            elif pid is not None:
                out.append(Observation(row, None, EXITED))
            else:
                # No owner: a TIME_WAIT socket belongs to nobody any more; anything else, to someone we cannot see.
                out.append(Observation(row, None, CLOSED if state == "TIME_WAIT" else HIDDEN))
        self._ticks += 1
        if self._ticks % 60 == 0:
            self.facts.forget_stale()
        return Snapshot(taken_at=taken_at, observations=observations, listening=listening, processes_denied=denied,
                        raw_visible=False, udp_owners=udp_owners if self.track_udp else None)
