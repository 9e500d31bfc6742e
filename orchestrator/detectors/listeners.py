"""Bind shells and odd listeners (T1059 / T1571): who listens on what, and who accepts from whom.

A shell or netcat listening on any port is a bind shell; a binary from a writable path (/tmp, Downloads, Temp)
listening is a backdoor waiting for its operator; either accepting an inbound connection means someone came. An
interpreter listening (python -m http.server) is only context: developers do that. In a fleet, a program that
listens on a port no other host's copy of it opens is unusual too.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector
from orchestrator.detectors.lolbin import ODD_DIRS
from orchestrator.detectors.shells import INTERPRETERS, SHELLS


class Listener(Detector):
    name: ClassVar[str] = "listener"
    technique: ClassVar[str] = "T1059"
    priority: ClassVar[int] = 8
    combine: ClassVar[str] = "sum"
    action: ClassVar[str | None] = ("find who connected to the listener (its inbound peers), kill it, acquire the "
                                    "binary, look for the persistence that starts it")
    explain: ClassVar[dict[str, str]] = {
        "shell_listening": "shell {program} listens on {protocol} port {port}: a bind shell",
        "writable_listening": "{program} from a writable location ({path}) listens on {protocol} port {port}",
        "interpreter_listening": "interpreter {program} listens on {protocol} port {port}",
        "accepted": "{clients} inbound client(s) connected ({sample}): the listener is in use",
        "fleet_unusual": "{program} listens on port {port} on this host only, of {program_hosts} hosts running it",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]]:
        sql = """
            WITH listeners AS (
                SELECT host, process_identity, protocol, local_port, min(name) AS name,
                       min(process_path) AS process_path
                FROM listening WHERE local_port IS NOT NULL GROUP BY ALL
            ), inbound AS (
                -- a service's clients; a listener seen only through its accepted connections counts as well
                SELECT s.host, s.process_identity, s.protocol, s.local_port, s.name, s.process_path, s.clients,
                       s.external_clients
                FROM services s
            ), sockets AS (
                SELECT host, process_identity, protocol, local_port, name, process_path FROM listeners
                UNION SELECT host, process_identity, protocol, local_port, name, process_path FROM inbound
            ), classed AS (
                SELECT k.*, 'port ' || k.local_port || ' (inbound)' AS destination,
                       CASE WHEN list_contains($shells, k.name) THEN 'shell_listening'
                            WHEN regexp_matches(lower(coalesce(k.process_path, '')), $odd) THEN 'writable_listening'
                            WHEN list_contains($interpreters, k.name)
                                 OR regexp_full_match(k.name, '(python|perl|ruby|php)[0-9.]*')
                                 THEN 'interpreter_listening' END AS reason,
                       i.clients, i.external_clients
                FROM sockets k LEFT JOIN inbound i USING (host, process_identity, protocol, local_port)
            ), fleet AS (
                SELECT process_identity, local_port, count(DISTINCT host) AS hosts FROM sockets GROUP BY ALL
            ), programs AS (
                SELECT process_identity, count(DISTINCT host) AS program_hosts FROM sockets GROUP BY ALL
            ), reasons AS (
                SELECT host, process_identity, destination, reason, name, protocol, local_port, process_path,
                       clients AS number, CASE reason WHEN 'interpreter_listening' THEN 1.0 ELSE 6.0 END AS weight
                FROM classed WHERE reason IS NOT NULL
                UNION ALL
                SELECT host, process_identity, destination, 'accepted', name, protocol, local_port, process_path,
                       clients, 3.0
                FROM classed WHERE reason IN ('shell_listening', 'writable_listening') AND coalesce(clients, 0) > 0
                UNION ALL
                SELECT c.host, c.process_identity, c.destination, 'fleet_unusual', c.name, c.protocol, c.local_port,
                       c.process_path, g.program_hosts, 1.5
                FROM classed c JOIN fleet f USING (process_identity, local_port) JOIN programs g USING
                    (process_identity)
                WHERE $fleet AND f.hosts = 1 AND g.program_hosts >= $min_fleet AND c.local_port < 32768
            ), samples AS (
                -- a few of the clients of the flagged ports: the first three of every protocol's first three
                SELECT host, process_identity, local_port, list_sort(list_distinct(flatten(list(sample))))[1:3]
                    AS sample
                FROM services SEMI JOIN reasons USING (host, process_identity, local_port) GROUP BY ALL
            )
            SELECT r.host, r.process_identity, r.destination, r.reason, r.weight, r.local_port AS remote_port,
                   MAP {'program': r.name, 'protocol': r.protocol, 'port': r.local_port::VARCHAR,
                        'path': coalesce(r.process_path, ''), 'clients': coalesce(r.number, 0)::VARCHAR,
                        'program_hosts': coalesce(r.number, 0)::VARCHAR,
                        'sample': coalesce(array_to_string(x.sample, ', '), '')} AS facts
            FROM reasons r LEFT JOIN samples x USING (host, process_identity, local_port)"""
        return sql, {"shells": list(SHELLS), "interpreters": list(INTERPRETERS), "odd": ODD_DIRS,
                     "fleet": ctx.fleet, "min_fleet": ctx.config.min_fleet_for_prevalence}
