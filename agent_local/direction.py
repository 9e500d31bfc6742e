"""Which way a connection goes: inbound when its local end is one of this host's own listening sockets.

An inbound connection is a client reaching a local service (a fact about that service), an outbound one is this
host reaching out (a destination). The host's listening sockets of the same tick decide it; a wildcard listener
(0.0.0.0 or ::) matches every local address of its port.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent_local.netfiles import SocketRow

INBOUND = "inbound"
OUTBOUND = "outbound"
UNKNOWN = "unknown"

_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


class Listening:
    """The listening sockets of one tick as lookups: exact (protocol, ip, port) and wildcard (protocol, port)."""

    __slots__ = ("exact", "wildcard", "ports")

    def __init__(self, rows: Iterable[SocketRow] = ()) -> None:
        self.exact: set[tuple[str, str, int]] = set()
        self.wildcard: set[tuple[str, int]] = set()
        for row in rows:
            if row.local_ip in _WILDCARDS:
                self.wildcard.add((row.protocol, row.local_port))
            else:
                self.exact.add((row.protocol, row.local_ip, row.local_port))
        # every listening (protocol, port): most connections' local port is ephemeral, and one lookup says so
        self.ports = self.wildcard | {(protocol, port) for protocol, _ip, port in self.exact}

    def __contains__(self, local: tuple[str, str, int]) -> bool:
        return local in self.exact or (local[0], local[2]) in self.wildcard

    def direction(self, row: SocketRow) -> str:
        """inbound / outbound / unknown for one connection (a socket with a remote peer).

        Called once per new connection, tens of thousands on a first tick: fields by index, the common case
        (an ephemeral local port no listener has) decided by one set lookup."""
        protocol = row[0]
        if protocol == "tcp":
            state = row[6]
            # The handshake states say it outright; past them, a local end that is a listener's was accepted.
            if state == "SYN_RECV":
                return INBOUND
            if state == "SYN_SENT":
                return OUTBOUND
        elif protocol != "udp":
            return UNKNOWN  # raw sockets have no ports to compare
        if not row[4]:
            return UNKNOWN
        port = row[2]
        if (protocol, port) not in self.ports:
            return OUTBOUND
        # UDP too: a connected UDP socket on a port some socket serves unconnected is that service's (QUIC, DNS).
        return INBOUND if (protocol, row[1], port) in self.exact or (protocol, port) in self.wildcard else OUTBOUND


def is_listening(row: SocketRow) -> bool:
    """A TCP socket in LISTEN, or a UDP socket bound with no peer."""
    if row.protocol == "tcp":
        return row.state == "LISTEN"
    return row.protocol == "udp" and not row.remote_port and row.local_port > 0
