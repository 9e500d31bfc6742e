"""Scoring: combine the detectors' signal rows per (host, process identity, destination) into findings, in SQL.

Each detector counts once per finding (its strongest signal; detectors declared ``combine = "sum"`` add up their
distinct reasons); the smallest prevalence scale multiplies the total; the risk follows from the total and the
confidence from how many independent behaviours agree. A covering signal (a scan, an exfiltration domain) folds
the destinations it stands for into its own finding, and sockets nobody owned fold into the process that talks to
the same destination on the same host. Python builds only the findings that come out, never one object per pair;
every ordering has a full tie-break, so the same input gives the same report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from orchestrator.detectors import DETECTORS, Context, Detector
from orchestrator.detectors.base import SIGNAL_COLUMNS, values_table
from orchestrator.model import RISK_THRESHOLDS, Contribution, Finding, Risk, risk_for
from orchestrator.schema import UNKNOWN_PROCESS

Progress = Callable[[str, int, int], None] | None


def run_detectors(ctx: Context, detectors: Sequence[Detector] = DETECTORS, progress: Progress = None) -> int:
    """Fill the ``signals`` table: behavioural and context detectors first, then the statistics over the pairs they
    flagged (``candidates``). Returns the number of signal rows."""
    con = ctx.con
    con.execute(f"CREATE OR REPLACE TEMP TABLE signals ({SIGNAL_COLUMNS})")
    ordered = [d for d in detectors if not d.statistic] + [d for d in detectors if d.statistic]
    for done, detector in enumerate(ordered):
        if detector.statistic and done and not ordered[done - 1].statistic:
            con.execute("CREATE OR REPLACE TEMP TABLE candidates AS SELECT DISTINCT host, process_identity, "
                        "destination FROM signals")
        if progress:
            progress(f"detector {detector.name}", done, len(ordered))
        built = detector.query(ctx)
        if built is None:
            continue
        sql, params = built
        con.execute(f"INSERT INTO signals BY NAME SELECT * FROM ({sql})", params)
        con.execute("UPDATE signals SET detector = ?, technique = coalesce(technique, ?), context = ? "
                    "WHERE detector IS NULL", [detector.name, detector.technique, detector.context])
    if progress:
        progress("detectors", len(ordered), len(ordered))
    row = con.execute("SELECT count(*) FROM signals").fetchone()
    return int(row[0]) if row else 0


_FOLD_SQL = f"""
-- destinations a covering signal stands for, and the finding they fold into (the smallest, if two cover one)
CREATE OR REPLACE TEMP TABLE folds AS
SELECT host, process_identity, covered, min(destination) AS into_destination FROM (
    SELECT host, process_identity, destination, unnest(covers) AS covered FROM signals WHERE len(covers) > 0)
WHERE covered <> destination GROUP BY ALL;

-- a folded group keeps only its context signals, moved into the covering finding (views: copying the signals'
-- facts maps is what costs here, and only ``kept`` needs them stored)
CREATE OR REPLACE TEMP VIEW folded AS
SELECT s.* REPLACE (coalesce(f.into_destination, s.destination) AS destination)
FROM signals s LEFT JOIN folds f
  ON f.host = s.host AND f.process_identity = s.process_identity AND f.covered = s.destination
WHERE f.into_destination IS NULL OR s.context;

-- a beacon's closed connections linger in TIME_WAIT with no owner: the same traffic, not a second finding,
-- when a known process on that host talks to the same destination (or covers it)
CREATE OR REPLACE TEMP TABLE orphan_owners AS
WITH owners AS (
    SELECT DISTINCT host, destination AS reached, process_identity, destination FROM folded
    WHERE process_identity <> '{UNKNOWN_PROCESS}'
    UNION SELECT host, covered, process_identity, into_destination FROM folds
    WHERE process_identity <> '{UNKNOWN_PROCESS}'
), orphans AS (
    SELECT DISTINCT host, destination AS orphan, destination AS reached FROM folded
    WHERE process_identity = '{UNKNOWN_PROCESS}'
    UNION SELECT host, into_destination, covered FROM folds WHERE process_identity = '{UNKNOWN_PROCESS}'
)
SELECT DISTINCT o.host, o.orphan, w.process_identity, w.destination
FROM orphans o JOIN owners w ON w.host = o.host AND w.reached = o.reached;

