"""Kernel socket events on Linux: every TCP connection is seen, however short, and credited to its process.

Why these sources (measured on this machine, see bench/collect/README.md):

- **sock_diag destroy notifications** (NETLINK_SOCK_DIAG, groups SKNLGRP_INET_TCP_DESTROY / INET6, what ``ss -E``
  reads) report every TCP socket of this network namespace when the kernel frees it: its 5-tuple, last state and
  tcp_info. They cost nothing while nothing closes and cannot be missed by timing. They carry no owner: the inode
  and uid fields are 0 by then (the socket has left its file), and tcp_info has no start time, only the time since
  the last data or ack, so the connection's age from them is a lower bound.
- **a sock_diag dump** of the sockets processes hold, with their inode and uid; only inodes new since the last
  dump are looked up in /proc/<pid>/fd (the fd pass remembers each process's fds, so a quiet host costs one
  listdir per process). This is what credits a connection to its pid (attribution ``inode``) and dates its start
  to within one dump. A dump walks the kernel's whole TCP hash table (262,144 buckets here: 2.2 ms of kernel time
  per dump of both families, even with no socket in it), so it runs every ``idle_poll`` (250 ms), and every
  ``poll`` (10 ms, jittered, per address family) only for ``burst`` seconds after a connection ended that no dump
  had seen and history could not name: a beacon of 5 ms connections is caught alive about one time in four, and
  one catch lets history name the rest; a quiet host, or churn history already explains, keeps it cheap. A network
  namespace made with its own hash (sysctl net.ipv4.tcp_child_ehash_entries=1024 before ``ip netns add``) dumps in
  0.14 ms.
- **the process connector** (NETLINK_CONNECTOR, CN_IDX_PROC) for exec and exit: a process's exe and command line
  are read the moment it execs, so one that connects and exits before any dump is still known (``exec-cache``).
- Audit (connect() syscall records, as osquery's socket_events) would name the pid of every connect exactly, but
  needs a system-wide audit rule installed and removed by the collector, competes with auditd for the audit
  socket, and without auditd the kernel prints each record to the kernel log; it was not used.

A connection the dump did not catch alive is credited, in order, to: the live process that held the same
(local ip, remote ip, remote port) before or after it, if only one process ever did (``history``: a beacon's
earlier or later connections), or the one process of this namespace that exec'd before it and exited just before
its end while no other ownerless connection ended (``exec-cache``: a process that connects and exits); else it
keeps no process (``uid`` when a dump saw its uid). An inbound one (its local end is a listener's) is credited to
the process holding that listening socket (``listener``; for a pre-forked server, the lowest pid holding it).
Unresolved ones wait ``hold`` seconds for a later sighting before they are written. Start times: the dump that
first saw it, or the end minus tcp_info's time since the last data or ack (a lower bound of the age); measured
within 50 ms for 50 ms and 5 ms beacons (tests/live).
"""

from __future__ import annotations

import errno
import os
import random
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

from agent_local import netlink, procfs
from agent_local.enrich import LinuxFacts, ProcessFacts
from agent_local.hashing import ExeHasher
from agent_local.netfiles import SocketRow
from agent_local.snapshot import CLOSED, Observation

Tuple5 = tuple[str, str, int, str, int]
Dest = tuple[str, str, int]  # (local ip, remote ip, remote port)

INODE = "inode"
HISTORY = "history"
EXEC_CACHE = "exec-cache"
UID = "uid"
LISTENER = "listener"
# (is this socket the accepted end of a local service, the facts of who holds its listening socket)
Service = Callable[[SocketRow], "tuple[bool, ProcessFacts | None]"]

_PRUNE_EVERY_S = 2.0
_EXEC_KEEP_S = 60.0  # an exited process stays in the exec cache this long
_AMBIGUOUS = None
_SLACK_S = 0.005  # clock skew between a proc event's monotonic stamp and a destroy notice's receipt
_MAX_PENDING = 20_000  # ownerless connections waiting for history at most (about 20 s of 1,000 a second)
_EXIT_TO_END_S = 0.02  # from a process's exit to the kernel freeing the socket it closed (one round trip)


