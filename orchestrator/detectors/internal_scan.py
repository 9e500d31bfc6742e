"""T1046 Network Service Discovery: one process fanning out to many internal hosts or ports.

A connect scan leaves many distinct (address, port) targets behind one process and, where targets drop SYNs,
half-open SYN_SENT sockets. Only the side that connects out counts: a server's inbound clients are flows of
direction ``inbound`` and never reach this query.

Fleet context lowers what looks like a scan but is a fleet tool: a fan-out to one port that is open on the
targets (every connection established, the port a listener on the fleet's hosts) is polling or configuration
management (Prometheus scraping :9100, Ansible over ssh); it is kept as a finding but scaled down, and says why.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector

POLLING_SCALE = 0.3


class InternalScan(Detector):
    name: ClassVar[str] = "internal_scan"
    technique: ClassVar[str] = "T1046"
    priority: ClassVar[int] = 10
    action: ClassVar[str | None] = "find what launched the scanner, check the scanned hosts for follow-on logins"
    explain: ClassVar[dict[str, str]] = {
        "fan_out": "fan-out to {targets} internal targets: {hosts} hosts ({sample}) on {ports} ports; "
                   "{half_open} half-open (SYN_SENT) connections",
        "polling": "fan-out to {targets} internal targets: {hosts} hosts ({sample}) on port {port}, every "
                   "connection established and the port open on {listening} fleet hosts: polling or configuration "
                   "management, not a scan (lowered)",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]]:
        sql = """
            WITH counted AS (
                SELECT host, process_identity, count(*) AS targets, count(DISTINCT remote_ip) AS hosts,
                       count(DISTINCT remote_port) AS ports, sum(half_open) AS half_open,
                       count(*) FILTER (WHERE half_open = 0 AND established > 0) AS established,
                       min(remote_port) AS port
                FROM pairs WHERE protocol = 'tcp' AND internal GROUP BY host, process_identity
                HAVING (count(*) >= $min_targets OR sum(half_open) >= $min_half_open)
                   AND count(*) >= $min_targets // 2
            ), targets AS (
                -- the target lists only for the processes that fan out
                SELECT c.*, list(DISTINCT p.remote_ip ORDER BY p.remote_ip) AS ips,
                       list(p.destination ORDER BY p.destination) AS covers
                FROM counted c JOIN pairs p USING (host, process_identity)
                WHERE p.protocol = 'tcp' AND p.internal
                GROUP BY ALL
            ), open_ports AS (
                SELECT local_port AS port, count(DISTINCT host) AS listening FROM listening
                WHERE protocol = 'tcp' GROUP BY 1
            ), scans AS (
                SELECT t.*, coalesce(o.listening, 0) AS listening,
                       t.ports = 1 AND t.established = t.targets AND t.half_open = 0
                       AND coalesce(o.listening, 0) >= least(t.hosts, 3) AS polling
                FROM targets t LEFT JOIN open_ports o ON o.port = t.port AND t.ports = 1
            )
            SELECT host, process_identity,
                   'internal network (' || hosts || ' hosts, ' || ports || ' ports)' AS destination,
                   CASE WHEN polling THEN 'polling' ELSE 'fan_out' END AS reason,
                   round(3.0 + least(2.0, targets / (2 * $min_targets))
                         + CASE WHEN half_open >= $min_half_open THEN 1.5 ELSE 0.0 END, 2) AS weight,
                   CASE WHEN polling THEN $polling_scale ELSE 1.0 END AS scale,
                   CASE WHEN hosts = 1 THEN ips[1] END AS remote_ip,
                   CASE WHEN ports = 1 THEN port END AS remote_port, covers,
                   MAP {'targets': targets::VARCHAR, 'hosts': hosts::VARCHAR, 'ports': ports::VARCHAR,
                        'port': port::VARCHAR, 'listening': listening::VARCHAR,
                        'sample': array_to_string(ips[1:5], ', ') || CASE WHEN hosts > 5 THEN ', ...' ELSE '' END,
                        'half_open': half_open::VARCHAR} AS facts
            FROM scans"""
        return sql, {"min_targets": ctx.config.scan_min_targets, "min_half_open": ctx.config.scan_min_half_open,
                     "polling_scale": POLLING_SCALE}
