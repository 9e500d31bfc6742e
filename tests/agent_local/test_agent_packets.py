"""The DNS capture's kernel filter and packet parsing, on real packets from a real packet socket."""

from __future__ import annotations

import ctypes
import socket
import struct
import time

import pytest
from agent_helpers import requires_root

from agent_local import packets


def _capture(port_filter: list[int], send: list[tuple[str, int]], timeout: float = 2.0) -> list[packets.Segment]:
    """UDP segments a filtered packet socket receives while ``send`` datagrams go to 127.0.0.1 ports."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(packets.ETH_P_ALL))
    try:
        program = packets.bpf_ports_filter(port_filter)
        buf = ctypes.create_string_buffer(program)
        sock.setsockopt(socket.SOL_SOCKET, 26, struct.pack("@HP", len(program) // 8, ctypes.addressof(buf)))
        sock.settimeout(0.1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for payload, port in send:
                sender.sendto(payload.encode(), ("127.0.0.1", port))
        got: list[packets.Segment] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            seg = packets.parse(data, addr[1])
            if seg is not None and seg.payload.startswith(b"probe-"):
                got.append(seg)
        return got
    finally:
        sock.close()


@requires_root
def test_bpf_filter_keeps_only_the_dns_ports():
    port = 40000 + (int(time.time() * 1000) % 20000)
    got = _capture([53, port], [("probe-keep", port), ("probe-drop", port + 1)])
    payloads = {seg.payload for seg in got}
    assert b"probe-keep" in payloads
    assert b"probe-drop" not in payloads
    seg = next(s for s in got if s.payload == b"probe-keep")
    assert (seg.protocol, seg.dst_ip, seg.dst_port) == ("udp", "127.0.0.1", port)


def test_parse_ipv6_udp():
    src, dst = socket.inet_pton(socket.AF_INET6, "2001:db8::1"), socket.inet_pton(socket.AF_INET6, "2001:db8::53")
    udp = struct.pack("!HHHH", 5353, 53, 8 + 4, 0) + b"abcd"
    header = struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + src + dst
    seg = packets.parse(header + udp, packets.ETH_P_IPV6)
    assert seg == packets.Segment("udp", "2001:db8::1", 5353, "2001:db8::53", 53, b"abcd")


def test_parse_skips_ipv4_fragments():
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0x2000, 64, 17, 0, b"\x7f\0\0\1", b"\x7f\0\0\1"))
    assert packets.parse(bytes(header) + b"\0" * 20, packets.ETH_P_IP) is None


def test_filter_rejects_too_many_ports():
    with pytest.raises(ValueError):
        packets.bpf_ports_filter(list(range(1, 200)))
