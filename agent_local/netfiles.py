"""Parse the kernel's socket tables in /proc/net (tcp, tcp6, udp, udp6, raw, raw6, icmp, icmp6) into rows.

psutil does not list raw sockets, and ICMP tunnels (T1095) live there, so agent_local reads the tables itself.
The parser works on bytes with ``split`` and fixed offsets (no regex, no per-line decode) because at tens of
thousands of sockets it is the hot loop of a snapshot.
"""

from __future__ import annotations

import socket
import sys
from typing import NamedTuple

PROC_NET = "/proc/net"

# /proc/net/tcp "st" column (include/net/tcp_states.h), spelled the psutil/Linux way the schema uses.
TCP_STATES: dict[bytes, str] = {
    b"01": "ESTABLISHED", b"02": "SYN_SENT", b"03": "SYN_RECV", b"04": "FIN_WAIT1", b"05": "FIN_WAIT2",
    b"06": "TIME_WAIT", b"07": "CLOSE", b"08": "CLOSE_WAIT", b"09": "LAST_ACK", b"0A": "LISTEN", b"0B": "CLOSING",
    b"0C": "SYN_RECV",  # TCP_NEW_SYN_RECV: a request socket, still a half-open connection
}
_LISTEN = b"0A"

# (file, protocol, family). icmp/icmp6 are the unprivileged "ping" sockets (SOCK_DGRAM, IPPROTO_ICMP): not raw in
# the socket-API sense, but the same non-application transport a T1095 detector looks for, so they report as raw.
TABLES: tuple[tuple[str, str, str], ...] = (
    ("tcp", "tcp", "ipv4"), ("tcp6", "tcp", "ipv6"),
    ("udp", "udp", "ipv4"), ("udp6", "udp", "ipv6"),
    ("raw", "raw", "ipv4"), ("raw6", "raw", "ipv6"),
    ("icmp", "raw", "ipv4"), ("icmp6", "raw", "ipv6"),
)
# What an ICMP ping socket's protocol is, since its "port" column holds the echo identifier instead.
_PING_PROTO = {"icmp": 1, "icmp6": 58}


class SocketRow(NamedTuple):
    """One socket. The first five fields are the connection's 5-tuple, so ``row[:5]`` is it."""

    protocol: str  # tcp / udp / raw
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    family: str  # ipv4 / ipv6 (ipv4 for an IPv4-mapped peer on a v6 socket: that is what goes on the wire)
    state: str  # TCP state name; NONE for udp; PROTO_<n> (IP protocol number) for raw
    inode: int  # 0 when no process holds the socket any more (TIME_WAIT, orphaned)
    uid: int


_addr_cache: dict[bytes, tuple[str, str]] = {}
_ADDR_CACHE_MAX = 1 << 16
_LITTLE_ENDIAN = sys.byteorder == "little"


def _decode_addr(hex_addr: bytes) -> tuple[str, str]:
    """(ip text, family) of a /proc/net address: 32-bit words in host (little-endian) byte order."""
    cached = _addr_cache.get(hex_addr)
    if cached is not None:
        return cached
    raw = bytes.fromhex(hex_addr.decode("ascii"))
    if _LITTLE_ENDIAN:
        # The kernel prints each 32-bit word in host byte order.
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    if len(raw) == 4:
        result = (socket.inet_ntop(socket.AF_INET, raw), "ipv4")
    elif raw[:12] == b"\x00" * 10 + b"\xff\xff":
        # IPv4-mapped (::ffff:a.b.c.d): report the IPv4 address, as orchestrator.schema.canonical_ip does.
        result = (socket.inet_ntop(socket.AF_INET, raw[12:]), "ipv4")
    else:
        result = (socket.inet_ntop(socket.AF_INET6, raw), "ipv6")
    if len(_addr_cache) >= _ADDR_CACHE_MAX:
        _addr_cache.clear()
    _addr_cache[hex_addr] = result
    return result


