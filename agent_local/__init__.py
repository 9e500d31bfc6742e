"""agent_local: a standalone connection collector for one endpoint (needs psutil alone, Python 3.10+).

Command line::

    python -m agent_local --duration 60 --interval 1 -o out.jsonl [--host NAME] [--include-listening] [--dns]

Python API (used by ``connhunt triage`` / ``connhunt collect``)::

    collect(duration: float = 60.0, interval: float = 1.0, host: str | None = None, dns: bool = False,
            on_tick: Callable[[float, int], None] | None = None, stop: threading.Event | None = None, *,
            include_listening: bool = False, max_hash_bytes: int = 64 MiB, host_id: str | None = None,
            backend: str | None = None, dns_ports: tuple[int, ...] = (53,)) -> Iterator[dict]
        Samples for ``duration`` seconds, one system-wide snapshot per ``interval``, yielding each record as soon
        as it is final; set ``stop`` to end early (everything collected is still yielded). ``on_tick(elapsed_s,
        connections_seen_this_tick)`` runs after each tick. Raises CollectionError if the first snapshot fails,
        DnspythonMissing if ``dns`` is asked without dnspython.

    snapshot(host: str | None = None, *, include_listening: bool = False, max_hash_bytes: int = 64 MiB,
             host_id: str | None = None, backend: str | None = None) -> list[dict]
        The connection records of one snapshot taken now.

Records are dicts with ``kind``:

- "connection": the fields of orchestrator.schema.CONNECTION_COLUMNS except process_identity; times ISO 8601 UTC
  ("...Z"); raw sockets have protocol "raw", remote 0.0.0.0:0 and state "PROTO_<ip protocol number>".
- "dns": the fields of DNS_COLUMNS except process_identity; ``answers`` is a list.
- "health": host, source, collected_at, check, count, message: what could not be seen (checks: not_root,
  unattributed_sockets, hash_skipped, raw_sockets, socket_tables, dns_capture, snapshot_failed).

On Linux sockets come from /proc/net (tcp, udp, raw, icmp; v4 and v6) and owners from one pass over /proc;
elsewhere from psutil.net_connections. See collector.py for the sampling rules.
"""

from __future__ import annotations

from agent_local.collector import CollectionError, collect, snapshot
from agent_local.records import CONNECTION_FIELDS, DNS_FIELDS, HEALTH_FIELDS

__all__ = ["CONNECTION_FIELDS", "DNS_FIELDS", "HEALTH_FIELDS", "CollectionError", "collect", "snapshot"]
