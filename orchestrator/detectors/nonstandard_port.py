"""T1571 Non-Standard Port: known callback/C2 ports, and ports unusual for this process.

Three signals, strongest first: a port from published C2/malware-callback lists; a well-known program on a port
it never uses (ssh not on 22, a browser off 80/443); in a fleet, a port this program uses on no other host.
"""

from __future__ import annotations

from collections import defaultdict
from typing import ClassVar

from orchestrator.detectors.base import Context, Pair
from orchestrator.model import Signal

# Default listeners/callbacks of common C2 frameworks, RATs and bind/reverse shells
# (Metasploit 4444/4445, Cobalt Strike 50050, Sliver 31337/8888, Havoc 40056, Empire/others 1337/7443,
# Mythic 7443, njRAT 5552, DarkComet 1604, Poison Ivy 3460, Gh0st 8000-ish, netcat favourites).
C2_PORTS: dict[int, str] = {
    4444: "Metasploit default handler", 4445: "Metasploit handler", 1337: "common backdoor/C2 port",
    31337: "Back Orifice / Sliver", 8888: "Sliver/C2 listener", 50050: "Cobalt Strike team server",
    40056: "Havoc C2 default", 7443: "Mythic / C2 listener", 5552: "njRAT", 1604: "DarkComet RAT",
    3460: "Poison Ivy RAT", 6666: "IRC botnet C2", 6667: "IRC botnet C2", 6697: "IRC botnet C2 (TLS)",
    12345: "NetBus", 20000: "Millennium RAT", 27374: "SubSeven", 9001: "Tor ORPort", 9030: "Tor DirPort",
    9050: "Tor SOCKS", 9150: "Tor Browser SOCKS", 2222: "alternate SSH (often a backdoor)", 65535: "backdoor port",
    4443: "alternate HTTPS C2", 1234: "common reverse shell", 5555: "common reverse shell / ADB",
}

IN_PROCESS_PORTS = frozenset({53, 5353, 5355})  # DNS, mDNS, LLMNR lookups made by the resolver library
# Ports a well-known client program uses; anything else from it is worth a look.
EXPECTED_PORTS: dict[str, frozenset[int]] = {
    "ssh": frozenset({22}),
    "scp": frozenset({22}),
    "sftp": frozenset({22}),
    "git-remote-https": frozenset({443}),
    "firefox": frozenset({80, 443, 8080, 8443}),
    "firefox-esr": frozenset({80, 443, 8080, 8443}),
    "chrome": frozenset({80, 443, 8080, 8443, 5228}),
    "chromium": frozenset({80, 443, 8080, 8443, 5228}),
    "msedge": frozenset({80, 443, 8080, 8443}),
    "chrome.exe": frozenset({80, 443, 8080, 8443, 5228}),
    "firefox.exe": frozenset({80, 443, 8080, 8443}),
    "msedge.exe": frozenset({80, 443, 8080, 8443}),
    "iexplore.exe": frozenset({80, 443, 8080, 8443}),
    "ntpd": frozenset({123}),
    "chronyd": frozenset({123}),
    "svchost.exe": frozenset({53, 80, 88, 123, 135, 389, 443, 445, 636, 3268, 5985}),
}


class NonstandardPort:
    name: ClassVar[str] = "nonstandard_port"
    technique: ClassVar[str] = "T1571"

    def detect(self, ctx: Context) -> list[Signal]:
        signals = [s for pair in ctx.pairs for s in self._per_pair(ctx, pair)]
        signals.extend(self._fleet_learned(ctx))
        return signals

    def _per_pair(self, ctx: Context, pair: Pair) -> list[Signal]:
        port = pair.remote_port
        if pair.protocol == "raw" or port is None or port == 0:
            return []
        if port in C2_PORTS:
            return [pair.signal(self, 3.0, f"remote port {port} is a known C2/callback port ({C2_PORTS[port]})")]
        expected = EXPECTED_PORTS.get(pair.name)
        # Every program resolves names in-process (libc sends the query itself), so port 53 is never off-pattern.
        if expected and port not in expected and port not in IN_PROCESS_PORTS:
            wanted = "/".join(str(p) for p in sorted(expected))
            return [pair.signal(self, 2.5, f"{pair.name} normally uses port {wanted}, here {port}")]
        if port not in ctx.config.common_ports and not ctx.config.is_internal(pair.remote_ip) and port < 49152:
            return [pair.signal(self, 1.0, f"outbound to uncommon port {port} on an external address")]
        return []

    def _fleet_learned(self, ctx: Context) -> list[Signal]:
        """A port this program uses on one host only, while the program runs on several hosts with other ports."""
        if ctx.fleet_size < ctx.config.min_fleet_for_prevalence:
            return []
        hosts_by_port: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        for pair in ctx.pairs:
            if pair.remote_port:
                hosts_by_port[pair.process_identity][pair.remote_port].add(pair.host)
        signals = []
        for pair in ctx.pairs:
            ports = hosts_by_port.get(pair.process_identity, {})
            program_hosts = set().union(*ports.values()) if ports else set()
            if (pair.remote_port and len(program_hosts) >= ctx.config.min_fleet_for_prevalence
                    and len(ports[pair.remote_port]) == 1 and pair.remote_port not in ctx.config.common_ports):
                usual = [p for p in sorted(ports, key=lambda p: -len(ports[p])) if p != pair.remote_port][:3]
                signals.append(pair.signal(
                    self, 1.5, f"port {pair.remote_port} used by this program on 1 of {len(program_hosts)} hosts "
                               f"running it (usually {', '.join(map(str, usual))})"))
        return signals
