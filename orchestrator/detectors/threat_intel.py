"""Threat-intel matches: a remote address, a DNS query or answer, or an executable's SHA-256 that the responder's
own intel files (``--intel``: STIX 2.1, MISP, abuse.ch Feodo/ThreatFox, plain lists) name.

The finding cites the IOC, its file, the feed's confidence and dates. A DNS query for an IOC domain folds the
process's connections to the addresses that query returned into the same finding: the lookup and the connection
are one story.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector
from orchestrator.intel.store import create_table

IOC_FIELDS = "i.value, i.kind, i.source_file, i.name, i.port, i.confidence, i.first_seen, i.valid_from, i.conjunctive"


class ThreatIntel(Detector):
    name: ClassVar[str] = "threat_intel"
    technique: ClassVar[str] = "T1071"
    priority: ClassVar[int] = 1
    action: ClassVar[str | None] = ("block the indicator at egress and the resolver, hunt it across the fleet "
                                    "(connhunt pivot), acquire the binary and memory")
    explain: ClassVar[dict[str, str]] = {
        "ip": "remote address {value} is an IOC ({kind}{port_note}) in {file}: {name}{confidence_note}{dates}",
        "domain": "DNS query {query} matches IOC domain {value} in {file}: {name}{confidence_note}{dates}",
        "sha256": "executable SHA-256 {value} is an IOC in {file}: {name}{confidence_note}{dates}",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]] | None:
        create_table(ctx.con)
        row = ctx.con.execute("SELECT count(*) FROM iocs").fetchone()
        if not row or not row[0]:
            return None
        facts = """MAP {'value': i.value, 'kind': i.kind, 'file': i.source_file, 'name': coalesce(i.name, 'unnamed'),
                        'port_note': CASE WHEN i.port IS NOT NULL THEN ', port ' || i.port ELSE '' END,
                        'confidence_note': CASE WHEN i.confidence IS NOT NULL
                                                THEN ' (feed confidence ' || i.confidence || ')' ELSE '' END,
                        'dates': CASE WHEN coalesce(i.first_seen, i.valid_from) IS NOT NULL
                                      THEN ', listed since ' || strftime(coalesce(i.first_seen, i.valid_from),
                                                                          '%Y-%m-%d') ELSE '' END,
                        'query': QUERY}"""
        # Whole indicators weigh more than a part of an AND pattern; an address IOC with a port must match it.
        sql = f"""
            WITH ip_hits AS (
                SELECT p.host, p.process_identity, p.destination, p.remote_ip, p.remote_port, 'ip' AS reason,
                       CASE WHEN i.conjunctive THEN 3.0 ELSE 6.0 END AS weight, {facts.replace('QUERY', "''")}
                           AS facts
                FROM pairs p JOIN iocs i ON i.kind IN ('ipv4', 'ipv6') AND NOT i.network AND i.value = p.remote_ip
                WHERE i.port IS NULL OR i.port = p.remote_port
            ), domain_hits AS (
                SELECT q.host, q.process_identity, q.domain AS destination, q.query, {IOC_FIELDS}
                FROM queries q JOIN iocs i ON i.kind = 'domain'
                     AND (q.query = i.value OR ends_with(q.query, '.' || i.value))
            ), answered AS (
                -- connections of the same process to what the IOC domain resolved to
                SELECT d.host, d.process_identity, d.destination,
                       list(DISTINCT p.destination ORDER BY p.destination) AS covers
                FROM (SELECT DISTINCT host, process_identity, destination, unnest(answers) AS ip
                      FROM domain_hits d JOIN queries q USING (host, process_identity, query)) d
                JOIN pairs p ON p.host = d.host AND p.process_identity = d.process_identity AND p.remote_ip = d.ip
                GROUP BY ALL
            ), hash_hits AS (
                SELECT DISTINCT f.host, f.process_identity, p.destination, p.remote_ip, p.remote_port, {IOC_FIELDS}
                FROM flows f JOIN iocs i ON i.kind = 'sha256' AND i.value = f.exe_sha256
                JOIN pairs p ON p.host = f.host AND p.process_identity = f.process_identity
                     AND p.remote_ip = f.remote_ip AND p.remote_port IS NOT DISTINCT FROM f.remote_port
            )
            SELECT * FROM ip_hits
            UNION ALL BY NAME
            SELECT d.host, d.process_identity, d.destination, d.value AS domain, 'domain' AS reason,
                   CASE WHEN d.conjunctive THEN 3.0 ELSE 6.0 END AS weight, coalesce(a.covers, []) AS covers,
                   {facts.replace('QUERY', 'd.query').replace('i.', 'd.')} AS facts
            FROM domain_hits d LEFT JOIN answered a USING (host, process_identity, destination)
            UNION ALL BY NAME
            SELECT h.host, h.process_identity, h.destination, h.remote_ip, h.remote_port, 'sha256' AS reason,
                   8.0 AS weight, {facts.replace('QUERY', "''").replace('i.', 'h.')} AS facts
            FROM hash_hits h"""
        return sql, {}
