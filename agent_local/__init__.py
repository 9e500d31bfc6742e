"""agent_local: a standalone connection collector for one endpoint (needs psutil alone, Python 3.10+).

Command line::

    python -m agent_local --duration 60 --interval 1 -o out.jsonl [--host NAME] [--no-listening] [--no-events] [--dns]

Python API (used by ``connhunt triage`` / ``connhunt collect``)::

    collect(duration: float = 60.0, interval: float = 1.0, host: str | None = None, dns: bool = False,
            on_tick: Callable[[float, int], None] | None = None, stop: threading.Event | None = None, *,
            listeners: bool = True, events: bool = True, max_hash_bytes: int = 64 MiB, host_id: str | None = None,
            backend: str | None = None, dns_ports: tuple[int, ...] = (53,), event_poll: float = 0.01,
            include_listening: bool = False) -> Iterator[dict]
        Samples for ``duration`` seconds, one system-wide snapshot about every ``interval`` (jittered +/-25 %),
        plus the kernel's socket events on Linux as root, yielding each record as soon as it is final; set
        ``stop`` to end early (everything collected is still yielded). ``on_tick(elapsed_s,
        connections_seen_this_tick)`` runs after each tick. Raises CollectionError if the first snapshot fails,
        DnspythonMissing if ``dns`` is asked without dnspython. ``include_listening`` is a deprecated no-op.

    snapshot(host: str | None = None, *, listeners: bool = True, max_hash_bytes: int = 64 MiB,
             host_id: str | None = None, backend: str | None = None) -> list[dict]
        The connection and listener records of one snapshot taken now.

Records are dicts with ``kind``:

- "connection": CONNECTION_FIELDS (orchestrator.schema's connection columns except process_identity); times ISO
  8601 UTC ("...Z"); raw sockets have protocol "raw", remote 0.0.0.0:0 and state "PROTO_<ip protocol number>".
  ``direction``: inbound when the local (ip, port) is one of this host's listening sockets of the same protocol
  (a wildcard 0.0.0.0 / :: listener matches every local address; SYN_RECV is inbound, SYN_SENT outbound), else
  outbound; unknown for raw sockets. ``seen_by``: snapshot (a tick saw it alive) or event (only a kernel event
  did). ``attribution``: how the owner was found: pid (a tick's fd pass), inode (an event-time dump of held
  sockets and fd pass), history (the live process that held the same local ip -> remote ip:port around it),
  listener (an inbound one: the process holding the listening socket it came in on), exec-cache (the one process
  that exec'd before and exited just before its end), uid (a dump saw its uid but not its process: attributed
  false), or None. ``stdio``: fd 0, 1 or 2 of some process is this socket (a reverse
  shell: the owner's own stdio, or a child's that inherited it, e.g. ``bash -i <&5 >&5``); false when the fds
  were read and it is not, None where they could not be (psutil backend, owner out of sight, most events). A
  ``pty.spawn`` reverse shell is recorded on the python that holds the socket (stdio true when it dup2()ed the
  socket onto its own fds, as the usual one-liner does); the shell's stdio is the pty and it holds no socket.
- "listener": LISTENER_FIELDS: a TCP socket in LISTEN or a UDP socket bound with no peer, one record per
  (protocol, local ip, local port, pid) with first_seen, last_seen and observations over the ticks (written on
  the first tick it is gone). ``--no-listening`` writes none (they still decide direction).
- "dns": the fields of DNS_COLUMNS except process_identity; ``answers`` is a list.
- "health": host, source, collected_at, check, count, message: what could not be seen (checks: not_root,
  unattributed_sockets, hash_skipped, raw_sockets, socket_tables, dns_capture, snapshot_failed, socket_events).

How it decides:

- One system-wide snapshot per tick, ticks a uniform +/-25 % of the interval apart so that no periodic behaviour
  can phase-lock with them. On Linux TCP sockets come from a sock_diag dump (as ss reads them; /proc/net/tcp and
  tcp6 where the kernel refuses it), the others from /proc/net (udp, raw and the "ping" icmp sockets; v4 and v6;
  the netns of the collector), and owners from one pass over /proc/<pid>/fd; elsewhere from
  psutil.net_connections. Process facts are cached per (pid, start time), exe hashes per (path, size, mtime),
  capped at --max-hash-bytes; a deleted exe is hashed through /proc/<pid>/exe.
- On Linux as root, kernel socket events (agent_local.events) report every TCP connection's end however short it
  was: a connection no tick saw alive becomes a record of its own (seen_by event), its start from the time the
  event-time dump first saw it or from tcp_info; one a tick saw alive keeps the tick's record, its times widened.
  Where the kernel or privileges refuse, a socket_events health record says collection fell back to polling.
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
