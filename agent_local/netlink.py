"""Linux netlink, stdlib only: sock_diag (socket dumps and destroy notifications) and the process connector.

Message layouts follow the kernel's uapi headers: <linux/netlink.h> (nlmsghdr), <linux/sock_diag.h>
(SKNLGRP_* groups), <linux/inet_diag.h> (inet_diag_req_v2, inet_diag_msg, INET_DIAG_INFO), <linux/tcp.h>
(struct tcp_info), <linux/connector.h> and <linux/cn_proc.h> (cn_msg, proc_event).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

NETLINK_SOCK_DIAG = 4
NETLINK_CONNECTOR = 11
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
# <linux/sock_diag.h>: multicast groups; bind() takes a bitmask where group n is bit n - 1.
SKNLGRP_INET_TCP_DESTROY = 1
SKNLGRP_INET6_TCP_DESTROY = 3
INET_DIAG_INFO = 2
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000
CLONE_NEWNET = 0x40000000

_NLMSGHDR = struct.Struct("=IHHII")
_PORTS = struct.Struct(">HH")
_UID_INODE = struct.Struct("=II")  # idiag_uid, idiag_inode at offsets 64, 68 of inet_diag_msg
_DIAG_MSG_LEN = 72
_NLATTR = struct.Struct("=HH")
# struct tcp_info: tcpi_last_data_sent, _last_ack_sent, _last_data_recv, _last_ack_recv (ms) start at byte 44.
_TCPI_LAST = struct.Struct("=IIII")
_TCPI_LAST_OFFSET = 44
_CN_MSG = struct.Struct("=IIIIHH")
_PROC_EVENT_HEAD = struct.Struct("=IIQ")  # what, cpu, timestamp_ns (CLOCK_MONOTONIC)
_PROC_EVENT_PIDS = struct.Struct("=ii")  # process_pid, process_tgid

# <net/tcp_states.h> numbers, spelled as agent_local.netfiles.TCP_STATES spells them.
TCP_STATE_NAMES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
                   7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "SYN_RECV"}
# The states in which a process still holds the socket (not LISTEN, which ticks read, and not TIME_WAIT/CLOSE).
OWNED_STATES = sum(1 << s for s in (1, 2, 3, 4, 5, 8, 9, 11))


class DiagSocket(NamedTuple):
    """One TCP socket from a sock_diag dump or destroy notification."""

    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    family: str
    state: str
    uid: int
    inode: int  # 0 in destroy notifications: the socket has left its file by then
    # lower bound of its age in seconds from tcp_info (time since the last data or ack that followed the
    # handshake), None without INET_DIAG_INFO
    age: float | None


def _ip(raw: bytes, family: int) -> tuple[str, str]:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4]), "ipv4"
    if raw[:12] == b"\x00" * 10 + b"\xff\xff":
        return socket.inet_ntop(socket.AF_INET, raw[12:16]), "ipv4"  # IPv4-mapped: what goes on the wire
    return socket.inet_ntop(socket.AF_INET6, raw), "ipv6"


def messages(data: bytes) -> Iterator[tuple[int, memoryview]]:
    """(type, payload) of each netlink message in one datagram."""
    view = memoryview(data)
    offset = 0
    while offset + 16 <= len(data):
        length, kind = _NLMSGHDR.unpack_from(data, offset)[:2]
        if length < 16:
            break
        yield kind, view[offset + 16:offset + length]
        offset += (length + 3) & ~3


def parse_diag(payload: memoryview) -> DiagSocket | None:
    """An inet_diag_msg (and its INET_DIAG_INFO attribute, if any) as a DiagSocket."""
    if len(payload) < _DIAG_MSG_LEN:
        return None
    family, state = payload[0], payload[1]
    sport, dport = _PORTS.unpack_from(payload, 4)
    local_ip, fam = _ip(bytes(payload[8:24]), family)
    remote_ip = _ip(bytes(payload[24:40]), family)[0]
    uid, inode = _UID_INODE.unpack_from(payload, 64)
    age = None
    offset = _DIAG_MSG_LEN
    while offset + 4 <= len(payload):
        length, kind = _NLATTR.unpack_from(payload, offset)
        if length < 4:
            break
        if kind == INET_DIAG_INFO and length >= 4 + _TCPI_LAST_OFFSET + _TCPI_LAST.size:
            sent, _ack_sent, recv, ack_recv = _TCPI_LAST.unpack_from(payload, offset + 4 + _TCPI_LAST_OFFSET)
            # lrcvtime is set when the handshake completes and each later data segment arrives, lsndtime with each
            # data segment sent (FIN included): the largest of them is a lower bound of the connection's age.
            age = max(sent, recv, ack_recv) / 1000.0
        offset += (length + 3) & ~3
    return DiagSocket(local_ip, sport, remote_ip, dport, fam, TCP_STATE_NAMES.get(state, "NONE"), uid, inode, age)


def open_destroy_listener() -> socket.socket:
    """A socket that receives the kernel's notice of every TCP socket destroyed in this network namespace (what
    ``ss -E`` reads). Needs CAP_NET_ADMIN; raises OSError where the kernel or privileges refuse."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((0, (1 << (SKNLGRP_INET_TCP_DESTROY - 1)) | (1 << (SKNLGRP_INET6_TCP_DESTROY - 1))))
    except OSError:
        sock.close()
        raise
    return sock


