"""T1046 Network Service Discovery: one process fanning out to many internal hosts or ports.

A connect scan leaves many distinct (address, port) targets behind one process and, where targets drop SYNs,
half-open SYN_SENT sockets. Only the side that connects out counts: a server's inbound clients are flows of
direction ``inbound`` and never reach this query.

Fleet context lowers what looks like a scan but is a fleet tool: a fan-out to a few ports that are open on the
fleet's hosts, with no half-open socket, is polling or configuration management (Prometheus scraping :9100, Ansible
over ssh, a reverse proxy's upstreams); the same fan-out recurring across collections hours apart, from an installed
program, is a scheduled scanner. Both are kept as findings, scaled down, and say why.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector
from orchestrator.detectors.lolbin import ODD_DIRS

# Vulnerability-scanner products installed where their vendors put them: scanning is their job.
SCANNER_PRODUCTS = (r"^(/opt/nessus/|/usr/sbin/openvas|/usr/sbin/gvmd|/opt/rapid7/|/opt/qualys/"
                    r"|[a-z]:\\program files\\tenable\\nessus\\|[a-z]:\\program files( \(x86\))?\\(qualys|rapid7)\\)")
POLLING_SCALE = 0.3
SCHEDULED_SCALE = 0.4


class InternalScan(Detector):
    name: ClassVar[str] = "internal_scan"
    technique: ClassVar[str] = "T1046"
    priority: ClassVar[int] = 10
    action: ClassVar[str | None] = "find what launched the scanner, check the scanned hosts for follow-on logins"
    explain: ClassVar[dict[str, str]] = {
        "fan_out": "fan-out to {targets} internal targets: {hosts} hosts ({sample}) on {ports} ports; "
                   "{half_open} half-open (SYN_SENT) connections",
        "polling": "fan-out to {targets} internal targets: {hosts} hosts ({sample}) on port {port}, no half-open "
                   "connection and the port open on {listening}+ fleet hosts: polling or configuration management, "
                   "not a scan (lowered)",
        "scheduled": "fan-out to {targets} internal targets: {hosts} hosts ({sample}) on {ports} ports; "
                     "{half_open} half-open; an installed vulnerability scanner, or a fan-out recurring across "
                     "collections {hours} h apart from an installed program: a scheduled scanner (lowered)",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]]:
        sql = """
            WITH counted AS (
                -- which processes fan out: plain counts over every internal pair; the distinct targets, ports
                -- and times below only for those few
                SELECT host, process_identity, count(*) AS targets, sum(half_open) AS half_open
                FROM pairs WHERE protocol = 'tcp' AND internal GROUP BY host, process_identity
                HAVING (count(*) >= $min_targets OR sum(half_open) >= $min_half_open)
                   AND count(*) >= $min_targets // 2
            ), targets AS (
                SELECT *, len(ips) AS hosts, len(port_list) AS ports FROM (
                    SELECT c.host, c.process_identity, c.targets, c.half_open,
                           list(DISTINCT p.remote_ip ORDER BY p.remote_ip) AS ips,
                           list(DISTINCT p.remote_port ORDER BY p.remote_port) AS port_list,
                           list(p.destination ORDER BY p.destination) AS covers, min(p.remote_port) AS port,
                           epoch(max(p.last_seen)) - epoch(min(p.first_seen)) AS span_s
                    FROM counted c JOIN pairs p USING (host, process_identity)
                    WHERE p.protocol = 'tcp' AND p.internal
                    GROUP BY c.host, c.process_identity, c.targets, c.half_open)
            ), open_ports AS (
                SELECT local_port AS port, count(DISTINCT host) AS listening FROM listening
                WHERE protocol = 'tcp' GROUP BY 1
            ), judged AS (
                SELECT t.*,
                       (SELECT min(coalesce(o.listening, 0)) FROM unnest(t.port_list) u(port)
                        LEFT JOIN open_ports o ON o.port = u.port) AS listening,
                       regexp_matches(lower(t.process_identity), $odd) AS odd_path,
                       regexp_matches(lower(t.process_identity), $scanner_products) AS product
                FROM targets t
            ), scans AS (
                -- polling: a few ports, every one open on the fleet, no half-open socket; scheduled: the same
                -- fan-out in collections further apart than a collection gap, from an installed program
                SELECT *, ports <= 3 AND half_open = 0 AND listening >= least(hosts, 3) AS polling,
                       (span_s > $gap OR product) AND NOT odd_path AS scheduled
                FROM judged
            )
            SELECT host, process_identity,
                   'internal network (' || hosts || ' hosts, ' || ports || ' ports)' AS destination,
                   CASE WHEN polling THEN 'polling' WHEN scheduled THEN 'scheduled' ELSE 'fan_out' END AS reason,
                   round(3.0 + least(2.0, targets / (2 * $min_targets))
                         + CASE WHEN half_open >= $min_half_open THEN 1.5 ELSE 0.0 END, 2) AS weight,
                   CASE WHEN polling THEN $polling_scale WHEN scheduled THEN $scheduled_scale ELSE 1.0 END AS scale,
                   CASE WHEN hosts = 1 THEN ips[1] END AS remote_ip,
                   CASE WHEN ports = 1 THEN port END AS remote_port, covers,
                   MAP {'targets': targets::VARCHAR, 'hosts': hosts::VARCHAR, 'ports': ports::VARCHAR,
                        'port': array_to_string(port_list[1:3], '/'), 'listening': listening::VARCHAR,
                        'hours': printf('%.1f', span_s / 3600),
                        'sample': array_to_string(ips[1:5], ', ') || CASE WHEN hosts > 5 THEN ', ...' ELSE '' END,
                        'half_open': half_open::VARCHAR} AS facts
            FROM scans"""
        return sql, {"min_targets": ctx.config.scan_min_targets, "min_half_open": ctx.config.scan_min_half_open,
                     "polling_scale": POLLING_SCALE, "scheduled_scale": SCHEDULED_SCALE, "odd": ODD_DIRS,
                     "gap": ctx.config.collection_gap_s, "scanner_products": SCANNER_PRODUCTS}
