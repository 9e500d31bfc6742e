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

How it decides:

- One system-wide snapshot per tick. On Linux the sockets come from /proc/net (tcp, udp, raw and the "ping"
  icmp sockets; v4 and v6; the netns of the collector) and owners from one pass over /proc/<pid>/fd; elsewhere
  from psutil.net_connections. Process facts are cached per (pid, start time), exe hashes per (path, size,
  mtime), capped at --max-hash-bytes; a deleted exe is hashed through /proc/<pid>/exe.
- A connection is keyed by (protocol, local ip/port, remote ip/port, pid) and written on the first tick it is
  gone, so every reconnect of a beacon is its own record with its own first_seen.
- A socket held by several processes (inherited across fork) goes to the lowest pid, usually its creator.
- A socket without a visible owner keeps attributed=false and pid null, but still names the user that owns it
  (from the socket table). The ownerless TIME_WAIT a seen TCP connection leaves behind is folded into it.
- ``--host`` also becomes the host id unless ``--host-id`` is given: collectors in network namespaces of one
  machine share /etc/machine-id, and the lab runs one per namespace as separate hosts.
- ``--dns`` ties a query to a process by its source port at the moment the packet is seen; a socket closed
  within a millisecond of its query can lose its pid (counted in a dns_capture health record).
"""

from __future__ import annotations

from agent_local.collector import CollectionError, collect, snapshot
from agent_local.records import CONNECTION_FIELDS, DNS_FIELDS, HEALTH_FIELDS, LISTENER_FIELDS

__all__ = ["CONNECTION_FIELDS", "DNS_FIELDS", "HEALTH_FIELDS", "LISTENER_FIELDS", "CollectionError", "collect",
           "snapshot"]
