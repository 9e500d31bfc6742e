"""Turns a series of snapshots into connection records with first_seen, last_seen and observation counts.

A connection is keyed by (protocol, local ip/port, remote ip/port, pid). It is finalised, and its record
written, on the first tick it is no longer seen (or when sampling ends), so each reconnect of a beacon (a new
ephemeral port each time) becomes a record of its own with its own first_seen.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from agent_local.hostinfo import HostInfo
from agent_local.records import connection_records
from agent_local.snapshot import Snapshot

# How long a connection seen with its process is remembered, so the ownerless TIME_WAIT socket it leaves behind
# (the kernel keeps it 60 s) is recognised as the same connection instead of reported again as unattributed.
_REMEMBER_ATTRIBUTED_S = 120.0

Key = tuple[str, str, int, str, int, "int | None"]
Tuple5 = tuple[str, str, int, str, int]
_LIVE = float("inf")


# A live connection: [first_seen, last_seen, observations, latest Observation, last tick seen], the layout
# records.connection_records reads. A list, not a class, because a tick touches every live connection and a list
# is several times cheaper to make and update.
_FIRST, _LAST, _COUNT, _OBS, _TICK = range(5)


class Sampler:
    """Feed it snapshots with ``observe``; it returns the records each tick finalised. ``finish`` ends it."""

    def __init__(self, host: HostInfo) -> None:
        self.host = host
        self._live: dict[Key, list[Any]] = {}
        # 5-tuple of every TCP connection seen with its process -> when it was last live (inf while it is).
        self._attributed: dict[Tuple5, float] = {}
        self._tick = 0
        self.unattributed: Counter[str] = Counter()  # unattributed records written, by reason
        self.connections_written = 0

    def __len__(self) -> int:
        return len(self._live)

    def observe(self, snap: Snapshot) -> list[dict[str, Any]]:
        self._tick += 1
        tick = self._tick
        seen = snap.taken_at
        live = self._live
        attributed = self._attributed
        for obs in snap.observations:
            row, facts = obs[0], obs[1]
            t5 = row[:5]  # SocketRow starts with its 5-tuple
            if facts is None:
                if t5 in attributed:
                    continue  # the same TCP connection, closed by its process and lingering ownerless
                key: Key = t5 + (None,)
            else:
                key = t5 + (facts.pid,)
            entry = live.get(key)
            if entry is None:
                live[key] = [seen, seen, 1, obs, tick]
                # Only a TCP 5-tuple names one connection; raw sockets (no ports) and UDP (SO_REUSEPORT) can share
                # theirs with a different socket whose owner is hidden, which must not be folded away.
                if facts is not None and t5[0] == "tcp":
                    attributed[t5] = _LIVE
            elif entry[_TICK] != tick:  # (the same key twice in one snapshot counts once)
                entry[_LAST] = seen
                entry[_COUNT] += 1
                entry[_OBS] = obs
                entry[_TICK] = tick
        records = self._finalise([key for key, entry in live.items() if entry[_TICK] != tick], seen)
        if tick % 30 == 0:
            cutoff = seen - _REMEMBER_ATTRIBUTED_S
            for t5 in [t for t, last in attributed.items() if last < cutoff]:
                del attributed[t5]
        return records

    def finish(self, now: float) -> list[dict[str, Any]]:
        """Finalise every connection still open: sampling has ended (or was interrupted)."""
        entries = list(self._live.values())
        self._live.clear()
        self._count(entries)
        return connection_records(self.host, entries, now)

    def _finalise(self, keys: list[Key], now: float) -> list[dict[str, Any]]:
        if not keys:
            return []
        pop = self._live.pop
        entries = [pop(key) for key in keys]
        attributed = self._attributed
        for key, entry in zip(keys, entries):
            if key[5] is not None and key[0] == "tcp":
                attributed[key[:5]] = entry[_LAST]
        self._count(entries)
        return connection_records(self.host, entries, now)

    def _count(self, entries: list[list[Any]]) -> None:
        self.connections_written += len(entries)
        for entry in entries:
            reason = entry[_OBS][2]
            if reason is not None:
                self.unattributed[reason] += 1
