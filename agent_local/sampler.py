"""Turns a series of snapshots into connection records with first_seen, last_seen and observation counts.

A connection is keyed by (protocol, local ip/port, remote ip/port, pid). It is finalised, and its record
written, on the first tick it is no longer seen (or when sampling ends), so each reconnect of a beacon (a new
ephemeral port each time) becomes a record of its own with its own first_seen.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from agent_local.direction import Listening
from agent_local.enrich import ProcessFacts
from agent_local.hostinfo import HostInfo
from agent_local.netfiles import SocketRow
from agent_local.records import connection_records, listener_records
from agent_local.snapshot import Observation, Snapshot

# How long a connection seen with its process is remembered, so the ownerless TIME_WAIT socket it leaves behind
# (the kernel keeps it 60 s) is recognised as the same connection instead of reported again as unattributed.
_REMEMBER_ATTRIBUTED_S = 120.0

Key = tuple[str, str, int, str, int, "int | None"]
Tuple5 = tuple[str, str, int, str, int]
_LIVE = float("inf")
_OUTBOUND = "outbound"
# How late a kernel event's notice may reach the sampler after the connection ended (the event thread's wakeup).
_EVENT_DELAY_S = 0.5


# A live connection: [first_seen, last_seen, observations, latest Observation, last tick seen, direction], the
# layout records.connection_records reads. A list, not a class, because a tick touches every live connection and a
# list is several times cheaper to make and update. Direction is decided once, when the connection is first seen,
# against the listeners of that tick.
_FIRST, _LAST, _COUNT, _OBS, _TICK, _DIRECTION = range(6)
ListenerKey = tuple[str, str, int, "int | None"]


class Sampler:
    """Feed it snapshots with ``observe``; it returns the records each tick finalised. ``finish`` ends it."""

    def __init__(self, host: HostInfo, *, listeners: bool = True) -> None:
        self.host = host
        self.listeners = listeners  # write listener records (the listening sockets are read for direction anyway)
        self.listening = Listening()  # the latest tick's listening sockets
        # (protocol, local ip or "*", port) -> facts of the process holding that listening socket, latest tick
        self.services: dict[tuple[str, str, int], ProcessFacts] = {}
        self.linger = 0  # ticks a vanished connection waits before it is written (1 with kernel events)
        self._live: dict[Key, list[Any]] = {}
        self._live_listeners: dict[ListenerKey, list[Any]] = {}
        # 5-tuple of every TCP connection seen with its process -> when it was found gone (inf while it is live).
        self._attributed: dict[Tuple5, float] = {}
        self._live_pid: dict[Tuple5, int] = {}  # TCP 5-tuple of a live attributed connection -> its pid
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
        listening = self.listening = Listening(obs[0] for obs in snap.listening)
        self.services = {(o[0][0], "*" if o[0][1] in ("0.0.0.0", "::") else o[0][1], o[0][2]): o[1]
                         for o in snap.listening if o[1] is not None}
        direction = listening.direction
        ports = listening.ports
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
                # The common case inline (a TCP connection from an ephemeral port no listener has): outbound.
                way = (_OUTBOUND if row[0] == "tcp" and ("tcp", row[2]) not in ports and row[6] != "SYN_RECV"
                       else direction(row))
                live[key] = [seen, seen, 1, obs, tick, way]
                # Only a TCP 5-tuple names one connection; raw sockets (no ports) and UDP (SO_REUSEPORT) can share
                # theirs with a different socket whose owner is hidden, which must not be folded away.
                if facts is not None and t5[0] == "tcp":
                    attributed[t5] = _LIVE
                    self._live_pid[t5] = facts.pid
            elif entry[_TICK] != tick:  # (the same key twice in one snapshot counts once)
                entry[_LAST] = seen
                entry[_COUNT] += 1
                entry[_OBS] = obs
                entry[_TICK] = tick
        # With kernel events a connection gone from this tick is written one tick later, so the event reporting its
        # end (read between the ticks) can still set its last_seen to when it really ended.
        last_seen_tick = tick - self.linger
        records = self._finalise([key for key, entry in live.items() if entry[_TICK] < last_seen_tick], seen)
        if self.listeners:
            records.extend(self._observe_listeners(snap.listening, seen, tick))
        if tick % 30 == 0:
            cutoff = seen - _REMEMBER_ATTRIBUTED_S
            for t5 in [t for t, last in attributed.items() if last < cutoff]:
                del attributed[t5]
        return records

    def _observe_listeners(self, listening: list[Observation], seen: float, tick: int) -> list[dict[str, Any]]:
        """One listener per (protocol, local ip, local port, pid) across the ticks; written when it is gone."""
        live = self._live_listeners
        for obs in listening:
            sock = obs[0]
            key: ListenerKey = (sock.protocol, sock.local_ip, sock.local_port,
                                obs[1].pid if obs[1] is not None else None)
            entry = live.get(key)
            if entry is None:
                live[key] = [seen, seen, 1, obs, tick]
            elif entry[_TICK] != tick:
                entry[_LAST] = seen
                entry[_COUNT] += 1
                entry[_OBS] = obs
                entry[_TICK] = tick
        gone = [key for key, entry in live.items() if entry[_TICK] != tick]
        return listener_records(self.host, [live.pop(key) for key in gone], seen) if gone else []

    def claim_event(self, t5: Tuple5, first_seen: float, last_seen: float) -> bool:
        """A kernel event reported the end of a TCP connection. True when a tick saw it with its process (then the
        ticks' record is the connection, its times widened to what the event knows); False when it is the event's
        to write, and then its lingering ownerless sockets are folded into it from now on."""
        pid = self._live_pid.get(t5)
        entry = self._live.get(t5 + (pid,)) if pid is not None else None
        if entry is not None:
            entry[_FIRST] = min(entry[_FIRST], first_seen)
            entry[_LAST] = max(entry[_LAST], last_seen)
            return True
        gone_at = self._attributed.get(t5)
        if gone_at is not None and last_seen <= gone_at + _EVENT_DELAY_S:
            return True  # a tick saw it and found it gone since: its record is written
        # (an end later than that is a new connection that reused the 5-tuple: loopback reuses ports quickly)
        self._attributed[t5] = last_seen
        self._live.pop(t5 + (None,), None)  # its ownerless TIME_WAIT a tick already caught is this connection
        return False

    def service(self, row: SocketRow) -> tuple[bool, ProcessFacts | None]:
        """Whether a connection is inbound, and the process holding the listening socket it came in on."""
        if self.listening.direction(row) != "inbound":
            return False, None
        services = self.services
        owner = services.get((row[0], row[1], row[2])) or services.get((row[0], "*", row[2]))
        return True, owner

    def event_records(self, ended: list[Any], now: float) -> list[dict[str, Any]]:
        """Records of connections only kernel events saw (events.Ended), direction from this tick's listeners."""
        direction = self.listening.direction
        entries = [[e.first_seen, e.last_seen, 1, e.obs, 0, direction(e.obs[0])] for e in ended]
        self.connections_written += len(entries)
        return connection_records(self.host, entries, now)

    def finish(self, now: float) -> list[dict[str, Any]]:
        """Finalise every connection and listener still open: sampling has ended (or was interrupted)."""
        entries = list(self._live.values())
        self._live.clear()
        self._live_pid.clear()
        self._count(entries)
        listeners = list(self._live_listeners.values())
        self._live_listeners.clear()
        return connection_records(self.host, entries, now) + listener_records(self.host, listeners, now)

    def _finalise(self, keys: list[Key], now: float) -> list[dict[str, Any]]:
        if not keys:
            return []
        pop = self._live.pop
        entries = [pop(key) for key in keys]
        attributed = self._attributed
        live_pid = self._live_pid
        for key in keys:
            if key[5] is not None and key[0] == "tcp":
                attributed[key[:5]] = now  # when it was found gone: it ended before this
                live_pid.pop(key[:5], None)
        self._count(entries)
        return connection_records(self.host, entries, now)

    def _count(self, entries: list[list[Any]]) -> None:
        self.connections_written += len(entries)
        for entry in entries:
            reason = entry[_OBS][2]
            if reason is not None:
                self.unattributed[reason] += 1
