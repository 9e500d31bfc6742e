"""T1071 beaconing: regular intervals between one process's connections to one destination.

RITA-style, computed in DuckDB: Bowley skewness and median absolute deviation of the intervals between connection
starts, plus how many intervals sit near the median (histogram regularity). Jitter of +/-20 % still scores well;
intervals that are whole multiples of the period (a missed sample, a skipped check-in) are folded back onto the
period first. An interval that spans a gap in the host's collection (no row from that host for longer than
``collection_gap_s``: collections hours apart) is not an interval at all: the host was not watched then; and a
collection window counts only when it holds three intervals or more of its own.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector, values_table
from orchestrator.detectors.lolbin import INTERPRETERS, LOLBINS, ODD_DIRS, SHELLS
from orchestrator.detectors.nonstandard_port import INTERNAL_SERVICE_PORTS

MIN_SCORE = 0.7
SERVICE_SCALE = 0.5
# Intervals shorter than this are one burst, not two check-ins.
MIN_INTERVAL_S = 0.2

# Starts of each pair (distinct first_seen), the windows the host was watched in, and the intervals inside them.
# Series are numbered (``pair``) so that every window, sort and join below works on one integer, not five keys.
BEACON_STATS_SQL = """
WITH eligible AS MATERIALIZED (
    -- pairs with enough connections to be a series at all: every later step reads only their rows
    SELECT row_number() OVER (ORDER BY host, process_identity, protocol, remote_ip, remote_port) AS pair,
           host, process_identity, protocol, remote_ip, remote_port,
           destination, first_seen, internal, process_path, name FROM pairs
    WHERE protocol <> 'raw' AND connections >= $min_connections
), starts AS MATERIALIZED (
    SELECT DISTINCT e.pair, epoch(f.first_seen) AS t
    -- the stored rows: the pairs already passed the peer filter and the allowlist
    FROM connections f JOIN eligible e USING (host, process_identity, protocol, remote_ip, remote_port)
    WHERE f.first_seen IS NOT NULL AND f.direction <> 'inbound'
), series AS (
    SELECT s.pair, any_value(e.host) AS host FROM starts s JOIN eligible e USING (pair)
    GROUP BY s.pair HAVING count(*) >= $min_connections
), watched AS (
    -- when each host was watched: its collection times (every tick of a collector) and the starts themselves,
    -- kept as the first and last time per span of $gap seconds: only between two spans can a gap lie
    SELECT host, floor(t / $gap) AS span, min(t) AS first, max(t) AS last FROM (
        SELECT host, floor(epoch(collected_at)) AS t FROM connections
        WHERE collected_at IS NOT NULL AND host IN (SELECT host FROM series)
        UNION ALL SELECT e.host, floor(s.t) FROM starts s JOIN eligible e USING (pair))
    GROUP BY host, span
), sessions AS (
    -- a host's collection windows: a new one opens after more than $gap seconds with no row from the host
    -- (numbered as INTEGER: sum() gives HUGEINT, which every later window and join would carry)
    SELECT host, span, (sum(opens::INTEGER) OVER (PARTITION BY host ORDER BY span))::INTEGER AS session FROM (
        SELECT host, span, coalesce(first - lag(last) OVER (PARTITION BY host ORDER BY span) > $gap, true) AS opens
        FROM watched)
), placed AS (
    SELECT s.pair, s.t, w.session
    FROM starts s JOIN series e USING (pair)
    JOIN sessions w ON w.host = e.host AND w.span = floor(floor(s.t) / $gap)
), gaps_apart AS (
    -- an interval across a gap is no interval: only a start whose predecessor is in its window has one (one
    -- window over the series, not one per (series, window): sessions follow time, so the order is the same)
    SELECT pair, session, CASE WHEN lag(session) OVER w = session THEN t - lag(t) OVER w END AS d FROM placed
    WINDOW w AS (PARTITION BY pair ORDER BY t)
), intervals AS (
    -- a window needs a few check-ins of its own to show a rhythm
    SELECT i.pair, i.d FROM gaps_apart i
    SEMI JOIN (SELECT pair, session FROM gaps_apart WHERE d >= $min_interval GROUP BY pair, session
               HAVING count(*) >= 3) w USING (pair, session)
    WHERE i.d >= $min_interval
), counted AS (
    SELECT pair, count(*) AS n, median(d) AS period FROM intervals GROUP BY pair HAVING count(*) >= 3
), folded AS (
    -- a whole multiple of the period is a missed check-in: fold it back onto the period
    SELECT i.pair, c.n, c.period,
           CASE WHEN round(i.d / c.period) >= 2 AND abs(i.d / c.period - round(i.d / c.period))
                     <= 0.25 * round(i.d / c.period) THEN i.d / round(i.d / c.period) ELSE i.d END AS d,
           round(i.d / c.period) >= 2 AND abs(i.d / c.period - round(i.d / c.period))
               <= 0.25 * round(i.d / c.period) AS was_folded
    FROM intervals i JOIN counted c USING (pair)
), quartiles AS (
    -- statistics.quantiles(method="inclusive") is linear interpolation; below 4 values: min, median, max
    SELECT pair, n, CASE WHEN values < 4 THEN low ELSE qs[1] END AS q1, qs[2] AS q2,
           CASE WHEN values < 4 THEN high ELSE qs[3] END AS q3, folded
    FROM (SELECT pair, any_value(n) AS n, count(*) AS values, min(d) AS low, max(d) AS high,
                 quantile_cont(d, [0.25, 0.5, 0.75]) AS qs,  -- one sort for the three
                 count(*) FILTER (WHERE was_folded) AS folded
          FROM folded GROUP BY pair)
), spread AS (
    SELECT f.pair, q.n, q.q1, q.q2, q.q3, q.folded, median(abs(f.d - q.q2)) AS mad,
           count(*) FILTER (WHERE abs(f.d - q.q2) <= 0.25 * q.q2) / count(*) AS near
    FROM folded f JOIN quartiles q USING (pair)
    GROUP BY f.pair, q.n, q.q1, q.q2, q.q3, q.folded
), scored AS (
    SELECT *,
           CASE WHEN q3 = q1 THEN 0.0 ELSE (q1 + q3 - 2 * q2) / (q3 - q1) END AS skew,
           -- Skew only means something when the spread does: sampling at whole ticks swings Bowley's skew between
           -- -1 and +1 while the timing is as regular as a beacon gets, so skew costs in proportion to the spread.
           CASE WHEN q2 > 0 THEN least(1.0, (q3 - q1) / (0.5 * q2)) ELSE 1.0 END AS spread_share,
           -- +/-20 % jitter gives a MAD near 10 % of the period, 20 % once sampled at whole ticks; random 60 %+.
           CASE WHEN q2 > 0 THEN greatest(0.0, 1 - mad / (0.75 * q2)) ELSE 0.0 END AS mad_score
    FROM spread
)
SELECT e.host, e.process_identity, e.protocol, e.remote_ip, e.remote_port, e.destination, e.first_seen, e.internal,
       e.process_path, e.name, s.* EXCLUDE (pair),
       s.n + 1 AS connections,
       round(greatest(0.0, ((1 - least(1.0, abs(s.skew)) * s.spread_share) + s.mad_score + s.near) / 3
                      - 0.25 * s.folded / s.n), 3) AS score