CREATE OR REPLACE TEMP VIEW scored_signals AS
SELECT * FROM folded f
WHERE NOT (f.process_identity = '{UNKNOWN_PROCESS}'
           AND EXISTS (SELECT 1 FROM orphan_owners o WHERE o.host = f.host AND o.orphan = f.destination))
UNION ALL BY NAME
SELECT DISTINCT host, process_identity, destination, 'unattributed' AS detector, '' AS technique,
       'orphans' AS reason, 0.0 AS weight, 1.0 AS scale, true AS context, MAP {{}}::MAP(VARCHAR, VARCHAR) AS facts,
       []::VARCHAR[] AS covers
FROM orphan_owners;
"""

_GROUPS_SQL = """
CREATE OR REPLACE TEMP TABLE kept AS
SELECT s.*, m.statistic, m.priority FROM (
    SELECT s.*, row_number() OVER (
        PARTITION BY host, process_identity, destination, detector,
                     CASE WHEN m.combine = 'sum' THEN reason END
        ORDER BY weight DESC, scale < 1 DESC, reason, facts::VARCHAR) AS rn
    FROM scored_signals s JOIN detector_meta m USING (detector)) s
JOIN detector_meta m USING (detector) WHERE rn = 1;

CREATE OR REPLACE TEMP TABLE groups AS
WITH totals AS (
    SELECT host, process_identity, destination,
           round(sum(weight) * min(scale), 2) AS score,
           count(DISTINCT detector) FILTER (WHERE NOT context) AS behavioural,
           coalesce(sum(weight) FILTER (WHERE NOT context), 0) AS behavioural_points,
           count(DISTINCT detector) AS detectors,
           bool_or(NOT statistic) AS has_evidence,
           bool_or(NOT context) AS has_behaviour,
           max(hosts) FILTER (WHERE detector = 'rarity') AS hosts_with_pair
    FROM kept GROUP BY ALL
), primaries AS (
    -- the strongest behavioural signal names the technique; context only when nothing behavioural fired
    SELECT k.host, k.process_identity, k.destination, k.technique, k.detector, k.remote_ip, k.remote_port, k.domain
    FROM kept k JOIN totals t USING (host, process_identity, destination)
    WHERE NOT k.context OR NOT t.has_behaviour
    QUALIFY row_number() OVER (PARTITION BY k.host, k.process_identity, k.destination
                               ORDER BY k.weight DESC, k.priority, k.reason) = 1
)
SELECT t.*, p.technique, p.detector AS primary_detector, p.remote_ip, p.remote_port, p.domain
FROM totals t JOIN primaries p USING (host, process_identity, destination)
WHERE t.score > 0 AND t.has_evidence;
"""

# Findings are numbered over every group (so an id does not depend on --min-risk); only the shown ones are built.
_SHOWN_SQL = """
CREATE OR REPLACE TEMP TABLE ranked AS
SELECT *, row_number() OVER (ORDER BY score DESC, host, process_identity, destination) AS seq FROM groups;
CREATE OR REPLACE TEMP TABLE shown AS SELECT * FROM ranked WHERE score >= $floor;
"""
# What a finding's timeline and process facts come from: the rows of its exact pair or service, else every pair of
# that process on that host (a scan's summary, an exfiltration domain). Read from flows for shown findings only.
_FACTS_SQL = """
WITH pair_keys AS (
    SELECT g.host, g.process_identity, g.destination AS finding, p.protocol, p.remote_ip, p.remote_port
    FROM shown g JOIN pairs p USING (host, process_identity)
    QUALIFY p.destination = g.destination
         OR NOT bool_or(p.destination = g.destination) OVER (PARTITION BY g.host, g.process_identity, g.destination)
), service_keys AS (
    SELECT g.host, g.process_identity, g.destination AS finding, s.protocol, s.local_port
    FROM shown g JOIN services s USING (host, process_identity)
    WHERE s.destination = g.destination
), listener_keys AS (
    SELECT g.host, g.process_identity, g.destination AS finding, l.protocol, l.local_port
    FROM shown g JOIN (SELECT DISTINCT host, process_identity, protocol, local_port FROM listening) l
      USING (host, process_identity)
    WHERE 'port ' || l.local_port || ' (inbound)' = g.destination
      AND NOT EXISTS (SELECT 1 FROM service_keys k WHERE k.host = g.host AND k.process_identity = g.process_identity
                      AND k.finding = g.destination)
), matched AS (
    -- the stored rows of the pairs (which passed the peer filter and the allowlist already); a service's rows
    -- come through flows, which drops its clients from ignored peers
    SELECT k.finding, f.* FROM connections f JOIN pair_keys k
      ON f.host = k.host AND f.process_identity = k.process_identity AND f.protocol = k.protocol
         AND f.remote_ip = k.remote_ip AND f.remote_port IS NOT DISTINCT FROM k.remote_port
    WHERE f.direction <> 'inbound' AND ($hosts IS NULL OR list_contains($hosts, f.host))
    UNION ALL BY NAME
    SELECT k.finding, f.* FROM flows f JOIN service_keys k USING (host, process_identity, protocol, local_port)
    WHERE f.direction = 'inbound' AND ($hosts IS NULL OR list_contains($hosts, f.host))
    UNION ALL BY NAME
    SELECT k.finding, l.* EXCLUDE (name), 'listener' AS direction, 'LISTEN' AS state
    FROM listening l JOIN listener_keys k USING (host, process_identity, protocol, local_port)
), facts AS (
    SELECT host, process_identity, finding AS destination,
           min({first_seen: first_seen, pid: pid, process_name: process_name, process_path: process_path,
                command_line: command_line, username: username, parent_name: parent_name, parent_path: parent_path,
                exe_sha256: exe_sha256}) AS proc,
           list(DISTINCT pid ORDER BY pid) FILTER (WHERE pid IS NOT NULL) AS pids,
           list(DISTINCT ppid ORDER BY ppid) FILTER (WHERE ppid IS NOT NULL) AS ppids,
           list(DISTINCT state ORDER BY state) FILTER (WHERE direction <> 'inbound') AS states,
           list(DISTINCT protocol ORDER BY protocol) AS protocols,
           count(*) AS connections, min(first_seen) AS first_seen, max(last_seen) AS last_seen,
           bool_or(attributed) AS attributed, min(remote_hostname) AS remote_hostname,
           list(DISTINCT source ORDER BY source) AS sources,
           CASE WHEN bool_and(direction = 'listener') THEN 'listener'
                WHEN bool_and(direction IN ('inbound', 'listener')) THEN 'inbound' ELSE 'outbound' END AS direction,
           min(local_port) FILTER (WHERE direction IN ('inbound', 'listener')) AS local_port
    FROM matched GROUP BY host, process_identity, finding
), dns_pids AS (
    SELECT DISTINCT q.host, q.pid FROM queries q
    SEMI JOIN (SELECT DISTINCT host, process_identity FROM shown) USING (host, process_identity)
    WHERE q.pid IS NOT NULL
), users AS (
    -- the user of a DNS-only process, from any connection of the same pid (only the pids shown findings need)
    SELECT c.host, c.pid, min(c.username) AS username FROM connections c SEMI JOIN dns_pids USING (host, pid)
    WHERE c.username IS NOT NULL GROUP BY ALL
), dns_facts AS (
    SELECT q.host, q.process_identity, min(q.process_name) AS process_name, min(q.process_path) AS process_path,
           list(DISTINCT q.pid ORDER BY q.pid) FILTER (WHERE q.pid IS NOT NULL) AS pids, count(*) AS queries,
           min(q.timestamp) AS first_seen, max(q.timestamp) AS last_seen, min(u.username) AS username,
           list(DISTINCT q.source ORDER BY q.source) AS sources
    FROM queries q SEMI JOIN (SELECT DISTINCT host, process_identity FROM shown) USING (host, process_identity)
    LEFT JOIN users u ON u.host = q.host AND u.pid = q.pid
    GROUP BY q.host, q.process_identity
)
SELECT g.*, f.* EXCLUDE (host, process_identity, destination),
       d.process_name AS dns_name, d.process_path AS dns_path, d.pids AS dns_pids, d.queries,
       d.first_seen AS dns_first, d.last_seen AS dns_last, d.username AS dns_user, d.sources AS dns_sources