class Ended(NamedTuple):
    """A TCP connection whose end a destroy notification reported."""

    obs: Observation  # seen_by "event"; attribution says how its owner was found (None: not found)
    first_seen: float
    last_seen: float


class _Alive:
    """A socket a dump saw held by a process: when first, by whom."""

    __slots__ = ("first_seen", "facts", "uid", "inode", "stdio", "last_dump")

    def __init__(self, first_seen: float, facts: ProcessFacts | None, uid: int, inode: int, stdio: bool | None,
                 dump: float) -> None:
        self.first_seen = first_seen
        self.facts = facts
        self.uid = uid
        self.inode = inode
        self.stdio = stdio
        self.last_dump = dump


class _Exec:
    __slots__ = ("facts", "exec_at", "exit_at")

    def __init__(self, facts: ProcessFacts, exec_at: float) -> None:
        self.facts = facts
        self.exec_at = exec_at
        self.exit_at: float | None = None


class EventWatcher:
    """Runs the event thread; ``drain`` hands over ended connections, ``stop`` ends the thread, and
    ``drain(..., final=True)`` then hands over the rest."""

    def __init__(self, hasher: ExeHasher, *, poll: float = 0.01, idle_poll: float = 0.25, burst: float = 10.0,
                 hold: float = 30.0, proc_root: str = procfs.PROC, facts: LinuxFacts | None = None) -> None:
        self.poll = poll
        self.idle_poll = max(idle_poll, poll)
        self.burst = burst
        self.hold = hold
        # per family, time.monotonic() until which its dumps run every ``poll``: an IPv4 beacon costs no IPv6 dumps
        self._fast_until = {"ipv4": 0.0, "ipv6": 0.0}
        # whether a socket is the accepted end of a local service (set by the collector from the ticks' listeners):
        # those are credited to the service, so they need no fast dumps
        self.inbound: Callable[[SocketRow], bool] = lambda _row: False
        self._dumped: dict[str, set[int]] = {"ipv4": set(), "ipv6": set()}  # inodes of each family's last dump
        self.proc_root = proc_root
        # Shared with the ticks' snapshotter when given: an exec seen here refreshes the facts the ticks use too
        # (an exec keeps pid and start time, the cache key, while exe and command line change).
        self.facts = facts if facts is not None else LinuxFacts(hasher, proc_root)
        self.owners = procfs.OwnerScanner(proc_root, full_every=1 << 30)
        self.notes: list[str] = []  # what works less than fully (no proc connector, no dump)
        self.counts: Counter[str] = Counter()  # event-only connections by attribution, and lost notices
        self._destroy: socket.socket | None = None
        self._connector: socket.socket | None = None
        self._dumper: netlink.DiagDumper | None = None
        self._alive: dict[Tuple5, _Alive] = {}
        self._inodes: dict[int, Tuple5] = {}
        self._history: dict[Dest, ProcessFacts | None] = {}
        self._execs: dict[int, _Exec] = {}
        self._ended: list[Ended] = []  # new since the last drain
        self._pending: list[Ended] = []  # claimed by nobody and not attributed yet
        self._unowned_ends: list[tuple[float, Tuple5]] = []  # when recent ownerless connections ended
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self._netns: int | None = os.stat(f"{proc_root}/self/ns/net").st_ino
        except OSError:
            self._netns = None

    def start(self) -> str | None:
        """Subscribe and start the thread; the reason when the kernel or privileges refuse (then poll only)."""
        if not hasattr(socket, "AF_NETLINK"):
            return "kernel socket events need Linux netlink"
        try:
            self._destroy = netlink.open_destroy_listener()
        except OSError as exc:
            return f"the kernel refused sock_diag destroy notifications ({exc.strerror or exc})"
        try:
            self._dumper = netlink.DiagDumper()
        except OSError as exc:
            self.notes.append(f"no sock_diag dump ({exc.strerror or exc}): event-only connections have no pid")
        try:
            self._connector = netlink.open_proc_connector()
        except OSError as exc:
            self.notes.append(f"no process connector ({exc.strerror or exc}): processes that exit before the "
                              "next dump are not known")
        for sock in (self._destroy, self._connector):
            if sock is not None:
                sock.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="agent_local-events", daemon=True)
        self._thread.start()
        return None

    # -- the thread ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        # The destroy notices carry no time of their own: they are stamped when read, so this (mostly sleeping)
        # thread asks to be scheduled ahead of busy ones where it may (root); a loaded machine then delays it less.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
        except (OSError, AttributeError):
            pass
        readers = [s for s in (self._destroy, self._connector) if s is not None]
        next_dump = dict.fromkeys(self._fast_until, time.monotonic())
        next_prune = time.monotonic() + _PRUNE_EVERY_S
        while not self._stop.is_set():
            due = min(next_dump.values())
            timeout = max(0.0, due - time.monotonic()) if self._dumper is not None else 0.2
            try:
                ready, _, _ = select.select(readers, [], [], timeout)
            except OSError:
                break
            for sock in ready:
                self._read(sock)
            now = time.monotonic()
            if self._dumper is not None:
                for family, at in next_dump.items():
                    if now >= at:
                        self._dump(family)
                        step = self.poll if now < self._fast_until[family] else self.idle_poll
                        # Jittered like the ticks: a fixed 10 ms step phase-locks with a 1 s beacon and then misses
                        # every one of its 5 ms connections.
                        next_dump[family] = max(at + step * random.uniform(0.5, 1.5), time.monotonic())
                    elif now < self._fast_until[family] and at > now + self.poll:
                        next_dump[family] = now + self.poll  # short connections began: no waiting an idle step
            if now >= next_prune:
                self._prune(time.time())
                next_prune = now + _PRUNE_EVERY_S

    def _read(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # the kernel dropped notices: the receive buffer overran
                    self.counts["lost"] += 1
                    continue
                return
            if sock is self._destroy:
                now = time.time()
                for kind, payload in netlink.messages(data):
                    if kind == netlink.SOCK_DIAG_BY_FAMILY:
                        self._destroyed(payload, now)
            else:
                for event in netlink.parse_proc_events(data):
                    self._process_event(event)

    def _destroyed(self, payload: memoryview, now: float) -> None:
        sock = netlink.parse_diag(payload)
        if sock is None or not sock.remote_port:
            return  # a listener closing: not a connection
        t5 = ("tcp", sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port)
        first = now - sock.age if sock.age is not None else now
        alive = self._alive.pop(t5, None)
        facts = stdio = None
        uid, inode, how = -1, 0, None
        row = SocketRow("tcp", sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port, sock.family,
                        sock.state, 0, -1)
        if alive is not None:
            self._inodes.pop(alive.inode, None)
            first = min(first, alive.first_seen)
            facts, stdio, uid, inode = alive.facts, alive.stdio, alive.uid, alive.inode
            how = INODE if facts is not None else UID
            row = row._replace(inode=inode, uid=uid)
        elif not self.inbound(row) and self._history.get((sock.local_ip, sock.remote_ip, sock.remote_port)) is None:
            # A short connection no dump saw and history cannot name: dump often until one is caught alive (a
            # beacon needs one catch, history names the rest). Named ones cost no fast dumps.
            self._fast_until[sock.family] = time.monotonic() + self.burst
        ended = Ended(Observation(row, facts, None if facts is not None else CLOSED, stdio, how, "event"), first, now)
        with self._lock:
            self._ended.append(ended)

    def _process_event(self, event: netlink.ProcEvent) -> None:
        when = time.time() - (time.monotonic() - event.monotonic)
        if event.what == netlink.PROC_EVENT_EXEC:
            if self._netns is not None:
                try:
                    if os.stat(f"{self.proc_root}/{event.pid}/ns/net").st_ino != self._netns:
                        return  # another namespace's process: none of our sockets
                except OSError:
                    return
            facts = self.facts.reread(event.pid)
            if facts is not None:
                self._execs[event.pid] = _Exec(facts, when)
        else:
            known = self._execs.get(event.pid)
            if known is not None:
                known.exit_at = when

    def _dump(self, family: str) -> None:
        assert self._dumper is not None
        # Stamped before the request: every socket in the dump existed when the kernel walked the table, just after
        # this, and a late wakeup after the reply must not make its start look later.
        now = time.time()
        try:
            found = self._dumper.inodes(family)
        except OSError:
            return
        inodes = self._inodes
        alive_map = self._alive
        self._dumped[family] = set(found)
        new = [inode for inode in found if inode not in inodes]
        for inode in found.keys() & inodes.keys():
            entry = alive_map.get(inodes[inode])
            if entry is not None:
                entry.last_dump = now
        if not new:
            return
        scan = self.owners.scan(new, self._dumped["ipv4"] | self._dumped["ipv6"])
        owners = scan.owners
        for inode in new:
            sock = netlink.parse_diag(found[inode])
            if sock is None or not sock.remote_port:
                continue
            t5 = ("tcp", sock.local_ip, sock.local_port, sock.remote_ip, sock.remote_port)
            pid = owners.get(inode)
            facts = None
            if pid is not None:
                facts = self.facts.get(pid, scan.stats.get(pid))
                if facts is None and pid in self._execs:
                    facts = self._execs[pid].facts  # exited since the fd pass: its exec facts still hold
            inodes[inode] = t5
            alive_map[t5] = _Alive(now, facts, sock.uid, inode, (inode in scan.stdio) if facts is not None else None,
                                   now)
            if facts is not None:
                self._learn((sock.local_ip, sock.remote_ip, sock.remote_port), facts)

    def _learn(self, dest: Dest, facts: ProcessFacts) -> None:
        """Remember who talks to dest; two different processes make it ambiguous for good."""
        known = self._history.get(dest, facts)
        if known is not None and known.pid == facts.pid and known.start_time == facts.start_time:
            self._history[dest] = facts
        else:
            self._history[dest] = _AMBIGUOUS

    def _prune(self, now: float) -> None:
        stale = now - 3 * self.idle_poll - 1.0  # missing from the last dumps: gone without a notice we read
        for t5 in [t5 for t5, entry in self._alive.items() if entry.last_dump < stale]:
            self._inodes.pop(self._alive.pop(t5).inode, None)
        for pid in [pid for pid, e in self._execs.items() if e.exit_at is not None and e.exit_at < now - _EXEC_KEEP_S]:
            del self._execs[pid]
        if len(self._execs) > 10_000:  # exits whose notice was lost (receive buffer overrun): forget the gone
            for pid in [pid for pid, e in self._execs.items()
                        if e.exit_at is None and not os.path.exists(f"{self.proc_root}/{pid}")]:
                del self._execs[pid]
        if len(self._history) > 100_000:
            self._history.clear()

    # -- the consumer's side ---------------------------------------------------------------------------------

    def drain(self, claim: Callable[[Ended], bool], service: Service = lambda _row: (False, None), *,
              final: bool = False) -> list[Ended]:
        """Connections to write now. ``claim(ended)`` is asked first for each new one: True when the ticks saw
        that connection themselves (then it is theirs and dropped here). Unattributed ones wait up to ``hold``
        seconds (all of them when ``final``) for history to name their process. ``service(row)`` says whether a
        socket is the accepted end of a local service, and who holds that service's listening socket: an inbound
        connection no dump caught is credited to it (``listener``), never to a client that exited."""
        with self._lock:
            new, self._ended = self._ended, []
        ready: list[Ended] = []
        for ended in new:
            if claim(ended):
                continue
            if ended.obs[1] is not None:
                ready.append(ended)
                continue
            inbound, owner = service(ended.obs[0])
            if inbound:
                obs = ended.obs
                ready.append(ended if owner is None else Ended(
                    Observation(obs[0], owner, None, None, LISTENER, "event"), ended.first_seen, ended.last_seen))
            else:
                self._pending.append(ended)
                self._unowned_ends.append((ended.last_seen, ended.obs[0][:5]))
        if len(self._pending) > _MAX_PENDING:
            # Memory stays bounded under heavy churn: the oldest waiters are written without waiting longer.
            cut = len(self._pending) - _MAX_PENDING
            ready.extend(self._pending[:cut])
            self._pending = self._pending[cut:]
        now = time.time()
        waiting: list[Ended] = []
        for ended in self._pending:
            expired = final or now - ended.last_seen >= self.hold
            # History is asked on every drain (a later sighting of the same process may name it); the exec cache
            # only once history has had its time, since a coincidental exit is the weaker evidence.
            resolved = self._attribute(ended, exec_cache=expired)
            if resolved is not None or expired:
                ready.append(resolved or ended)
            else:
                waiting.append(ended)
        self._pending = waiting
        cutoff = now - self.hold - 5.0
        self._unowned_ends = [end for end in self._unowned_ends if end[0] >= cutoff]
        for ended in ready:
            self.counts[ended.obs[4] or "none"] += 1
        return ready

    def _attribute(self, ended: Ended, *, exec_cache: bool) -> Ended | None:
        """The (outbound) ended connection credited by history or, if asked, the exec cache, or None."""
        sock = ended.obs[0]
        facts = self._history.get((sock.local_ip, sock.remote_ip, sock.remote_port))
        how = HISTORY
        if facts is not None and not self._lived_through(facts, ended):
            facts = None
        if facts is None and exec_cache:
            how = EXEC_CACHE
            facts = self._exited_with(ended)
        if facts is None:
            return None
        obs = ended.obs
        return Ended(Observation(obs[0], facts, None, None, how, "event"), ended.first_seen, ended.last_seen)

    def _exited_with(self, ended: Ended) -> ProcessFacts | None:
        """The process whose exit closed this connection: one that connects and exits. Its exit closes the socket,
        which the kernel frees a round trip later, so the exit falls just before the end. Credited only when
        exactly one exec'd process of this namespace exited then and no other ownerless connection ended around
        that exit (its own other end aside): on a busy host a coincidence must not name a process."""
        last = ended.last_seen
        candidates = [e for e in list(self._execs.values())
                      if e.exit_at is not None and e.exec_at <= ended.first_seen + _SLACK_S
                      and last - _EXIT_TO_END_S <= e.exit_at <= last + _SLACK_S]
        if len(candidates) != 1:
            return None
        exit_at = candidates[0].exit_at
        assert exit_at is not None
        sock = ended.obs[0]
        mine = {sock[:5], (sock[0], sock[3], sock[4], sock[1], sock[2])}
        rivals = [t5 for end, t5 in self._unowned_ends
                  if exit_at - _SLACK_S <= end <= exit_at + _EXIT_TO_END_S and t5 not in mine]
        return candidates[0].facts if not rivals else None

    def _lived_through(self, facts: ProcessFacts, ended: Ended) -> bool:
        """The process was running when the connection started: same pid and start time, started before it."""
        if facts.start_time is not None and facts.start_time > ended.first_seen + 0.05:
            return False
        stat = procfs.read_stat(facts.pid, self.proc_root)
        if stat is None:
            known = self._execs.get(facts.pid)
            # Gone now: still good if the exec cache saw it exit after the connection ended.
            return known is not None and known.exit_at is not None and known.exit_at >= ended.last_seen - 0.05
        current = self.facts.get(facts.pid, stat)
        return current is not None and current.start_time == facts.start_time

    def stop(self) -> None:
        """Stop the thread and close the sockets; ``drain(..., final=True)`` then hands over the rest."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        for sock in (self._destroy, self._connector):
            if sock is not None:
                sock.close()
        if self._dumper is not None:
            self._dumper.close()
        self._destroy = self._connector = self._dumper = None

    def health_message(self) -> tuple[int, str]:
        """(count, message) for the socket_events health record."""
        total = sum(v for k, v in self.counts.items() if k != "lost")
        by = ", ".join(f"{self.counts[k]} by {k}" for k in (INODE, HISTORY, LISTENER, EXEC_CACHE, UID)
                       if self.counts[k])
        parts = [f"Kernel socket events on (sock_diag destroy notifications, a dump of held sockets every "
                 f"{self.idle_poll * 1000:.0f} ms, {self.poll * 1000:.0f} ms while short connections come and go, "
                 f"the process connector): {total} TCP connections seen only by events"
                 + (f" ({by}; {self.counts['none']} without a process)" if total else "")]
        if self.counts["lost"]:
            parts.append(f"the kernel dropped notices {self.counts['lost']} times (receive buffer overrun), so "
                         "some short connections may be missing")
        parts.extend(self.notes)
        return total, "; ".join(parts) + "."
