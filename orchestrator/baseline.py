"""A baseline of what is normal: the (process identity, destination) pairs seen before, kept in a DuckDB file.

`connhunt baseline` records the pairs of known-good data; a later hunt given `--baseline` can then tell a
destination nobody ever talked to from one the program has used for weeks. The file holds one row per pair with
how many hosts showed it and when, and merging new data into it keeps those figures.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestrator.errors import InputError
from orchestrator.store import Store

TABLE = "baseline_pairs"
# Same destination text as the detectors' pairs: "ip:port", "[v6]:port", or the bare address for raw.
DESTINATION_SQL = """CASE WHEN remote_port IS NULL OR protocol = 'raw' THEN remote_ip
            WHEN contains(remote_ip, ':') THEN '[' || remote_ip || ']:' || remote_port
            ELSE remote_ip || ':' || remote_port END"""
_PAIRS_SQL = f"""
SELECT process_identity, {DESTINATION_SQL} AS destination,
       count(DISTINCT host) AS hosts, min(first_seen) AS first_seen, max(last_seen) AS last_seen
FROM connections WHERE remote_ip NOT IN ('', '0.0.0.0', '::') OR protocol = 'raw'
GROUP BY ALL
"""


def write_baseline(store: Store, path: Path) -> int:
    """Merge the pairs in ``store`` into the baseline file at ``path``; returns how many pairs it now holds."""
    try:
        base = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot open as a baseline: {str(exc).splitlines()[0]}") from None
    try:
        base.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (process_identity VARCHAR, destination VARCHAR, "
                     "hosts BIGINT, first_seen TIMESTAMP, last_seen TIMESTAMP)")
        rows = store.query(_PAIRS_SQL)
        if rows:
            columns = ("process_identity", "destination", "hosts", "first_seen", "last_seen")
            kinds = ("VARCHAR", "VARCHAR", "BIGINT", "TIMESTAMP", "TIMESTAMP")
            select = ", ".join(f"unnest(?::{k}[]) AS {c}" for c, k in zip(columns, kinds))
            base.execute(f"CREATE TEMP TABLE incoming AS SELECT {select}", [[r[c] for r in rows] for c in columns])
            # Hosts add up across merges: an upper bound when the same host is recorded twice, which only makes
            # a pair look more common than it was, never rarer.
            base.execute(f"""
                CREATE OR REPLACE TABLE {TABLE} AS
                SELECT process_identity, destination, sum(hosts) AS hosts, min(first_seen) AS first_seen,
                       max(last_seen) AS last_seen
                FROM (SELECT * FROM {TABLE} UNION ALL SELECT * FROM incoming) GROUP BY ALL""")
        count = base.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
        return int(count[0]) if count else 0
    finally:
        base.close()


def attach(store: Store, path: Path) -> None:
    """Make the baseline readable as ``base.baseline_pairs`` from the store's connection (read only)."""
    if store.query("SELECT 1 FROM duckdb_databases() WHERE database_name = 'base'"):
        return
    if not path.is_file():
        raise InputError(f"{path}: no such baseline file (make one with connhunt baseline)")
    try:
        store.con.execute("ATTACH ? AS base (READ_ONLY)", [str(path)])
        store.con.execute(f"SELECT 1 FROM base.{TABLE} LIMIT 1")
    except duckdb.Error as exc:
        raise InputError(f"{path}: not a connhunt baseline: {str(exc).splitlines()[0]}") from None
