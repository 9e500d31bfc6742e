"""T1095 Non-Application Layer Protocol: raw sockets (ICMP tunnels and the like) held by a process with no
business with them.

Ping-like tools and routing daemons use raw sockets legitimately; anything else holding one is rare and worth a
look, more so when it carries a protocol other than ICMP.
"""

from __future__ import annotations

from typing import ClassVar

from orchestrator.detectors.base import Context
from orchestrator.model import Signal

RAW_SOCKET_TOOLS = {"ping", "ping4", "ping6", "fping", "fping6", "traceroute", "traceroute6", "tracepath", "mtr",
                    "mtr-packet", "arping", "hping3", "nmap", "dhclient", "dhcpcd", "bird", "bird6", "keepalived",
                    "zebra", "ospfd", "pimd", "smokeping", "icinga2", "nagios", "zabbix_agentd", "zabbix_proxy",
                    "systemd-networkd", "networkmanager", "ping.exe", "tracert.exe", "pathping.exe"}
PROTOCOL_NAMES = {1: "ICMP", 2: "IGMP", 4: "IP-in-IP", 6: "TCP", 17: "UDP", 41: "IPv6-in-IPv4", 47: "GRE",
                  50: "ESP", 58: "ICMPv6", 103: "PIM", 112: "VRRP", 132: "SCTP", 255: "raw IP"}


class NonAppProtocol:
    name: ClassVar[str] = "non_app_protocol"
    technique: ClassVar[str] = "T1095"

    def detect(self, ctx: Context) -> list[Signal]:
        signals = []
        for pair in ctx.pairs:
            if pair.protocol != "raw" or pair.name in RAW_SOCKET_TOOLS:
                continue
            number = _protocol_number(pair.states)
            proto = PROTOCOL_NAMES.get(number, f"IP protocol {number}") if number is not None else "an IP protocol"
            points = 5.0 if number in (1, 58, None) else 6.0
            peer = f" to {pair.remote_ip}" if pair.remote_ip not in ("0.0.0.0", "::", "") else ""
            facts = [f"raw {proto} socket held by {pair.name}{peer}, not a ping-like tool",
                     f"socket seen in {pair.observations} samples"]
            signals.append(pair.signal(self, points, *facts))
        return signals


def _protocol_number(states: list[str]) -> int | None:
    """agent_local records a raw socket's protocol as state PROTO_<n>."""
    for state in states:
        if state and state.startswith("PROTO_") and state[6:].isdigit():
            return int(state[6:])
    return None
