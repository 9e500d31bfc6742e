"""Optional DNS capture (``--dns``, Linux, root): sniff port-53 queries and answers, attribute each to its process.

A packet socket (AF_PACKET, all protocols, every interface including loopback) receives the DNS traffic, filtered
in the kernel by a BPF program. Each query is attributed to a process through the sending socket's local port,
looked up in the socket table at the moment the query is seen (the same idea as Velociraptor's eBPF DNS artifact,
without eBPF): first against the owners the last tick found, then with a fresh read of /proc/net and a search of
/proc for the socket's inode. A query whose socket closed within a millisecond of sending may lose its pid.

dnspython is imported lazily: only this module needs it.
"""

from __future__ import annotations

import ctypes
import queue
import socket
import struct
import threading
import time
from typing import Any

from agent_local import netfiles, packets, procfs
from agent_local.hostinfo import HostInfo
from agent_local.records import SOURCE, iso

DNS_PORT = 53
_PENDING_TIMEOUT_S = 5.0  # a query unanswered this long is written without answers
_PENDING_MAX = 10_000  # bound memory under a flood of unanswered queries
_OWNER_TTL_S = 5.0  # a port's owner is reused this long (the answer arrives on the query's port)
_SO_ATTACH_FILTER = 26
_RCVBUF = 4 << 20
_DRAIN_MAX = 10_000  # packets read after stop() from what the kernel had already queued


class DnspythonMissing(RuntimeError):
    """--dns was asked for but dnspython is not installed."""


def require_dnspython() -> Any:
    """The dns package (dnspython), or DnspythonMissing with the fix in its message."""
    try:
        import dns.message
        import dns.rcode
        import dns.rdatatype
    except ImportError as exc:
        raise DnspythonMissing("--dns needs dnspython, which is not installed (pip install dnspython)") from exc
    return dns


class PortOwners:
    """Local port -> owning process, as of now, for the capture thread."""

    def __init__(self, proc_root: str = procfs.PROC, net_root: str = netfiles.PROC_NET) -> None:
        self.proc_root = proc_root
        self.net_root = net_root
        self._published: dict[int, tuple[int, int]] = {}  # udp port -> (inode, pid) from the sampler's last tick
        self._recent: dict[tuple[str, str, int], tuple[int | None, float]] = {}
        self._names: dict[tuple[int, int], tuple[str | None, str | None]] = {}

    def publish(self, udp_owners: dict[int, tuple[int, int]]) -> None:
        # Replacing the reference is atomic; the capture thread reads whichever dict is current.
        self._published = udp_owners

    def pid_of(self, protocol: str, ip: str, port: int, now: float) -> int | None:
        """The pid whose socket sends from ``ip``:``port`` (the answer arrives there too, so it is cached)."""
        recent = self._recent.get((protocol, ip, port))
        if recent is not None and now - recent[1] < _OWNER_TTL_S:
            return recent[0]
        pid = self._lookup(protocol, ip, port)
        if len(self._recent) > 4096:
            self._recent.clear()
        self._recent[(protocol, ip, port)] = (pid, now)
        return pid

    def _lookup(self, protocol: str, ip: str, port: int) -> int | None:
        tables = tuple(t for t in netfiles.TABLES if t[1] == protocol)
        rows, _ = netfiles.read_sockets(keep_unconnected=True, root=self.net_root, tables=tables)
        published = self._published
        for row in rows:
            # The address must match too (or be a wildcard bind): a port alone can be another socket's on
            # another address.
            if row.local_port != port or not row.inode or row.local_ip not in (ip, "0.0.0.0", "::"):
                continue
            known = published.get(port)
            if known is not None and known[0] == row.inode:
                return known[1]
            return procfs.find_socket_owner(row.inode, self.proc_root)
        # The socket is already gone: the last tick's owner of that port is the best evidence left.
        known = published.get(port) if protocol == "udp" else None
        return known[1] if known is not None else None

    def describe(self, pid: int | None) -> tuple[str | None, str | None]:
        """(process name, exe path) of a pid, cached per (pid, start time)."""
        if pid is None:
            return None, None
        stat = procfs.read_stat(pid, self.proc_root)
        if stat is None:
            return None, None
        key = (pid, stat[2])
        known = self._names.get(key)
        if known is None:
            known = (stat[0], procfs.read_exe(pid, self.proc_root))
            if len(self._names) > 4096:
                self._names.clear()
            self._names[key] = known
        return known


