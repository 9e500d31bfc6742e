"""The sock_diag dump (agent_local.tcpdiag) and /proc/net/tcp{,6} give the same rows for the same real sockets.

The snapshot reads TCP sockets from the dump where the kernel allows it and from /proc/net otherwise, so the two
must not differ in anything a record shows: addresses (IPv4-mapped peers as IPv4), ports, family, state, inode,
uid, and which sockets are listeners.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from agent_helpers import has_ipv6

from agent_local import netfiles, tcpdiag
from agent_local.hashing import ExeHasher
from agent_local.linux import ProcfsSnapshotter

_TCP_TABLES = (("tcp", "tcp", "ipv4"), ("tcp6", "tcp", "ipv6"))


@contextlib.contextmanager
def _sockets() -> Iterator[set[int]]:
    """Loopback TCP sockets in several states and both families; yields the ports that name them."""
    held: list[socket.socket] = []
    ports: set[int] = set()

    def listen(family: int, host: str, v6only: bool | None = None) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        if v6only is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        sock.bind((host, 0))
        sock.listen(16)
        held.append(sock)
        ports.add(sock.getsockname()[1])
        return sock

    def connect(server: socket.socket, host: str) -> tuple[socket.socket, socket.socket]:
        client = socket.create_connection((host, server.getsockname()[1]))
        accepted = server.accept()[0]
        held.extend((client, accepted))
        ports.add(client.getsockname()[1])
        return client, accepted

    try:
        v4 = listen(socket.AF_INET, "127.0.0.1")
        connect(v4, "127.0.0.1")  # ESTABLISHED, both ends
        client, accepted = connect(v4, "127.0.0.1")
        accepted.shutdown(socket.SHUT_WR)  # client CLOSE_WAIT, accepted FIN_WAIT2
        client, accepted = connect(v4, "127.0.0.1")
        client.close()  # the client closes first: its end lingers ownerless in TIME_WAIT
        accepted.close()
        if has_ipv6():
            dual = listen(socket.AF_INET6, "::", v6only=False)
            connect(dual, "127.0.0.1")  # the accepted end is ::ffff:127.0.0.1 in tcp6: reported as IPv4
            only6 = listen(socket.AF_INET6, "::1", v6only=True)
            connect(only6, "::1")
        time.sleep(0.05)  # let the FINs land
        yield ports
    finally:
        for sock in held:
            sock.close()


def _ours(rows, ports: set[int]) -> list[netfiles.SocketRow]:
    # A request or TIME_WAIT socket has no inode; /proc shows a request socket's listener's uid, the dump 0, and
    # nothing reads the uid of a socket without an inode.
    return sorted(row._replace(uid=0) if not row.inode else row for row in rows
                  if row.local_port in ports or row.remote_port in ports)


def _proc_rows(ports: set[int]) -> list[netfiles.SocketRow]:
    rows, missing = netfiles.read_sockets(keep_unconnected=True, tables=_TCP_TABLES)
    assert not missing
    return _ours(rows, ports)


def test_dump_and_proc_net_give_the_same_rows():
    with _sockets() as ports:
        fetched = tcpdiag.TcpDiag().fetch()
        if fetched is None:
            pytest.skip("this kernel refuses sock_diag dumps")
        others, listening = fetched
        from_dump = _ours(tcpdiag.parse(others) + tcpdiag.parse(listening), ports)
        from_proc = _proc_rows(ports)
    assert from_dump == from_proc
    states = {row.state for row in from_dump}
    assert {"LISTEN", "ESTABLISHED", "CLOSE_WAIT", "FIN_WAIT2", "TIME_WAIT"} <= states
    assert all(row.state == "LISTEN" for row in _ours(tcpdiag.parse(listening), ports))
    if has_ipv6():
        assert {row.family for row in from_dump} == {"ipv4", "ipv6"}


def test_the_snapshot_reads_the_same_sockets_either_way():
    with _sockets() as ports:
        dump = ProcfsSnapshotter(ExeHasher())
        proc = ProcfsSnapshotter(ExeHasher())
        proc._diag = None  # as where the kernel refused the dump
        with_dump, with_proc = dump.take(), proc.take()
    if dump._diag is None:
        pytest.skip("this kernel refuses sock_diag dumps")
    for attr in ("observations", "listening"):
        a = _ours([obs.sock for obs in getattr(with_dump, attr) if obs.sock.protocol == "tcp"], ports)
        b = _ours([obs.sock for obs in getattr(with_proc, attr) if obs.sock.protocol == "tcp"], ports)
        assert a == b and a, attr
    assert not with_dump.missing_tables


def test_a_refused_dump_falls_back_to_proc_net(monkeypatch):
    monkeypatch.setattr(tcpdiag.TcpDiag, "fetch", lambda self: None)
    with _sockets() as ports:
        snapper = ProcfsSnapshotter(ExeHasher())
        snap = snapper.take()
        expected = [row for row in _proc_rows(ports) if row.remote_port]
    assert snapper._diag is None
    assert _ours([obs.sock for obs in snap.observations], ports) == expected


def test_datagrams_of_mixed_lengths_parse_as_uniform_ones():
    """The fast path (one iter_unpack per datagram of equal-length messages) and the message-by-message walk agree,
    whatever the mix of lengths (full sockets and TIME_WAIT ones differ) in one datagram."""
    with _sockets():
        fetched = tcpdiag.TcpDiag().fetch()
        if fetched is None:
            pytest.skip("this kernel refuses sock_diag dumps")
    messages = []
    for data in fetched[0]:
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            if kind == tcpdiag.TCPDIAG_GETSOCK or kind == tcpdiag.SOCK_DIAG_BY_FAMILY:
                messages.append(data[offset:offset + length])
            offset += (length + 3) & ~3
    lengths = {len(m) for m in messages}
    one_each = tcpdiag.parse(messages)  # one message per datagram: always the fast path
    assert len(one_each) == len(messages)
    mixed = b"".join(messages)
    done = struct.pack("=IHHIIi", 20, tcpdiag.NLMSG_DONE, 2, 1, 0, 0)
    assert tcpdiag.parse([mixed + done]) == one_each
    assert tcpdiag.parse([mixed]) == one_each
    if len(lengths) == 1:
        assert tcpdiag.parse([mixed * 3]) == one_each * 3


def test_the_per_family_requests_give_what_the_legacy_one_does():
    """A kernel that refuses TCPDIAG_GETSOCK (both families in one dump) gets one inet_diag_req_v2 per family."""
    with _sockets() as ports:
        legacy, per_family = tcpdiag.TcpDiag(), tcpdiag.TcpDiag()
        per_family._legacy = False
        a, b = legacy.fetch(), per_family.fetch()
        if a is None or b is None:
            pytest.skip("this kernel refuses sock_diag dumps")
        assert _ours(tcpdiag.parse(a[0]) + tcpdiag.parse(a[1]), ports) == \
            _ours(tcpdiag.parse(b[0]) + tcpdiag.parse(b[1]), ports)


def test_a_dump_whose_end_never_comes_gives_up_instead_of_hanging(monkeypatch):
    monkeypatch.setattr(tcpdiag, "NLMSG_DONE", -1)  # the end is never recognised
    started = time.monotonic()
    assert tcpdiag.TcpDiag(timeout=0.2).fetch() is None
    assert time.monotonic() - started < 5
