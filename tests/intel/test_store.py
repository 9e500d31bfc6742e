"""The iocs table: columns and DuckDB types from IocRow, rows in batches, and the join the detector will make."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from orchestrator.intel import IOC_COLUMNS, load_intel
from orchestrator.intel import store as intel_store
from orchestrator.intel.store import load_into
from orchestrator.schema import normalise_connection
from orchestrator.store import Store
from tests.intel.helpers import DATA


def table_rows(con: duckdb.DuckDBPyConnection) -> list[dict]:
    cursor = con.execute("SELECT * FROM iocs")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def naive(row: dict) -> dict:
    """A loaded row as DuckDB gives it back: times as naive UTC."""
    return {k: (v.replace(tzinfo=None) if isinstance(v, datetime) else v) for k, v in row.items()}


def test_columns_and_types() -> None:
    con = duckdb.connect()
    intel_store.create_table(con)
    described = [(name, kind) for name, kind, *_ in con.execute("DESCRIBE iocs").fetchall()]
    assert described == list(IOC_COLUMNS)
    assert dict(described) == {
        "kind": "VARCHAR", "value": "VARCHAR", "network": "BOOLEAN", "port": "INTEGER", "host": "VARCHAR",
        "conjunctive": "BOOLEAN", "source_file": "VARCHAR", "source_format": "VARCHAR", "source_line": "INTEGER",
        "indicator_id": "VARCHAR", "name": "VARCHAR", "description": "VARCHAR", "confidence": "INTEGER",
        "valid_from": "TIMESTAMP", "valid_until": "TIMESTAMP", "first_seen": "TIMESTAMP", "last_seen": "TIMESTAMP",
        "tags": "VARCHAR[]", "reference": "VARCHAR"}


@pytest.mark.parametrize("batch", [3, 20000])
def test_rows_round_trip_in_batches(monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    monkeypatch.setattr(intel_store, "BATCH", batch)
    rows = [dict(r) for r in load_intel([DATA / "stix_bundle.json", DATA / "threatfox_recent.csv"])]
    con = duckdb.connect()
    assert load_into(con, rows) == len(rows) == 14
    assert table_rows(con) == [naive(r) for r in rows]
    # a second call appends to the same table
    assert load_into(con, rows[:2]) == 2
    assert con.execute("SELECT count(*) FROM iocs").fetchone() == (16,)


def test_the_detector_join_on_a_store() -> None:
    """What the threat-intel detector does: equality on remote_ip (and port when the IOC has one)."""
    store = Store()
    load_into(store.con, load_intel([DATA / "threatfox_recent.csv", DATA / "feodo_ipblocklist.csv"]))
    base = {"host": "ws-1", "protocol": "tcp", "remote_port": 5555, "process_path": "/tmp/x", "pid": 7}
    store.add_connections([normalise_connection({**base, "remote_ip": "203.0.113.36"}),
                           normalise_connection({**base, "remote_ip": "203.0.113.36", "remote_port": 443}),
                           normalise_connection({**base, "remote_ip": "::ffff:192.0.2.63", "remote_port": 8080}),
                           normalise_connection({**base, "remote_ip": "198.51.100.200"})])
    matches = store.query("""
        SELECT c.remote_ip, c.remote_port, i.name, i.indicator_id, i.confidence, i.source_format
        FROM connections c JOIN iocs i
          ON i.kind IN ('ipv4', 'ipv6') AND NOT i.network AND i.value = c.remote_ip
         AND (i.port IS NULL OR i.port = c.remote_port)
        ORDER BY c.remote_ip""")
    assert matches == [
        {"remote_ip": "192.0.2.63", "remote_port": 8080, "name": "Emotet", "indicator_id": None,
         "confidence": None, "source_format": "feodo-csv"},
        {"remote_ip": "203.0.113.36", "remote_port": 5555, "name": "Cobalt Strike", "indicator_id": "1844853",
         "confidence": 75, "source_format": "threatfox-csv"},
    ]
