"""T1571 Non-Standard Port: known callback/C2 ports, and ports unusual for this process.

Three signals, strongest first: a port from published C2/malware-callback lists; a well-known program on a port
it never uses (ssh not on 22, a browser off 80/443); in a fleet, a port this program uses on no other host.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector, values_table
from orchestrator.detectors.lolbin import LOLBINS, ODD_DIRS
from orchestrator.detectors.never_talk import SILENT_PROGRAMS

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

# What internal peers legitimately serve: directory, file, remote management, database, web, mail, time.
INTERNAL_SERVICE_PORTS = frozenset({22, 25, 53, 67, 68, 80, 88, 123, 135, 137, 138, 139, 389, 443, 445, 464, 587,
                                    636, 1433, 1521, 3268, 3269, 3306, 3389, 5432, 5985, 5986, 6379, 9389, 27017})
# C2 defaults that much ordinary software also uses (alternate HTTPS, dev servers, Tor, vendor agents): the port
# alone is worth no more than any uncommon port; it still names itself in the evidence.
AMBIGUOUS_C2_PORTS = frozenset({4443, 8888, 7443, 2222, 9001, 9030, 9050, 9150, 1234, 5555, 6666, 6667, 6697})
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


class NonstandardPort(Detector):
    name: ClassVar[str] = "nonstandard_port"
    technique: ClassVar[str] = "T1571"
    priority: ClassVar[int] = 40
    explain: ClassVar[dict[str, str]] = {
        "c2_port": "remote port {port} is a known C2/callback port ({known_as})",
        "ambiguous_c2_port": "remote port {port} is a C2 default ({known_as}) that ordinary software uses too",
        "unexpected": "{program} normally uses port {expected}, here {port}",
        "uncommon_external": "outbound to uncommon port {port} on an external address",
        "lateral": "{program} ({why}) reaches internal host {remote_ip} on port {port}, no service port: a "
                   "lateral channel or internal C2",
        "fleet_unusual": "port {port} used by this program on 1 of {program_hosts} hosts running it "
                         "(usually {usual})",
    }

    def query(self, ctx: Context) -> tuple[str, list[Any]]:
        values_table(ctx.con, "c2_ports", "port INTEGER, known_as VARCHAR", C2_PORTS.items())
        values_table(ctx.con, "expected_ports", "name VARCHAR, ports INTEGER[]",
                     ((name, sorted(ports)) for name, ports in EXPECTED_PORTS.items()))
        # Strongest first: a known C2 port, a well-known program off its ports, an uncommon port outside.
        # Every program resolves names in-process (libc sends the query itself), so 53 is never off-pattern.
        # The name lists are constants tested inside the CASE, so only the pairs that reach a branch test them
        # (an IN over a table would be a join of every pair).
        per_pair = """
            SELECT p.host, p.process_identity, p.destination, p.remote_ip, p.remote_port,
                   CASE WHEN p.internal AND NOT list_contains($internal_services, p.remote_port)
                             AND p.remote_port < 49152
                             AND (list_contains($lolbins, p.name) OR list_contains($silent, p.name)
                                  OR regexp_matches(lower(coalesce(p.process_path, '')), $odd)) THEN 'lateral'
                        WHEN c.port IS NOT NULL AND list_contains($ambiguous, c.port) THEN 'ambiguous_c2_port'
                        WHEN c.port IS NOT NULL THEN 'c2_port'
                        WHEN e.name IS NOT NULL AND NOT list_contains(e.ports, p.remote_port)
                             AND NOT list_contains($in_process, p.remote_port) THEN 'unexpected'
                        WHEN NOT list_contains($common, p.remote_port) AND NOT p.internal
                             AND p.remote_port < 49152 THEN 'uncommon_external' END AS reason,
                   c.known_as, e.ports AS expected, p.name
            FROM pairs p
            LEFT JOIN c2_ports c ON c.port = p.remote_port
            LEFT JOIN expected_ports e ON e.name = p.name
            WHERE p.protocol <> 'raw' AND coalesce(p.remote_port, 0) <> 0"""
        # In a fleet: a port this program uses on one host only, while it runs on several hosts with other ports.
        fleet = """
            WITH port_hosts AS (SELECT process_identity, remote_port, count(DISTINCT host) AS hosts FROM pairs
                                WHERE coalesce(remote_port, 0) <> 0 AND protocol <> 'raw' GROUP BY ALL),
                 program_hosts AS (SELECT process_identity, count(*) AS hosts FROM pair_programs GROUP BY 1),
                 programs AS (SELECT ph.process_identity, any_value(g.hosts) AS hosts,
                                     list(ph.remote_port ORDER BY ph.hosts DESC, ph.remote_port) AS ports
                              FROM port_hosts ph JOIN program_hosts g USING (process_identity)
                              GROUP BY ph.process_identity)
            SELECT p.host, p.process_identity, p.destination, p.remote_ip, p.remote_port, 'fleet_unusual' AS reason,
                   g.hosts AS program_hosts, list_filter(g.ports, lambda x: x <> p.remote_port)[1:3] AS usual
            FROM pairs p JOIN port_hosts ph USING (process_identity, remote_port)
            JOIN programs g USING (process_identity)
            WHERE ph.hosts = 1 AND g.hosts >= $min_fleet AND $fleet AND NOT list_contains($common, p.remote_port)"""
        sql = f"""
            SELECT host, process_identity, destination, remote_ip, remote_port, reason,
                   CASE reason WHEN 'lateral' THEN 4.0 WHEN 'c2_port' THEN 3.0 WHEN 'unexpected' THEN 2.5
                               ELSE 1.0 END AS weight,
                   CASE WHEN reason = 'lateral' THEN 'T1021' END AS technique,
                   MAP {{'port': remote_port::VARCHAR, 'known_as': coalesce(known_as, ''),
                        'why': CASE WHEN list_contains($lolbins, name) THEN 'a LOLBin'
                                    WHEN list_contains($silent, name) THEN 'a program that never talks'
                                    ELSE 'from a writable location' END,
                        'remote_ip': remote_ip, 'program': name,
                        'expected': coalesce(array_to_string(expected, '/'), '')}} AS facts
            FROM ({per_pair}) WHERE reason IS NOT NULL
            UNION ALL
            SELECT host, process_identity, destination, remote_ip, remote_port, reason, 1.5 AS weight,
                   NULL AS technique,
                   MAP {{'port': remote_port::VARCHAR, 'program_hosts': program_hosts::VARCHAR,
                        'usual': array_to_string(usual, ', ')}} AS facts
            FROM ({fleet})"""
        return sql, {"in_process": sorted(IN_PROCESS_PORTS), "internal_services": sorted(INTERNAL_SERVICE_PORTS),
                     "ambiguous": sorted(AMBIGUOUS_C2_PORTS), "lolbins": sorted(LOLBINS),
                     "silent": sorted(SILENT_PROGRAMS),
                     "odd": ODD_DIRS, "common": list(ctx.config.common_ports),
                     "min_fleet": ctx.config.min_fleet_for_prevalence, "fleet": ctx.fleet}
