"""bench/score's fleet generator: its output reads with connhunt's own readers, the Parquet columns are the
schema's, the planted rows exist as truth.json says, and a seed fixes every byte."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from bench.score.evaluate import evaluate, remote_matches
from bench.score.generate import generate
from orchestrator.schema import TABLE_COLUMNS
from orchestrator.sources import read_any

HOSTS, ROWS = 20, 20_000


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fleet")
    generate(HOSTS, ROWS, out, seed=3)
    return out


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


def test_jsonl_reads_with_connhunt_and_matches_parquet(fleet: Path) -> None:
    name, records = read_any(fleet / "fleet.jsonl")
    rows = list(records)
    assert name == "jsonl"
    kinds = Counter(kind for kind, _ in rows)
    truth = json.loads((fleet / "truth.json").read_text())
    assert sum(kinds.values()) == ROWS == truth["rows"]
    assert dict(kinds) == truth["rows_by_kind"]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # the first connection row, as connhunt normalised it, equals the Parquet's first row column for column
    first = next(row for kind, row in rows if kind == "connection")
    cols = [c for c, _ in TABLE_COLUMNS["connections"]]
    parquet = dict(zip(cols, con.execute(f"SELECT * FROM read_parquet('{fleet / 'connections.parquet'}') LIMIT 1")
                       .fetchone()))
    normalised = {c: (v.replace(tzinfo=None) if hasattr(v, "tzinfo") and v is not None else v)
                  for c, v in first.items()}
    assert normalised == parquet


def test_parquet_columns_are_the_schema(fleet: Path) -> None:
    con = duckdb.connect()
    for table, columns in TABLE_COLUMNS.items():
        if table == "health":
            continue
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{fleet / (table + '.parquet')}')").fetchall()
        assert tuple((name, typ) for name, typ, *_ in described) == columns


def test_planted_rows_exist_as_truth_says(fleet: Path) -> None:
    truth = json.loads((fleet / "truth.json").read_text())
    con = duckdb.connect()
    tables = {t: str(fleet / f"{t}.parquet") for t in ("connections", "listeners", "dns")}
    assert {p["scenario"] for p in truth["planted"]} >= {
        "backdoor_c2_port", "beacon_60s", "icmp_tunnel", "dns_exfiltration", "internal_scan", "cryptominer",
        "lolbin_rundll32", "lolbin_regsvr32", "reverse_shell", "bind_shell", "process_injection"}
    for p in truth["planted"]:
        key = [p["host"], p["process_identity"]]
        if p["scenario"] == "dns_exfiltration":
            n = con.execute(f"SELECT count(*) FROM read_parquet('{tables['dns']}') WHERE host = ? AND "
                            "process_identity = ? AND query LIKE '%.' || ?", [*key, p["remote"]]).fetchone()[0]
            assert n == 300, p
        elif p["scenario"] == "bind_shell":
            n = con.execute(f"SELECT count(*) FROM read_parquet('{tables['listeners']}') WHERE host = ? AND "
                            "process_identity = ? AND local_port = ?", [*key, int(p["remote"])]).fetchone()[0]
            inbound = con.execute(f"SELECT direction, stdio FROM read_parquet('{tables['connections']}') WHERE host = ?"
                                  " AND process_identity = ? AND local_port = ?", [*key, int(p["remote"])]).fetchall()
            assert n == 2 and inbound == [("inbound", True if p["process_identity"].startswith("/") else None)], p
        elif p["scenario"] == "internal_scan":
            row = con.execute(f"SELECT count(DISTINCT remote_ip), count(*) FILTER (WHERE state = 'SYN_SENT') FROM "
                              f"read_parquet('{tables['connections']}') WHERE host = ? AND process_identity = ?",
                              key).fetchone()
            assert row[0] >= 200 and row[1] > 100, (p, row)
        else:
            rows = con.execute(f"SELECT remote_ip, remote_port, protocol, stdio, command_line FROM read_parquet("
                               f"'{tables['connections']}') WHERE host = ? AND process_identity = ?", key).fetchall()
            assert rows, p
            ip, _, port = p["remote"].rpartition(":") if ":" in p["remote"] else (p["remote"], "", "")
            assert all(r[0] == ip and (r[1] == int(port) if port else r[2] == "raw") for r in rows), (p, rows[:3])
            if p["scenario"] == "reverse_shell":
                assert all(r[3] is True for r in rows)
            if p["scenario"] == "cryptominer":
                assert all("stratum+tcp://" in r[4] for r in rows)


def test_benign_side_has_servers_with_inbound_clients_and_the_fleet_tools(fleet: Path) -> None:
    con = duckdb.connect()
    conns = f"read_parquet('{fleet / 'connections.parquet'}')"
    inbound = dict(con.execute(f"SELECT process_name, count(*) FROM {conns} WHERE direction = 'inbound' GROUP BY 1")
                   .fetchall())
    assert inbound["nginx"] > 1000 and inbound["sshd"] > 0 and inbound["postgres"] > 0 and inbound["lsass.exe"] > 0
    scanner = con.execute(f"SELECT count(DISTINCT remote_ip), count(*) FILTER (WHERE state = 'SYN_SENT') FROM {conns}"
                          " WHERE process_name = 'nessusd'").fetchone()
    assert scanner[0] == HOSTS - 1 and scanner[1] > 0
    windows = con.execute(f"SELECT count(DISTINCT collected_at) FROM {conns} WHERE host = 'WKS-00019'").fetchone()[0]
    assert windows == 3


def test_same_seed_same_bytes(fleet: Path, tmp_path: Path) -> None:
    generate(HOSTS, ROWS, tmp_path / "again", seed=3)
    assert _digests(tmp_path / "again") == _digests(fleet)
    generate(HOSTS, ROWS, tmp_path / "other", seed=4)
    assert _digests(tmp_path / "other")["connections.parquet"] != _digests(fleet)["connections.parquet"]


def test_evaluate_matches_plants_and_names_lookalikes(fleet: Path) -> None:
    truth = json.loads((fleet / "truth.json").read_text())
    p = truth["planted"][0]
    ip, _, port = p["remote"].rpartition(":")
    nessus = next(b for b in truth["benign"] if b["name"] == "vulnerability_scanner")["process_identity"][0]
    report = {"findings": [
        {"host": p["host"], "process_identity": p["process_identity"], "destination": p["remote"], "remote_ip": ip,
         "remote_port": int(port), "risk": "Critical", "techniques": ["T1571"]},
        {"host": "vscan-00000", "process_identity": nessus, "destination": "internal network", "risk": "High"},
        {"host": "WKS-00019", "process_identity": "x", "destination": "1.2.3.4:443", "risk": "Medium"}]}
    result = evaluate(report, truth)
    assert result["planted"][0]["best_risk"] == "Critical" and result["planted_high"] == 1
    assert result["benign_high_by_name"] == {"vulnerability_scanner": 1}
    assert result["medium"] == 1 and result["medium_per_100_hosts"] == 5.0
    assert remote_matches("31337", {"destination": "0.0.0.0:31337"})
    assert not remote_matches("203.0.113.9:4444", {"destination": "203.0.113.9:443", "remote_ip": "203.0.113.9",
                                                   "remote_port": 443})