class DiagDumper:
    """Dumps this namespace's TCP sockets in the states a process holds them (inode and uid included)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self._requests = {"ipv4": self._request(socket.AF_INET), "ipv6": self._request(socket.AF_INET6)}

    @staticmethod
    def _request(family: int) -> bytes:
        # inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed inet_diag_sockid (48 bytes).
        body = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, OWNED_STATES) + b"\x00" * 48
        return _NLMSGHDR.pack(16 + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body

    def inodes(self, family: str) -> dict[int, memoryview]:
        """inode -> raw inet_diag_msg of every owned TCP socket of one family (ipv4 / ipv6) now; parsed later only
        for the new ones. Each family's dump walks the kernel's whole TCP hash table."""
        found: dict[int, memoryview] = {}
        recv = self.sock.recv
        for request in (self._requests[family],):
            self.sock.send(request)
            done = False
            while not done:
                data = recv(1 << 20)
                for kind, payload in messages(data):
                    if kind == NLMSG_DONE or kind == NLMSG_ERROR:
                        done = True
                        break
                    if kind == SOCK_DIAG_BY_FAMILY and len(payload) >= _DIAG_MSG_LEN:
                        found[_UID_INODE.unpack_from(payload, 64)[1]] = payload
        return found

    def close(self) -> None:
        self.sock.close()


class ProcEvent(NamedTuple):
    what: int  # PROC_EVENT_EXEC or PROC_EVENT_EXIT
    pid: int  # the thread group (process) id
    monotonic: float  # when, in seconds of CLOCK_MONOTONIC (time.monotonic)


def parse_proc_events(data: bytes) -> Iterator[ProcEvent]:
    """Exec and exit events of whole processes (not threads) from one process-connector datagram."""
    for kind, payload in messages(data):
        if kind != NLMSG_DONE or len(payload) < _CN_MSG.size + _PROC_EVENT_HEAD.size + _PROC_EVENT_PIDS.size:
            continue  # the connector sends each cn_msg as NLMSG_DONE
        what, _cpu, stamp = _PROC_EVENT_HEAD.unpack_from(payload, _CN_MSG.size)
        if what not in (PROC_EVENT_EXEC, PROC_EVENT_EXIT):
            continue
        pid, tgid = _PROC_EVENT_PIDS.unpack_from(payload, _CN_MSG.size + _PROC_EVENT_HEAD.size)
        if pid == tgid:
            yield ProcEvent(what, tgid, stamp / 1e9)


def open_proc_connector(proc_root: str = "/proc") -> socket.socket:
    """A socket subscribed to the process connector's events (exec, exit...). The connector exists only in the
    initial network namespace, so when this process runs in another one the socket is made from a thread that
    joins the namespace of a process outside ours for that moment (setns, root only): pid 1's, our parent's
    (``ip netns exec`` leaves the parent outside), or another process's. Raises OSError where refused."""
    try:
        return _proc_connector_here()
    except ConnectionRefusedError as exc:
        refused: OSError = exc
    for path in _other_netns(proc_root):
        try:
            return _in_netns(path, _proc_connector_here)
        except OSError as exc:
            refused = exc
    raise refused


def _other_netns(proc_root: str, limit: int = 8) -> list[str]:
    """/proc/<pid>/ns/net of up to ``limit`` processes in network namespaces other than ours, one per namespace."""
    try:
        ours = os.stat(f"{proc_root}/self/ns/net").st_ino
    except OSError:
        return []
    seen = {ours}
    found: list[str] = []
    others = sorted(int(n) for n in os.listdir(proc_root) if n.isdigit())
    for pid in [1, os.getppid(), *others]:
        path = f"{proc_root}/{pid}/ns/net"
        try:
            inode = os.stat(path).st_ino
        except OSError:
            continue
        if inode not in seen:
            seen.add(inode)
            found.append(path)
            if len(found) >= limit:
                break
    return found


def _in_netns(path: str, make: Callable[[], socket.socket]) -> socket.socket:
    """``make()`` run by a thread that first joins the network namespace at ``path``; the socket it makes keeps
    that namespace, and the thread ends there without touching the rest of the process."""
    made: list[socket.socket] = []
    failed: list[OSError] = []

    def run() -> None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            fd = os.open(path, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            made.append(make())
        except OSError as exc:
            failed.append(exc)

    thread = threading.Thread(target=run, name="agent_local-netns")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


def _proc_connector_here() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((0, CN_IDX_PROC))
        body = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, 4, 0) + struct.pack("=I", PROC_CN_MCAST_LISTEN)
        sock.send(_NLMSGHDR.pack(16 + len(body), NLMSG_DONE, 0, 0, 0) + body)
    except OSError:
        sock.close()
        raise
    return sock
