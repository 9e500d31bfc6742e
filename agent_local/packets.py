"""Just enough IPv4/IPv6/UDP/TCP header parsing to find DNS messages in captured packets.

Packets come from an AF_PACKET SOCK_DGRAM socket, so they start at the network header whatever the link type
(Ethernet, loopback, tun). Fragments are skipped: a fragmented DNS answer is rare and cannot be parsed piecewise.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_TCP = 6
IPPROTO_UDP = 17
PACKET_HOST = 0
PACKET_OUTGOING = 4
ARPHRD_LOOPBACK = 772
_IPV6_EXTENSIONS = {0, 43, 60}  # hop-by-hop, routing, destination options: skipped to reach the transport


class Segment(NamedTuple):
    protocol: str  # "udp" or "tcp"
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    payload: bytes


def parse(packet: bytes, ethertype: int) -> Segment | None:
    """The UDP or TCP segment inside an IP packet, or None for anything else."""
    if ethertype == ETH_P_IP and len(packet) >= 20 and packet[0] >> 4 == 4:
        ihl = (packet[0] & 0x0F) * 4
        total = struct.unpack_from("!H", packet, 2)[0]
        if struct.unpack_from("!H", packet, 6)[0] & 0x3FFF:
            return None  # a fragment (offset, or more-fragments set)
        proto = packet[9]
        src = socket.inet_ntop(socket.AF_INET, packet[12:16])
        dst = socket.inet_ntop(socket.AF_INET, packet[16:20])
        body = packet[ihl:total] if total >= ihl else b""
    elif ethertype == ETH_P_IPV6 and len(packet) >= 40 and packet[0] >> 4 == 6:
        proto = packet[6]
        src = socket.inet_ntop(socket.AF_INET6, packet[8:24])
        dst = socket.inet_ntop(socket.AF_INET6, packet[24:40])
        body = packet[40:40 + struct.unpack_from("!H", packet, 4)[0]]
        for _ in range(8):  # bounded walk over extension headers
            if proto not in _IPV6_EXTENSIONS or len(body) < 8:
                break
            proto, length = body[0], (body[1] + 1) * 8
            body = body[length:]
    else:
        return None
    if proto == IPPROTO_UDP and len(body) >= 8:
        sport, dport, length = struct.unpack_from("!HHH", body)
        return Segment("udp", src, sport, dst, dport, body[8:length] if length >= 8 else body[8:])
    if proto == IPPROTO_TCP and len(body) >= 20:
        sport, dport = struct.unpack_from("!HH", body)
        offset = (body[12] >> 4) * 4
        return Segment("tcp", src, sport, dst, dport, body[offset:])
    return None


def bpf_ports_filter(ports: list[int]) -> bytes:
    """A classic BPF program keeping unfragmented UDP/TCP packets to or from ``ports`` (IPv4 and IPv6).

    Without it every packet on every interface would be copied into this Python process; with it the kernel
    drops all but DNS before they reach us. Offsets are from the network header (SOCK_DGRAM packet socket).
    """
    # (code, jump-if-true label, jump-if-false label, k); labels resolve to instruction indexes below.
    ld_w_abs, ld_h_abs, ld_b_abs, ldx_msh, ld_h_ind = 0x20, 0x28, 0x30, 0xB1, 0x48
    jeq, jset, ret = 0x15, 0x45, 0x06
    anc_protocol = 0xFFFFF000  # SKF_AD_OFF + SKF_AD_PROTOCOL: the frame's ethertype
    prog: list[tuple[int, str | None, str | None, int]] = [
        (ld_w_abs, None, None, anc_protocol),
        (jeq, "v4", None, ETH_P_IP),
        (jeq, "v6", "drop", ETH_P_IPV6),
    ]
    labels: dict[str, int] = {}

    def ports_check(load_src: tuple[int, int], load_dst: tuple[int, int]) -> None:
        for code, offset in (load_src, load_dst):
            prog.append((code, None, None, offset))
            for port in ports:
                prog.append((jeq, "accept", None, port))
        prog.append((ret, None, None, 0))

    labels["v4"] = len(prog)
    prog += [(ld_b_abs, None, None, 9), (jeq, "v4udp", None, IPPROTO_UDP), (jeq, None, "drop", IPPROTO_TCP)]
    labels["v4udp"] = len(prog)
    prog += [(ld_h_abs, None, None, 6), (jset, "drop", None, 0x1FFF), (ldx_msh, None, None, 0)]
    ports_check((ld_h_ind, 0), (ld_h_ind, 2))
    labels["v6"] = len(prog)
    prog += [(ld_b_abs, None, None, 6), (jeq, "v6udp", None, IPPROTO_UDP), (jeq, None, "drop", IPPROTO_TCP)]
    labels["v6udp"] = len(prog)
    ports_check((ld_h_abs, 40), (ld_h_abs, 42))
    labels["accept"] = len(prog)
    prog.append((ret, None, None, 0x40000))
    labels["drop"] = len(prog)
    prog.append((ret, None, None, 0))

    out = bytearray()
    for index, (code, jt, jf, k) in enumerate(prog):
        def rel(label: str | None, at: int = index) -> int:
            if label is None:
                return 0
            distance = labels[label] - at - 1
            if not 0 <= distance <= 255:
                raise ValueError("BPF jump out of range; too many ports")
            return distance

        out += struct.pack("HBBI", code, rel(jt), rel(jf), k)
    return bytes(out)
