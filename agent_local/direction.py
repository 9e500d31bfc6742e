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

    __slots__ = ("exact", "wildcard")

    def __init__(self, rows: Iterable[SocketRow] = ()) -> None:
        self.exact: set[tuple[str, str, int]] = set()
        self.wildcard: set[tuple[str, int]] = set()
        for row in rows:
            if row.local_ip in _WILDCARDS:
                self.wildcard.add((row.protocol, row.local_port))
            else:
                self.exact.add((row.protocol, row.local_ip, row.local_port))

    def __contains__(self, local: tuple[str, str, int]) -> bool:
        return local in self.exact or (local[0], local[2]) in self.wildcard

    def direction(self, row: SocketRow) -> str:
        """inbound / outbound / unknown for one connection (a socket with a remote peer)."""
        protocol = row.protocol
        if protocol == "tcp":
            state = row.state
            # The handshake states say it outright; past them, a local end that is a listener's was accepted.
            if state == "SYN_RECV":
                return INBOUND
            if state == "SYN_SENT":
                return OUTBOUND
        elif protocol != "udp":
            return UNKNOWN  # raw sockets have no ports to compare
        if not row.remote_port:
            return UNKNOWN
        # UDP too: a connected UDP socket on a port some socket serves unconnected is that service's (QUIC, DNS).
        return INBOUND if (protocol, row.local_ip, row.local_port) in self else OUTBOUND


def is_listening(row: SocketRow) -> bool:
    """A TCP socket in LISTEN, or a UDP socket bound with no peer."""
    if row.protocol == "tcp":
        return row.state == "LISTEN"
    return row.protocol == "udp" and not row.remote_port and row.local_port > 0
