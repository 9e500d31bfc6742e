"""T1095 Non-Application Layer Protocol: raw sockets (ICMP tunnels and the like) held by a process with no
business with them.

Ping-like tools and routing daemons use raw sockets legitimately; anything else holding one is rare and worth a
look, more so when it carries a protocol other than ICMP.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector, values_table

RAW_SOCKET_TOOLS = {"ping", "ping4", "ping6", "fping", "fping6", "traceroute", "traceroute6", "tracepath", "mtr",
                    "mtr-packet", "arping", "hping3", "nmap", "dhclient", "dhcpcd", "bird", "bird6", "keepalived",
                    "zebra", "ospfd", "pimd", "smokeping", "icinga2", "nagios", "zabbix_agentd", "zabbix_proxy",
                    "systemd-networkd", "networkmanager", "ping.exe", "tracert.exe", "pathping.exe"}
PROTOCOL_NAMES = {1: "ICMP", 2: "IGMP", 4: "IP-in-IP", 6: "TCP", 17: "UDP", 41: "IPv6-in-IPv4", 47: "GRE",
                  50: "ESP", 58: "ICMPv6", 103: "PIM", 112: "VRRP", 132: "SCTP", 255: "raw IP"}


class NonAppProtocol(Detector):
    name: ClassVar[str] = "non_app_protocol"
    technique: ClassVar[str] = "T1095"
    priority: ClassVar[int] = 30
    action: ClassVar[str | None] = "capture the raw traffic (tcpdump icmp) to confirm tunnelling, acquire the binary"
    explain: ClassVar[dict[str, str]] = {
        "raw_socket": "raw {proto} socket held by {program}{peer}, not a ping-like tool; seen in {samples} samples",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]]:
        values_table(ctx.con, "raw_tools", "name VARCHAR", ((n,) for n in sorted(RAW_SOCKET_TOOLS)))
        values_table(ctx.con, "ip_protocols", "number INTEGER, label VARCHAR", PROTOCOL_NAMES.items())
        # agent_local records a raw socket's protocol as state PROTO_<n>
        sql = """
            WITH samples AS (
                -- a raw socket's samples and protocol, from its own rows (the pairs carry neither)
                SELECT host, process_identity, remote_ip, remote_port, sum(observations) AS observations,
                       min(state) FILTER (WHERE starts_with(state, 'PROTO_')) AS raw_state
                FROM connections WHERE protocol = 'raw' AND direction <> 'inbound'
                GROUP BY host, process_identity, remote_ip, remote_port
            ), raw AS (
                SELECT p.*, s.observations, try_cast(s.raw_state[7:] AS INTEGER) AS number
                FROM pairs p JOIN samples s ON s.host = p.host AND s.process_identity = p.process_identity
                     AND s.remote_ip = p.remote_ip AND s.remote_port IS NOT DISTINCT FROM p.remote_port
                WHERE p.protocol = 'raw' AND p.name NOT IN (SELECT name FROM raw_tools))
            SELECT r.host, r.process_identity, r.destination, r.remote_ip, r.remote_port, 'raw_socket' AS reason,
                   CASE WHEN r.number IS NULL OR r.number IN (1, 58) THEN 5.0 ELSE 6.0 END AS weight,
                   MAP {'proto': CASE WHEN r.number IS NULL THEN 'an IP protocol'
                                      ELSE coalesce(i.label, 'IP protocol ' || r.number) END,
                        'program': r.name,
                        'peer': CASE WHEN r.remote_ip IN ('0.0.0.0', '::', '') THEN '' ELSE ' to ' || r.remote_ip END,
                        'samples': r.observations::VARCHAR} AS facts
            FROM raw r LEFT JOIN ip_protocols i ON i.number = r.number"""
        return sql, {}
