"""What every detector is, and the shared view of the store they read: outbound pairs.

A detector declares its name and technique and returns Signals; it never raises to mean "suspicious" and never
prints. ``pairs()`` gives them one row per (host, process identity, protocol, remote ip, remote port) with the
facts a responder needs, computed once in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

from orchestrator.config import Config
from orchestrator.model import PairKey, Signal
from orchestrator.store import Store

PAIRS_SQL = """
SELECT host, process_identity, protocol, remote_ip, remote_port,
       any_value(process_name) AS process_name,
       any_value(process_path) AS process_path,
       any_value(command_line) AS command_line,
       any_value(username) AS username,
       any_value(parent_name) AS parent_name,
       any_value(parent_path) AS parent_path,
       any_value(exe_sha256) AS exe_sha256,
       coalesce(list(DISTINCT pid) FILTER (WHERE pid IS NOT NULL), []) AS pids,
       coalesce(list(DISTINCT ppid) FILTER (WHERE ppid IS NOT NULL), []) AS ppids,
       list(DISTINCT state) AS states,
       count(*) AS connections,
       sum(observations) AS observations,
       min(first_seen) AS first_seen,
       max(last_seen) AS last_seen,
       bool_or(attributed) AS attributed,
       any_value(remote_hostname) AS remote_hostname
FROM connections
GROUP BY ALL
"""


def endpoint(ip: str, port: int | None, protocol: str) -> str:
    """A destination as text: ``ip:port``, ``[v6]:port``, or the bare address for raw sockets."""
    if port is None or protocol == "raw":
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True)
class Pair:
    host: str
    process_identity: str
    protocol: str
    remote_ip: str
    remote_port: int | None
    process_name: str | None
    process_path: str | None
    command_line: str | None
    username: str | None
    parent_name: str | None
    parent_path: str | None
    exe_sha256: str | None
    pids: list[int]
    ppids: list[int]
    states: list[str]
    connections: int
    observations: int
    first_seen: datetime | None
    last_seen: datetime | None
    attributed: bool
    remote_hostname: str | None

    @property
    def destination(self) -> str:
        return endpoint(self.remote_ip, self.remote_port, self.protocol)

    @property
    def key(self) -> PairKey:
        return PairKey(self.host, self.process_identity, self.destination)

    @property
    def name(self) -> str:
        return (self.process_name or self.process_identity.replace("\\", "/").rsplit("/", 1)[-1]).lower()

    def signal(self, detector: Detector, weight: float, *facts: str, context: bool = False,
               technique: str | None = None) -> Signal:
        return Signal(detector=detector.name, technique=technique or detector.technique, key=self.key,
                      weight=weight, facts=tuple(facts), context=context, remote_ip=self.remote_ip,
                      remote_port=self.remote_port)


class Context:
    """What detectors share for one run: the store, the config and the outbound pairs, filtered once."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        # A host that reported only health (nothing talking out) is still one of the fleet's hosts.
        self.hosts: tuple[str, ...] = tuple(
            r["host"] for r in store.query("SELECT host FROM connections UNION SELECT host FROM dns UNION SELECT host"
                                           " FROM health WHERE host <> '' ORDER BY 1"))
        self.pairs: list[Pair] = [p for p in (Pair(**row) for row in store.query(PAIRS_SQL)) if self._keep(p)]

    def _keep(self, pair: Pair) -> bool:
        if pair.remote_ip in ("", "0.0.0.0", "::") and pair.protocol != "raw":
            return False
        if pair.protocol != "raw" and self.config.is_ignored_peer(pair.remote_ip):
            return False
        return not self.config.is_allowed(pair.host, pair.process_name, pair.process_identity, pair.remote_ip,
                                          pair.remote_port)

    @property
    def fleet_size(self) -> int:
        return len(self.hosts)


class Detector(Protocol):
    name: ClassVar[str]
    technique: ClassVar[str]

    def detect(self, ctx: Context) -> list[Signal]: ...