def parse_table(data: bytes, name: str, protocol: str, *, keep_unconnected: bool,
                previous: dict[bytes, SocketRow | None] | None = None,
                current: dict[bytes, SocketRow | None] | None = None) -> list[SocketRow]:
    """Rows of one /proc/net table. Listening and peer-less sockets are dropped unless ``keep_unconnected``.

    Raw sockets are always kept: a raw ICMP socket has no peer (remote 0.0.0.0) yet is exactly what T1095 is about.
    ``previous`` maps lines of the last read (less their slot number) to their rows: an idle socket prints the same
    line tick after tick, so it is looked up instead of parsed again. ``current`` receives this read's lines.
    """
    rows: list[SocketRow] = []
    append = rows.append
    is_tcp = protocol == "tcp"
    is_raw = protocol == "raw"
    filtered = not keep_unconnected and not is_raw
    ping_proto = _PING_PROTO.get(name)
    states = TCP_STATES
    decode = _decode_addr
    cached_addr = _addr_cache.get
    # tuple.__new__ builds the NamedTuple without a Python-level __new__ frame per row (a third of the parse time).
    new, cls = tuple.__new__, SocketRow
    remember = current.__setitem__ if current is not None else None
    recall = previous.get if previous else None
    colon = 0  # where ":port" starts in an address: 8 (IPv4) or 32 (IPv6) hex digits, the same on every line
    lines = data.split(b"\n")
    for line in lines[1:]:
        body = b""
        if remember is not None:
            # The slot number before the first ":" shifts as other sockets come and go; the rest identifies it.
            body = line[line.find(b":"):]
            if recall is not None:
                row = recall(body, line)
                if row is not line:
                    remember(body, row)
                    if row is not None:
                        append(row)
                    continue
        # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ... ; stop splitting after the inode.
        fields = line.split(None, 10)
        if len(fields) < 10:
            continue
        local, remote, st = fields[1], fields[2], fields[3]
        if len(local) <= colon or local[colon] != 58:  # 58 is ":"; checked, since it costs nothing
            colon = local.index(b":")
        remote_port = int(remote[colon + 1:], 16)
        if filtered and (remote_port == 0 or (is_tcp and st == _LISTEN)):
            if remember is not None:
                remember(body, None)
            continue
        hex_local = local[:colon]
        hex_remote = remote[:colon]
        local_ip, family = cached_addr(hex_local) or decode(hex_local)
        remote_ip = (cached_addr(hex_remote) or decode(hex_remote))[0]
        local_port = int(local[colon + 1:], 16)
        if is_raw:
            proto_number = ping_proto if ping_proto is not None else local_port
            state = f"PROTO_{proto_number}"
            # A raw socket has no ports; its "local port" column is the protocol number (or the ping identifier).
            local_port = 0
        elif is_tcp:
            state = states.get(st, "NONE")
        else:
            state = "NONE"
        row = new(cls, (protocol, local_ip, local_port, remote_ip, remote_port, family, state,
                        int(fields[9]), int(fields[7])))
        append(row)
        if remember is not None:
            remember(body, row)
    return rows


def read_table(name: str, root: str = PROC_NET) -> bytes | None:
    """The raw bytes of /proc/net/<name>, or None when this kernel or namespace has no such table."""
    try:
        with open(f"{root}/{name}", "rb", buffering=0) as handle:
            chunks = []
            # /proc files report size 0; read in large chunks so a big table costs few syscalls.
            while True:
                chunk = handle.read(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None


class SocketTables:
    """Reads the socket tables tick after tick, reusing the rows of lines that did not change since last tick."""

    def __init__(self, root: str = PROC_NET, tables: tuple[tuple[str, str, str], ...] = TABLES,
                 *, keep_unconnected: bool = False) -> None:
        self.root = root
        self.tables = tables
        self.keep_unconnected = keep_unconnected
        self._memo: dict[str, dict[bytes, SocketRow | None]] = {}

    def read(self) -> tuple[list[SocketRow], list[str]]:
        """All rows of the tables, and the names of tables that could not be read."""
        return self.parse(self.fetch())

    def fetch(self) -> dict[str, bytes | None]:
        """The raw tables (mostly kernel time, which another thread can overlap with other work)."""
        return {name: read_table(name, self.root) for name, _protocol, _family in self.tables}

    def parse(self, raw: dict[str, bytes | None]) -> tuple[list[SocketRow], list[str]]:
        """Rows of what ``fetch`` returned, and the names of tables that could not be read."""
        rows: list[SocketRow] = []
        missing: list[str] = []
        for name, protocol, _family in self.tables:
            data = raw.get(name)
            if data is None:
                missing.append(name)
                continue
            # Only this read's lines are kept for the next, so the memo never outgrows the table.
            current: dict[bytes, SocketRow | None] = {}
            rows.extend(parse_table(data, name, protocol, keep_unconnected=self.keep_unconnected,
                                    previous=self._memo.get(name), current=current))
            self._memo[name] = current
        return rows, missing


def read_sockets(*, keep_unconnected: bool = False, root: str = PROC_NET,
                 tables: tuple[tuple[str, str, str], ...] = TABLES) -> tuple[list[SocketRow], list[str]]:
    """All rows of the given tables, and the names of tables that could not be read."""
    rows: list[SocketRow] = []
    missing: list[str] = []
    for name, protocol, _family in tables:
        data = read_table(name, root)
        if data is None:
            missing.append(name)
            continue
        rows.extend(parse_table(data, name, protocol, keep_unconnected=keep_unconnected))
    return rows, missing