FROM scored s JOIN eligible e USING (pair)
"""


def beacon_params(ctx: Context) -> dict[str, Any]:
    return {"min_connections": ctx.config.beacon_min_connections, "gap": ctx.config.collection_gap_s,
            "min_interval": MIN_INTERVAL_S}


class Beacon(Detector):
    name: ClassVar[str] = "beacon"
    technique: ClassVar[str] = "T1071"
    priority: ClassVar[int] = 50
    explain: ClassVar[dict[str, str]] = {
        "regular": "beacon: {connections} connections every {period} s (MAD {mad} s, Bowley skew {skew}, "
                   "{near} within 25% of the period{folded_note}; regularity {score}) since {since} UTC",
        "internal_service": "regular connections: {connections} every {period} s (regularity {score}) to an "
                            "internal service port ({port}) from an installed program: a connection pool or a "
                            "health check, not a check-in (lowered)",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]]:
        sql = f"""
            WITH stats AS ({BEACON_STATS_SQL}), judged AS (
                -- a pool or health check: an installed program (not a LOLBin, a shell or a writable-path binary)
                -- polling an internal host on a service port
                SELECT *, internal AND list_contains($internal_services, remote_port)
                          AND NOT regexp_matches(lower(coalesce(process_path, process_identity)), $odd)
                          AND name NOT IN (SELECT name FROM beacon_loud_names) AS quiet
                FROM stats WHERE score >= {MIN_SCORE})
            SELECT s.host, s.process_identity, s.destination, s.remote_ip, s.remote_port,
                   CASE WHEN s.quiet THEN 'internal_service' ELSE 'regular' END AS reason,
                   round(4.0 * s.score, 2) AS weight, CASE WHEN s.quiet THEN $service_scale ELSE 1.0 END AS scale,
                   MAP {{'connections': s.connections::VARCHAR, 'period': printf('%.1f', s.q2),
                        'mad': printf('%.2f', s.mad), 'skew': printf('%+.2f', s.skew),
                        'near': printf('%.0f%%', 100 * s.near),
                        'folded_note': CASE WHEN s.folded > 0 THEN ', ' || s.folded || ' missed check-ins folded'
                                            ELSE '' END,
                        'score': printf('%.2f', s.score), 'since': strftime(s.first_seen, '%H:%M:%S'),
                        'port': s.remote_port::VARCHAR}} AS facts
            FROM judged s"""
        values_table(ctx.con, "beacon_loud_names", "name VARCHAR",
                     ((n,) for n in sorted({*LOLBINS, *SHELLS, *INTERPRETERS})))
        return sql, {**beacon_params(ctx), "service_scale": SERVICE_SCALE, "odd": ODD_DIRS,
                     "internal_services": sorted(INTERNAL_SERVICE_PORTS)}


def series_stats(starts: list[float], min_connections: int = 4, gap_s: float = 1800.0) -> dict[str, Any] | None:
    """The beacon statistics of one series of connection start times (epoch seconds), by the same SQL the detector
    runs: for tests and for a library user checking a series by hand."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TEMP TABLE connections AS SELECT 'h' AS host, 'p' AS process_identity, 'tcp' AS protocol, "
                "'192.0.2.1' AS remote_ip, 443 AS remote_port, 'outbound' AS direction, "
                "make_timestamp((t * 1e6)::BIGINT) AS first_seen, make_timestamp((t * 1e6)::BIGINT) AS last_seen, "
                "make_timestamp((t * 1e6)::BIGINT) AS collected_at FROM unnest(?::DOUBLE[]) u(t)", [starts])
    con.execute("CREATE TEMP VIEW flows AS SELECT * FROM connections")
    con.execute("CREATE TEMP TABLE pairs AS SELECT host, process_identity, protocol, remote_ip, remote_port, "
                "count(*) AS connections, '192.0.2.1:443' AS destination, min(first_seen) AS first_seen, "
                "false AS internal, NULL::VARCHAR AS process_path, 'p' AS name FROM connections GROUP BY ALL")
    cursor = con.execute(BEACON_STATS_SQL, {"min_connections": min_connections, "gap": gap_s,
                                            "min_interval": MIN_INTERVAL_S})
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    con.close()
    return dict(zip(names, row, strict=True)) if row else None