FROM shown g
LEFT JOIN facts f USING (host, process_identity, destination)
LEFT JOIN dns_facts d USING (host, process_identity)
ORDER BY g.seq
"""


def _detector_meta(ctx: Context) -> None:
    from orchestrator.detectors import ALL_DETECTORS

    values_table(ctx.con, "detector_meta", "detector VARCHAR, statistic BOOLEAN, priority INTEGER, combine VARCHAR",
                 ((d.name, d.statistic, d.priority, d.combine) for d in ALL_DETECTORS))


def score(ctx: Context, hunt_date: datetime, progress: Progress = None, min_risk: str = "Low") -> list[Finding]:
    """The findings of this run at ``min_risk`` or above, most severe first, numbered TH-HUNTIN-YYYYMMDD-NNN in
    the order of all findings (so a finding keeps its id whatever is shown)."""
    con = ctx.con
    _detector_meta(ctx)
    con.execute(_FOLD_SQL)
    con.execute(_GROUPS_SQL)
    floor = next((f for f, r in RISK_THRESHOLDS if r.value == min_risk), 0.0)
    con.execute(_SHOWN_SQL, {"floor": floor})
    if progress:
        progress("scoring", 0, 1)
    # The few hosts of the shown findings, as a list the Parquet scan can test before it decodes a row's other
    # columns (a join alone reads every row); a long list would cost more per row than it saves.
    hosts = [r[0] for r in con.execute("SELECT DISTINCT host FROM shown ORDER BY 1 LIMIT 65").fetchall()]
    cursor = con.execute(_FACTS_SQL, {"hosts": hosts if len(hosts) <= 64 else None})
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    contributions = _contributions(ctx)
    findings = [_finding(ctx, row, contributions.get((row["host"], row["process_identity"], row["destination"]), ()),
                         f"TH-HUNTIN-{hunt_date:%Y%m%d}-{row['seq']:03d}")
                for row in rows]
    if progress:
        progress("scoring", 1, 1)
    return findings


def risk_counts(ctx: Context) -> dict[str, int]:
    """How many findings of each risk this run produced, shown or not."""
    bounds = [(floor, risk.value) for floor, risk in RISK_THRESHOLDS] + [(float("-inf"), Risk.Low.value)]
    cases = " ".join(f"WHEN score >= {floor} THEN '{risk}'" for floor, risk in bounds[:-1])
    rows = ctx.con.execute(f"SELECT CASE {cases} ELSE 'Low' END AS risk, count(*) FROM groups GROUP BY 1").fetchall()
    counts = dict.fromkeys((r.value for r in Risk), 0)
    counts.update({risk: int(n) for risk, n in rows})
    return counts


def _contributions(ctx: Context) -> dict[tuple[str, str, str], tuple[Contribution, ...]]:
    """Every kept signal of the findings, strongest first, as structured contributions."""
    rows = ctx.con.execute("""
        SELECT k.host, k.process_identity, k.destination, k.detector, k.technique, k.reason, k.weight, k.scale,
               k.context, map_entries(k.facts) AS facts
        FROM kept k SEMI JOIN shown USING (host, process_identity, destination)
        ORDER BY k.host, k.process_identity, k.destination, k.weight DESC, k.priority, k.reason""").fetchall()
    out: dict[tuple[str, str, str], list[Contribution]] = {}
    for host, identity, destination, detector, technique, reason, weight, scale, context, facts in rows:
        out.setdefault((host, identity, destination), []).append(Contribution(
            detector=detector, technique=technique or "", reason=reason, points=float(weight),
            facts=tuple((f["key"], f["value"] or "") for f in (facts or [])), scale=float(scale),
            context=bool(context)))
    return {key: tuple(value) for key, value in out.items()}


def _finding(ctx: Context, row: dict[str, Any], contributions: tuple[Contribution, ...], hunt_id: str) -> Finding:
    proc = row["proc"] or {}
    risk = risk_for(row["score"])
    attributed = bool(row["attributed"]) or bool(row["dns_pids"])
    has_pairs = row["proc"] is not None
    techniques = tuple(dict.fromkeys([row["technique"]] + [c.technique for c in contributions
                                                           if c.points > 0 and c.technique]))
    name = proc.get("process_name") or row["dns_name"] or row["process_identity"]
    return Finding(
        hunt_id=hunt_id, technique=row["technique"], techniques=techniques, host=row["host"],
        user=proc.get("username") or row["dns_user"] or "unknown", process_name=name,
        process_path=proc.get("process_path") or row["dns_path"] or "", process_identity=row["process_identity"],
        command_line=proc.get("command_line") or "", parent_name=proc.get("parent_name"),
        parent_path=proc.get("parent_path"),
        pids=tuple(sorted(set(row["pids"] or []) | set(row["dns_pids"] or []))), ppids=tuple(row["ppids"] or ()),
        destination=row["destination"], remote_ip=row["remote_ip"], remote_port=row["remote_port"],
        domain=row["domain"],
        first_seen=row["first_seen"] if has_pairs else row["dns_first"],
        last_seen=row["last_seen"] if has_pairs else row["dns_last"],
        connections=int(row["connections"] if has_pairs else (row["queries"] or 0)),
        hosts_with_pair=row["hosts_with_pair"], fleet_hosts=ctx.fleet_size, risk=risk.value,
        confidence=_confidence(row, attributed), score=float(row["score"]), contributions=contributions,
        response=_response(risk), action=_action(row["primary_detector"]), exe_sha256=proc.get("exe_sha256"),
        direction=row["direction"] or "outbound", local_port=row["local_port"],
        protocols=tuple(row["protocols"] or ()), states=tuple(s for s in row["states"] or () if s and s != "NONE"),
        remote_hostname=row["remote_hostname"],
        sources=tuple(sorted((set(row["sources"] or []) | set(row["dns_sources"] or [])) - {None})),
        kind="connections" if has_pairs else "queries")


def _confidence(row: dict[str, Any], attributed: bool) -> str:
    """How sure the finding is: independent behaviours agreeing, on a socket whose owner is known."""
    behavioural, detectors = row["behavioural"], row["detectors"]
    if behavioural >= 2 or row["behavioural_points"] >= 6 or (behavioural and detectors >= 3):
        level = 2
    elif behavioural or detectors >= 2:
        level = 1
    else:
        level = 0
    # A socket nobody could attribute to a process is one level less certain.
    return ("Low", "Medium", "High")[max(0, level - (0 if attributed else 1))]


def _response(risk: Risk) -> str:
    return {Risk.Critical: "containment", Risk.High: "investigation", Risk.Medium: "investigation"}.get(
        risk, "monitoring")


def _action(detector: str | None) -> str | None:
    from orchestrator.detectors import ALL_DETECTORS

    return next((d.action for d in ALL_DETECTORS if d.name == detector), None)
