"""Turns a series of snapshots into connection records with first_seen, last_seen and observation counts.

A connection is keyed by (protocol, local ip/port, remote ip/port, pid). It is finalised, and its record
written, on the first tick it is no longer seen (or when sampling ends), so each reconnect of a beacon (a new
ephemeral port each time) becomes a record of its own with its own first_seen.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from agent_local.hostinfo import HostInfo
from agent_local.records import connection_record
from agent_local.snapshot import Observation, Snapshot

# How long a connection seen with its process is remembered, so the ownerless TIME_WAIT socket it leaves behind
# (the kernel keeps it 60 s) is recognised as the same connection instead of reported again as unattributed.
_REMEMBER_ATTRIBUTED_S = 120.0

Key = tuple[str, str, int, str, int, "int | None"]
Tuple5 = tuple[str, str, int, str, int]


class _Entry:
    __slots__ = ("first_seen", "last_seen", "observations", "obs", "tick")

    def __init__(self, obs: Observation, seen: float, tick: int) -> None:
        self.first_seen = seen
        self.last_seen = seen
        self.observations = 1
        self.obs = obs
        self.tick = tick


class Sampler:
    """Feed it snapshots with ``observe``; it returns the records each tick finalised. ``finish`` ends it."""

    def __init__(self, host: HostInfo) -> None:
        self.host = host
        self._live: dict[Key, _Entry] = {}
        self._attributed: dict[Tuple5, float] = {}
        self._tick = 0
        self.unattributed: Counter[str] = Counter()  # unattributed records written, by reason
        self.connections_written = 0
        self.raw_sockets: set[Key] = set()

    def __len__(self) -> int:
        return len(self._live)

    def observe(self, snap: Snapshot) -> list[dict[str, Any]]:
        self._tick += 1
        tick = self._tick
        seen = snap.taken_at
        live = self._live
        attributed = self._attributed
        for obs in snap.observations:
            sock = obs.sock
            t5 = (sock.protocol, sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port)
            facts = obs.facts
            if facts is None:
                if t5 in attributed:
                    continue  # the same connection, closed by its process and lingering ownerless
                key: Key = (*t5, None)
            else:
                attributed[t5] = seen
                key = (*t5, facts.pid)
            entry = live.get(key)
            if entry is None:
                live[key] = _Entry(obs, seen, tick)
            elif entry.tick != tick:  # the same socket twice in one snapshot (e.g. two raw ICMP sockets)
                entry.last_seen = seen
                entry.observations += 1
                entry.obs = obs
                entry.tick = tick
        gone = [key for key, entry in live.items() if entry.tick != tick]
        records = [self._finalise(key, seen) for key in gone]
        if tick % 30 == 0:
            cutoff = seen - _REMEMBER_ATTRIBUTED_S
            for t5 in [t for t, last in attributed.items() if last < cutoff]:
                del attributed[t5]
        return records

    def finish(self, now: float) -> list[dict[str, Any]]:
        """Finalise every connection still open: sampling has ended (or was interrupted)."""
        return [self._finalise(key, now) for key in list(self._live)]

    def _finalise(self, key: Key, now: float) -> dict[str, Any]:
        entry = self._live.pop(key)
        obs = entry.obs
        if obs.unattributed is not None:
            self.unattributed[obs.unattributed] += 1
        if obs.sock.protocol == "raw":
            self.raw_sockets.add(key)
        self.connections_written += 1
        return connection_record(self.host, obs, entry.first_seen, entry.last_seen, entry.observations, now)