class DnsCapture:
    """A thread capturing DNS for as long as it runs; finished records are collected with ``drain``."""

    def __init__(self, host: HostInfo, owners: PortOwners | None = None, ports: tuple[int, ...] = (DNS_PORT,)):
        self.dns = require_dnspython()
        self.host = host
        self.owners = owners or PortOwners()
        self.ports = ports
        self.queries = 0
        self.unattributed = 0
        self.dropped = 0  # packets that looked like DNS but could not be parsed
        self.abandoned = 0  # queries left unwritten because the thread did not stop in time
        self._out: queue.Queue[dict[str, Any]] = queue.Queue()
        self._pending: dict[tuple[str, str, int, str, int], dict[str, Any]] = {}
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str | None:
        """Open the capture socket and start the thread; the reason as a sentence when it cannot."""
        af_packet = getattr(socket, "AF_PACKET", None)
        if af_packet is None:
            return "DNS capture needs Linux packet sockets (AF_PACKET); none on this OS, so DNS was not captured."
        try:
            sock = socket.socket(af_packet, socket.SOCK_DGRAM, socket.htons(packets.ETH_P_ALL))
        except OSError as exc:
            return (f"Could not open a packet socket for DNS capture ({exc.strerror or exc}; it needs root or "
                    "CAP_NET_RAW): DNS queries were not captured.")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        except OSError:
            pass
        self._attach_filter(sock)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="agent_local-dns", daemon=True)
        self._thread.start()
        return None

    def _attach_filter(self, sock: socket.socket) -> None:
        program = packets.bpf_ports_filter(list(self.ports))
        buf = ctypes.create_string_buffer(program)
        fprog = struct.pack("@HP", len(program) // 8, ctypes.addressof(buf))
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
        except OSError:
            pass  # unfiltered still works, only costlier: every packet is parsed here and most discarded

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def drain(self, final: bool = False) -> list[dict[str, Any]]:
        """Records finished so far; with ``final`` also the queries still waiting for an answer."""
        # Unanswered queries are flushed only once the thread is gone, so they cannot be answered meanwhile; a
        # thread still busy after stop()'s wait keeps them (counted, rather than racing it).
        if final:
            if self._thread is not None and self._thread.is_alive():
                self.abandoned = len(self._pending)
            else:
                for key in list(self._pending):
                    self._emit(self._pending.pop(key))
        out = []
        while True:
            try:
                out.append(self._out.get_nowait())
            except queue.Empty:
                return out

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        last_expiry = time.monotonic()
        while not self._stop.is_set():
            try:
                data, addr = sock.recvfrom(1 << 16)
            except TimeoutError:
                data = None
            except OSError:
                break
            if data is not None:
                self._handle_safely(data, addr)
            if time.monotonic() - last_expiry >= 1.0:
                last_expiry = time.monotonic()
                self._expire(time.time())
        # Stopping: what the kernel already queued (an answer that arrived while a query was attributed) still
        # counts. Bounded, so a flood cannot keep the thread alive.
        sock.setblocking(False)
        for _ in range(_DRAIN_MAX):
            try:
                data, addr = sock.recvfrom(1 << 16)
            except OSError:
                break
            self._handle_safely(data, addr)

    def _handle_safely(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            self.handle(data, addr[1], addr[2], addr[3])
        except Exception:  # noqa: BLE001 - one malformed packet must not end the capture
            self.dropped += 1

    def handle(self, packet: bytes, ethertype: int, pkttype: int, hatype: int, now: float | None = None) -> None:
        """Process one captured packet (also the entry point tests feed packets through)."""
        loopback = hatype == packets.ARPHRD_LOOPBACK
        if loopback and pkttype == packets.PACKET_OUTGOING:
            return  # loopback shows every packet twice, once outgoing and once incoming: keep one
        seg = packets.parse(packet, ethertype)
        if seg is None:
            return
        now = time.time() if now is None else now
        payload = seg.payload
        if seg.protocol == "tcp":
            # A DNS message over TCP carries a 2-byte length; only a message whole in one segment is parsed.
            if len(payload) < 14 or struct.unpack_from("!H", payload)[0] != len(payload) - 2:
                return
            payload = payload[2:]
        if len(payload) < 12:
            return
        is_response = bool(payload[2] & 0x80)
        # Elsewhere than loopback, only queries this host sends and answers it receives are its own; a query
        # arriving from another host (this host is a resolver) must not be tied to a local socket by port.
        if is_response and seg.src_port in self.ports and (loopback or pkttype == packets.PACKET_HOST):
            self._answer(seg, payload, now)
        elif not is_response and seg.dst_port in self.ports and (loopback or pkttype == packets.PACKET_OUTGOING):
            self._query(seg, payload, now)

    def _query(self, seg: packets.Segment, payload: bytes, now: float) -> None:
        msg = self.dns.message.from_wire(payload, question_only=True)
        if not msg.question:
            return
        question = msg.question[0]
        key = (seg.protocol, seg.src_ip, seg.src_port, seg.dst_ip, msg.id)
        if key in self._pending:
            return
        pid = self.owners.pid_of(seg.protocol, seg.src_ip, seg.src_port, now)
        name, path = self.owners.describe(pid)
        self.queries += 1
        if pid is None:
            self.unattributed += 1
        if len(self._pending) >= _PENDING_MAX:
            self._expire(now, force=True)
        self._pending[key] = {
            "kind": "dns", "host": self.host.host, "host_id": self.host.host_id, "collected_at": None,
            "source": SOURCE, "pid": pid, "process_name": name, "process_path": path,
            "query": question.name.to_text(omit_final_dot=True), "qtype": self.dns.rdatatype.to_text(question.rdtype),
            "answers": [], "response_code": None, "server_ip": seg.dst_ip, "timestamp": iso(now), "_t": now,
        }

    def _answer(self, seg: packets.Segment, payload: bytes, now: float) -> None:
        msg = self.dns.message.from_wire(payload, ignore_trailing=True, one_rr_per_rrset=True)
        key = (seg.protocol, seg.dst_ip, seg.dst_port, seg.src_ip, msg.id)
        record = self._pending.pop(key, None)
        if record is None:
            return  # an answer to a query sent before the capture started, or to another host
        record["answers"] = [rdata.to_text() for rrset in msg.answer for rdata in rrset]
        record["response_code"] = self.dns.rcode.to_text(msg.rcode())
        self._emit(record)

    def _expire(self, now: float, force: bool = False) -> None:
        cutoff = now - _PENDING_TIMEOUT_S
        for key in [k for k, r in self._pending.items() if force or r["_t"] < cutoff]:
            self._emit(self._pending.pop(key))
            if force:
                break  # make room for one

    def _emit(self, record: dict[str, Any]) -> None:
        record.pop("_t", None)
        record["collected_at"] = iso(time.time())
        self._out.put(record)

    def health_message(self) -> tuple[int, str] | None:
        """(count, sentence) of what the capture could not tie or read, or None when nothing was lost."""
        parts = []
        if self.unattributed:
            parts.append(f"{self.unattributed} of {self.queries} DNS queries could not be tied to a process (the "
                         "sending socket had closed or its owner was not visible)")
        if self.dropped:
            parts.append(f"{self.dropped} DNS packets could not be parsed")
        if self.abandoned:
            parts.append(f"{self.abandoned} queries were still being processed when capture stopped and are missing")
        if not parts:
            return None
        return self.unattributed + self.dropped + self.abandoned, "; ".join(parts) + "."
