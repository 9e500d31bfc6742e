"""T1496 Resource Hijacking: a cryptominer talking to a mining pool.

Signals: stratum URLs or miner flags in the command line (the strongest tell), stratum pool ports, pool-like
host names (from the connection or from DNS answers), and one long-lived connection to the pool.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector, values_table

POOL_PORTS = {3333, 3334, 3335, 3336, 3357, 4444, 5555, 5556, 5588, 6666, 7777, 8008, 9000, 9999, 10001, 10128,
              10343, 13333, 14433, 14444, 15555, 17777, 20535, 20580, 45560, 45700}
# RE2 patterns (DuckDB's regexp engine), case-insensitive.
CMDLINE = (r"(?i)stratum\d?\+(?:tcp|ssl|tls)://|--donate-level|--coin[= ]|--algo[= ](?:rx|cn|kawpow|ethash)"
                      r"|\bxmrig\b|\bcpuminer\b|\bxmr-stak\b|\bnanominer\b|\bnbminer\b|\bt-rex\b|\bethminer\b")
POOL_NAME = (r"(?i)(?:^|[.-])(?:pool|mine|mining|xmr|monero|nicehash|minexmr|supportxmr|nanopool|2miners"
                        r"|f2pool|hashvault|c3pool|moneroocean|ethermine|herominers|unmineable|viabtc|antpool"
                        r"|slushpool|miningpoolhub|zpool|prohashing)(?:[.-]|\d|$)")
LONG_LIVED_S = 60
# Ports that are pool ports but also far more common for other things: worth little without a miner command line.
AMBIGUOUS_POOL_PORTS = (4444, 5555, 6666, 9000, 9999)


class Cryptominer(Detector):
    name: ClassVar[str] = "cryptominer"
    technique: ClassVar[str] = "T1496"
    priority: ClassVar[int] = 0
    combine: ClassVar[str] = "sum"
    action: ClassVar[str | None] = "stop the miner process, remove its binary and persistence, block the pool endpoint"
    explain: ClassVar[dict[str, str]] = {
        "miner_cmdline": "miner marker {marker!r} in the command line",
        "pool_port": "remote port {port} is a stratum pool port",
        "pool_name": "remote resolves from pool-like name(s) {names}",
        "long_lived": "one long-lived connection ({minutes} min)",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]]:
        con = ctx.con
        values_table(con, "pool_ports", "port INTEGER", ((p,) for p in sorted(POOL_PORTS)))
        # (host, answer address) -> the names looked up, so a connection to an address is tied to its name
        con.execute("""
            CREATE OR REPLACE TEMP TABLE miner_names AS
            WITH pool_names AS (
                -- the pattern runs once per distinct name, not per row or pair (as list filters: DuckDB would
                -- push a WHERE below the DISTINCT onto every row)
                SELECT unnest(list_filter(list(DISTINCT query), lambda q: regexp_matches(q, $pool_name))) AS query
                FROM queries
            ), pool_hosts AS (
                SELECT unnest(list_filter(list(DISTINCT remote_hostname), lambda h: regexp_matches(h, $pool_name)))
                    AS remote_hostname
                FROM pairs
            )
            SELECT host, ip, string_agg(DISTINCT query, ', ' ORDER BY query) AS names FROM (
                SELECT DISTINCT host, query, unnest(answers) AS ip FROM queries SEMI JOIN pool_names USING (query)
                UNION SELECT DISTINCT host, remote_hostname, remote_ip FROM pairs SEMI JOIN pool_hosts
                    USING (remote_hostname))
            GROUP BY ALL""", {"pool_name": POOL_NAME})
        # processes whose command line names a miner (the pattern once per distinct command line), and pairs of a
        # process whose rows show several command lines (varied_pairs)
        con.execute("""
            CREATE OR REPLACE TEMP TABLE miner_processes AS
            SELECT p.host, p.process_identity, m.marker FROM processes p JOIN (
                SELECT command_line, regexp_extract(command_line, $cmdline) AS marker FROM (
                    SELECT unnest(list_filter(list(DISTINCT command_line), lambda c: regexp_matches(c, $cmdline)))
                        AS command_line
                    FROM processes WHERE NOT varied)) m USING (command_line)
            WHERE NOT p.varied""", {"cmdline": CMDLINE})
        con.execute("""
            CREATE OR REPLACE TEMP TABLE miner_pairs AS
            SELECT host, process_identity, protocol, remote_ip, remote_port,
                   regexp_extract(command_line, $cmdline) AS marker
            FROM varied_pairs WHERE regexp_matches(command_line, $cmdline)""", {"cmdline": CMDLINE})
        # A pair can have a reason only on a pool port or on a host with a pool name or a miner: the pairs are
        # read through that test (a constant list in the scan), not joined whole with the names and markers.
        hosts = [r[0] for r in con.execute("SELECT host FROM miner_names UNION SELECT host FROM miner_processes "
                                           "UNION SELECT host FROM miner_pairs ORDER BY 1").fetchall()]
        sql = """
            WITH facts AS (
                SELECT p.host, p.process_identity, p.destination, p.remote_ip, p.remote_port,
                       coalesce(m.marker, v.marker, '') AS marker, pp.port IS NOT NULL AS pool_port, n.names,
                       p.connections <= 2 AND epoch(p.last_seen) - epoch(p.first_seen) >= $long_lived AS long_lived,
                       (epoch(p.last_seen) - epoch(p.first_seen)) / 60 AS minutes
                FROM (SELECT * FROM pairs WHERE protocol = 'tcp'
                      AND (list_contains($pool_ports, remote_port) OR list_contains($hosts, host))) p
                LEFT JOIN pool_ports pp ON pp.port = p.remote_port
                LEFT JOIN miner_names n ON n.host = p.host AND n.ip = p.remote_ip
                LEFT JOIN miner_processes m ON m.host = p.host AND m.process_identity = p.process_identity
                LEFT JOIN miner_pairs v ON v.host = p.host AND v.process_identity = p.process_identity
                     AND v.protocol = p.protocol AND v.remote_ip = p.remote_ip AND v.remote_port = p.remote_port
                -- only a pair with some reason below can be a signal
                WHERE m.marker IS NOT NULL OR v.marker IS NOT NULL OR pp.port IS NOT NULL OR n.names IS NOT NULL
            ), reasons AS (
                SELECT *, 'miner_cmdline' AS reason, 5.0 AS weight FROM facts WHERE marker <> ''
                UNION ALL SELECT *, 'pool_port',
                    CASE WHEN marker <> '' OR NOT list_contains($ambiguous, remote_port) THEN 2.0 ELSE 0.5 END
                    FROM facts WHERE pool_port
                UNION ALL SELECT *, 'pool_name', 3.0 FROM facts WHERE names IS NOT NULL
            ), with_duration AS (
                SELECT * FROM reasons
                UNION ALL SELECT DISTINCT ON (host, process_identity, destination) * REPLACE (
                    'long_lived' AS reason, 1.0 AS weight)
                FROM reasons WHERE long_lived
            )
            SELECT host, process_identity, destination, remote_ip, remote_port, reason, weight,
                   MAP {'marker': marker, 'port': remote_port::VARCHAR, 'names': coalesce(names, ''),
                        'minutes': printf('%.1f', minutes)} AS facts
            FROM with_duration
            QUALIFY sum(weight) OVER (PARTITION BY host, process_identity, destination) >= 2.0"""
        return sql, {"long_lived": LONG_LIVED_S, "ambiguous": list(AMBIGUOUS_POOL_PORTS), "hosts": hosts,
                     "pool_ports": sorted(POOL_PORTS)}
