"""The set-wise loaders: connhunt JSONL on DuckDB's reader stores exactly the rows the row-wise reader stores;
Parquet and DuckDB files round-trip through `connhunt export`; what the fast path cannot judge falls back to the
reader that names the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.pipeline import IngestStats, ingest_files, store_records
from orchestrator.sources import bulk
from orchestrator.sources.jsonl import read_jsonl
from orchestrator.store import Store
from tests.conftest import at, connection, run_connhunt

TABLES = ("connections", "listeners", "dns", "health")
# Spellings the normaliser must fix, defaults it must fill, and every kind of record.
MIXED = [
    connection(),
    connection(remote_ip="::ffff:203.0.113.5", protocol="TCP6", state="estab", direction="OUT", local_port=40001),
    connection(process_path="C:\\Users\\Bob\\X.EXE", os="Windows", process_name="X.EXE", exe_sha256="ABCDEF",
               remote_ip="2001:DB8::1"),
    connection(protocol="raw", remote_port=None, remote_ip="0.0.0.0", state="PROTO_1", first_seen=None,
               last_seen=None, collected_at=at(5)),
    connection(pid=None, attributed=None, process_path=None, process_name=None,
               first_seen="2026-11-23 01:00:00.5+02:00", stdio=True, seen_by="event", attribution="inode"),
    {"kind": "dns", "host": "h1", "query": "WWW.Example.COM.", "answers": ["1.2.3.4"], "timestamp": at(3),
     "server_ip": "10.0.0.53", "qtype": "a"},
    {"kind": "listener", "host": "h1", "protocol": "tcp", "local_ip": "0.0.0.0", "local_port": 22, "pid": 5,
     "process_name": "sshd", "process_path": "/usr/sbin/sshd", "first_seen": at(0)},
    {"kind": "health", "host": "h1", "check": "not_root", "count": 1, "message": "x"},
]


def _rows(store: Store) -> dict[str, list[tuple]]:
    return {t: store.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in TABLES}


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_fast_jsonl_stores_what_the_row_reader_stores(tmp_path: Path) -> None:
    path = _write(tmp_path / "mixed.jsonl", MIXED)
    fast = Store()
    assert bulk.load(path, fast, "jsonl") == {"connection": 5, "listener": 1, "dns": 1, "health": 1}
    slow = Store()
    store_records(slow, read_jsonl(path), IngestStats())
    assert _rows(fast) == _rows(slow)
    assert fast.con.execute("SELECT DISTINCT remote_ip FROM connections ORDER BY 1").fetchall() == [
        ("0.0.0.0",), ("198.51.100.10",), ("2001:db8::1",), ("203.0.113.5",)]


@pytest.mark.parametrize("bad", [{"remote_port": "abc"}, {"pid": "x"}, {"first_seen": "yesterday"},
                                 {"protocol": "sctp"}, {"process_name": ["a"]}])
def test_what_the_fast_path_cannot_judge_goes_to_the_located_reader(tmp_path: Path, bad: dict) -> None:
    path = _write(tmp_path / "bad.jsonl", [connection(), connection(**bad)])
    assert bulk.load(path, Store(), "jsonl") is None
    with pytest.raises(InputError, match=r"bad\.jsonl:2: "):
        ingest_files([path], Store())


def test_parquet_and_duckdb_round_trip_through_export(tmp_path: Path) -> None:
    source = _write(tmp_path / "mixed.jsonl", MIXED)
    original = Store()
    ingest_files([source], original)
    written = bulk.export(original, tmp_path / "out")
    assert sorted(written) == sorted(TABLES)
    from_parquet = Store()
    stats = ingest_files(sorted(written.values()), from_parquet)
    assert stats.rows == {"connection": 5, "listener": 1, "dns": 1, "health": 1}
    # an export is already in the schema's shape: read in place, not copied
    assert sorted(from_parquet.external) == sorted(TABLES)
    assert from_parquet.con.execute(f"SELECT count(*) FROM {from_parquet.table('connections')}").fetchone() == (0,)
    assert _rows(from_parquet) == _rows(original)
    hunt_db = tmp_path / "hunt.duckdb"
    with Store(hunt_db) as on_disk:
        ingest_files([source], on_disk)
    from_duckdb = Store()
    ingest_files([hunt_db], from_duckdb)
    assert _rows(from_duckdb) == _rows(original)


@pytest.mark.parametrize("respelled", ["upper(protocol) AS protocol", "lower(state) AS state",
                                       "upper(os) AS os", "'::FFFF:' || local_ip AS local_ip"])
def test_a_parquet_file_off_the_schema_spelling_is_normalised_on_copy(tmp_path: Path, respelled: str) -> None:
    source = _write(tmp_path / "mixed.jsonl", MIXED)
    original = Store()
    ingest_files([source], original)
    target = tmp_path / "respelled.parquet"
    original.con.execute(f"COPY (SELECT * REPLACE ({respelled}) FROM connections) TO '{target}'")
    copied = Store()
    ingest_files([target], copied)
    assert copied.external == {}
    assert _rows(copied)["connections"] == _rows(original)["connections"]


def test_a_damaged_parquet_file_is_a_one_line_error(tmp_path: Path) -> None:
    source = _write(tmp_path / "mixed.jsonl", MIXED)
    store = Store()
    ingest_files([source], store)
    target = bulk.export(store, tmp_path / "out")["connections"]
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
    result = run_connhunt("score", str(target))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(target) in result.stderr
