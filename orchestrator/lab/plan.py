"""The lab's address plan and service catalogue: which address lives in which namespace and what answers there.

Addresses come from RFC 5737 (203.0.113.0/24, 198.51.100.0/24) for the "internet" and 10.66.0.0/16 for the inside;
they exist only inside the lab's namespaces, never in the root namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

LAB_RANGES = ("10.66.0.0/16", "203.0.113.0/24", "198.51.100.0/24")

# The workstation LAN: hosts hang off a bridge in the core (router) namespace.
LAN_PREFIX = 24
GATEWAY = "10.66.0.1"
RESOLVER = "10.66.0.53"  # the fleet's configured resolver, on the router like a branch-office DNS forwarder
HOST_BASE = 11  # ws01 is 10.66.0.11

# Point-to-point links from the core router to the two server namespaces.
CORE_SRV = ("10.66.255.1", "10.66.255.2")
CORE_INET = ("10.66.254.1", "10.66.254.2")
SERVER_NET = "10.66.1.0/24"  # internal servers, behind the router
FILTERED_NET = "10.66.2.0/24"  # a segment whose firewall silently drops SYNs (blackholed at the router)
INTERNET_NETS = ("203.0.113.0/24", "198.51.100.0/24")

# Internet hosts (all in one "inet" namespace, each address on a dummy interface).
WEB_HOSTS = ("203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.13")
NTP_SERVER = "203.0.113.123"
UPDATE_SERVER = "198.51.100.80"
METRICS_SERVER = "203.0.113.20"  # a metrics sink on InfluxDB's port: a benign beacon on a non-standard port
METRICS_PORT = 8086
C2_SERVER = "203.0.113.66"
C2_PORT = 4444
POOL_SERVER = "203.0.113.77"
POOL_PORT = 3333
ATTACKER_NS = "198.51.100.53"
ICMP_PEER = "198.51.100.99"
# The operator's box: it catches reverse shells (a handler per port) and connects in to bind shells.
OPERATOR = "198.51.100.66"
BASH_SHELL_PORT = 9001  # bash /dev/tcp reverse shell
PTY_SHELL_PORT = 1234  # python pty.spawn reverse shell
WEB_SHELL_PORT = 443  # the web server user's shell blends in on 443: only its stdio gives it away
BIND_SHELL_PORT = 31337  # where the bind shell listens on its host

# Internal servers (the "srv" namespace): some ports open, the rest closed (RST).
FILE_SERVER = "10.66.1.10"
JUMP_HOST = "10.66.1.20"
INTRANET = "10.66.1.30"
# A compromised internal server relaying C2 (T1090 internal proxy): the LOLBin's channel and the implant's session.
INTERNAL_RELAY = "10.66.1.44"
RELAY_PORT = 8444
IMPLANT_PORT = 8081
DB_SERVER = "10.66.1.50"  # PostgreSQL
DB_PORT = 5432

EXFIL_DOMAIN = "t.example.net"
POOL_NAME = "pool.example.net"

# What the lab resolver answers; everything else is NXDOMAIN.
ZONE: dict[str, str] = {
    "www.example.com": WEB_HOSTS[0],
    "static.example.com": WEB_HOSTS[1],
    "cdn.example.com": WEB_HOSTS[2],
    "api.example.com": WEB_HOSTS[3],
    "updates.example.org": UPDATE_SERVER,
    "metrics.example.com": METRICS_SERVER,
    "ntp.example.org": NTP_SERVER,
    "jump.corp.example.org": JUMP_HOST,
    "fs01.corp.example.org": FILE_SERVER,
    "intranet.corp.example.org": INTRANET,
    POOL_NAME: POOL_SERVER,
}


@dataclass(frozen=True)
class Listener:
    """One service a server process answers: ``kind`` picks its behaviour in roles/servers.py."""

    kind: str
    addr: str
    port: int
    proto: str = "tcp"

    def as_arg(self) -> str:
        return f"{self.kind}@{self.addr}:{self.port}/{self.proto}"


INET_LISTENERS: tuple[Listener, ...] = (
    *(Listener("web", ip, port) for ip in WEB_HOSTS for port in (80, 443)),
    Listener("web", UPDATE_SERVER, 443),
    Listener("web", METRICS_SERVER, METRICS_PORT),
    Listener("c2", C2_SERVER, C2_PORT),
    Listener("stratum", POOL_SERVER, POOL_PORT),
    Listener("ntp", NTP_SERVER, 123, "udp"),
    *(Listener("shell_handler", OPERATOR, port) for port in (BASH_SHELL_PORT, PTY_SHELL_PORT, WEB_SHELL_PORT)),
)

SRV_LISTENERS: tuple[Listener, ...] = (
    Listener("ssh", FILE_SERVER, 22),
    Listener("web", FILE_SERVER, 139),
    Listener("web", FILE_SERVER, 445),
    Listener("ssh", JUMP_HOST, 22),
    Listener("web", INTRANET, 80),
    Listener("web", INTRANET, 443),
    Listener("c2", INTERNAL_RELAY, RELAY_PORT),
    Listener("session", INTERNAL_RELAY, IMPLANT_PORT),
    Listener("session", DB_SERVER, DB_PORT),
)

INET_ADDRESSES: tuple[str, ...] = (*WEB_HOSTS, NTP_SERVER, UPDATE_SERVER, METRICS_SERVER, C2_SERVER, POOL_SERVER,
                                   ATTACKER_NS, ICMP_PEER, OPERATOR)
SRV_ADDRESSES: tuple[str, ...] = (FILE_SERVER, JUMP_HOST, INTRANET, INTERNAL_RELAY, DB_SERVER)


def host_names(count: int) -> list[str]:
    return [f"ws{i:02d}" for i in range(1, count + 1)]


def host_ip(index: int) -> str:
    """The LAN address of the index-th host (0-based)."""
    return f"10.66.0.{HOST_BASE + index}"
