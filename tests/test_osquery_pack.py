"""The osquery pack parses, and each query runs on tables shaped like osquery's and yields connhunt's column names.

osquery itself is not installable here, so the queries run in SQLite (osquery's SQL engine) over empty tables
declared with the columns osquery documents for them: a wrong column or alias fails here, not on an endpoint.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from orchestrator.schema import CONNECTION_COLUMNS, DNS_COLUMNS

PACK = Path(__file__).resolve().parents[1] / "artifacts" / "osquery" / "connhunt.conf"

# The subset of osquery's tables and columns the pack reads (from osquery's table specs).
OSQUERY_TABLES = {
    "process_open_sockets": "pid, socket, family, protocol, local_address, remote_address, local_port, remote_port, "
                            "path, state, net_namespace",
    "processes": "pid, name, path, cmdline, state, cwd, root, uid, gid, euid, egid, parent, start_time",
    "users": "uid, gid, username, description, directory, shell, uuid",
    "hash": "path, directory, md5, sha1, sha256",
    "system_info": "hostname, uuid, computer_name",
    "os_version": "name, version, platform",
    "time": "unix_time, datetime",
    "dns_cache": "name, type, flags",
    "dns_lookup_events": "eid, time, time_windows, datetime, pid, path, username, name, type, type_id, status, "
                         "response",
}
# Columns the endpoint cannot know: the store derives process_identity, and sockets carry no remote name.
DERIVED = {"process_identity", "remote_hostname"}


def _pack() -> dict:
    return json.loads(PACK.read_text())


def _columns_of(query: str) -> list[str]:
    db = sqlite3.connect(":memory:")
    for table, columns in OSQUERY_TABLES.items():
        db.execute(f"CREATE TABLE {table} ({columns})")
    cursor = db.execute(query)
    return [d[0] for d in cursor.description]


def test_pack_is_json_with_platforms_and_intervals() -> None:
    pack = _pack()
    assert pack["queries"], "the pack has no queries"
    for name, spec in pack["queries"].items():
        assert name.startswith("connhunt_")
        assert set(spec["platform"].split(",")) <= {"linux", "darwin", "windows"}
        assert int(spec["interval"]) > 0
        assert spec["query"].rstrip().endswith(";")


@pytest.mark.parametrize("name", ["connhunt_connections", "connhunt_connections_windows"])
def test_connection_queries_yield_exactly_the_schema_columns(name: str) -> None:
    expected = [c for c, _ in CONNECTION_COLUMNS if c not in DERIVED]
    assert _columns_of(_pack()["queries"][name]["query"]) == expected


@pytest.mark.parametrize("name", ["connhunt_dns_lookups_windows", "connhunt_dns_cache_windows"])
def test_dns_queries_use_only_schema_columns(name: str) -> None:
    columns = _columns_of(_pack()["queries"][name]["query"])
    assert set(columns) <= {c for c, _ in DNS_COLUMNS}
    assert {"host", "query", "collected_at"} <= set(columns)


def test_connection_query_joins_rows_into_schema_values() -> None:
    """One socket with its process, parent, user and hash comes out normalisable by connhunt's schema."""
    from orchestrator.schema import normalise_connection

    db = sqlite3.connect(":memory:")
    for table, columns in OSQUERY_TABLES.items():
        db.execute(f"CREATE TABLE {table} ({columns})")
    db.execute("INSERT INTO system_info (hostname, uuid) VALUES ('web-1', 'uuid-1')")
    db.execute("INSERT INTO os_version (platform) VALUES ('ubuntu')")
    db.execute("INSERT INTO time (unix_time) VALUES (1700000000)")
    db.execute("INSERT INTO processes (pid, name, path, cmdline, uid, parent, start_time) VALUES "
               "(42, 'updaterd', '/tmp/x/updaterd', '/tmp/x/updaterd -q', 0, 1, 1699999000), "
               "(1, 'systemd', '/usr/lib/systemd/systemd', '', 0, 0, 1690000000)")
    db.execute("INSERT INTO users (uid, username) VALUES (0, 'root')")
    db.execute("INSERT INTO hash (path, sha256) VALUES ('/tmp/x/updaterd', 'AB' || hex(zeroblob(31)))")
    db.execute("INSERT INTO process_open_sockets (pid, family, protocol, local_address, remote_address, local_port, "
               "remote_port, state) VALUES (42, 2, 6, '203.0.113.1', '203.0.113.50', 40000, 4444, 'ESTABLISHED'), "
               "(42, 2, 6, '0.0.0.0', '0.0.0.0', 22, 0, 'LISTEN'), (42, 1, 0, '', '', 0, 0, '')")
    cursor = db.execute(_pack()["queries"]["connhunt_connections"]["query"])
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r)) for r in cursor.fetchall()]
    assert len(rows) == 1, "listening and unix sockets must be left out"
    row = dict(rows[0], attributed=rows[0]["attributed"] == "true")
    out = normalise_connection(row)
    assert (out["process_path"], out["parent_name"], out["username"], out["remote_port"], out["state"]) == (
        "/tmp/x/updaterd", "systemd", "root", 4444, "ESTABLISHED")
    assert out["exe_sha256"].startswith("ab") and out["protocol"] == "tcp" and out["family"] == "ipv4"
