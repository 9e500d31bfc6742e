"""Puts IOC rows into DuckDB as the ``iocs`` table (columns derived from IocRow) for the threat-intel join."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import duckdb

from orchestrator.intel.model import IOC_COLUMNS
from orchestrator.store import BATCH, _naive_utc

TABLE = "iocs"


def create_table(con: duckdb.DuckDBPyConnection) -> None:
    cols = ", ".join(f'"{name}" {kind}' for name, kind in IOC_COLUMNS)
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({cols})")


def load_into(con: duckdb.DuckDBPyConnection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Create ``iocs`` if needed and append ``rows`` a batch at a time; returns how many went in."""
    create_table(con)
    total = 0
    batch: list[Mapping[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            total += _insert(con, batch)
            batch = []
    if batch:
        total += _insert(con, batch)
    return total


def _insert(con: duckdb.DuckDBPyConnection, batch: list[Mapping[str, Any]]) -> int:
    # Column-wise like orchestrator.store: one list parameter per column, zipped back into rows by unnest.
    values = [[_naive_utc(row[name]) for row in batch] for name, _ in IOC_COLUMNS]
    select = ", ".join(f'unnest(?::{kind}[]) AS "{name}"' for name, kind in IOC_COLUMNS)
    con.execute(f"INSERT INTO {TABLE} SELECT {select}", values)
    return len(batch)
