"""The osquery pack parses, and each query runs on tables shaped like osquery's and yields connhunt's column names.

osquery itself is not installable here, so the queries run in SQLite (osquery's SQL engine) over empty tables
declared with the columns osquery documents for them: a wrong column or alias fails here, not on an endpoint.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from orchestrator.schema import CONNECTION_COLUMNS, DNS_COLUMNS, LISTENER_COLUMNS, normalise

PACK = Path(__file__).resolve().parents[1] / "artifacts" / "osquery" / "connhunt.conf"

# The subset of osquery's tables and columns the pack reads (from osquery's table specs).
OSQUERY_TABLES = {
    "process_open_sockets": "pid, fd, socket, family, protocol, local_address, remote_address, local_port, "
                            "remote_port, path, state, net_namespace",
    "processes": "pid, name, path, cmdline, state, cwd, root, uid, gid, euid, egid, parent, start_time",
    "listening_ports": "pid, port, protocol, family, address, fd, socket, path, net_namespace",
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


def test_listener_query_yields_exactly_the_listener_columns() -> None:
    expected = [c for c, _ in LISTENER_COLUMNS if c != "process_identity"]
    assert _columns_of(_pack()["queries"]["connhunt_listeners"]["query"]) == expected


@pytest.mark.parametrize("name", ["connhunt_dns_lookups_windows", "connhunt_dns_cache_windows"])
def test_dns_queries_use_only_schema_columns(name: str) -> None:
    columns = _columns_of(_pack()["queries"][name]["query"])
    assert set(columns) <= {c for c, _ in DNS_COLUMNS}
    assert {"host", "query", "collected_at"} <= set(columns)


def _endpoint() -> sqlite3.Connection:
    """osquery's tables holding one host: a daemon listening on 22 with a client, an implant whose socket is its
    shell's stdio, its listening socket, and a unix socket."""
    db = sqlite3.connect(":memory:")
    for table, columns in OSQUERY_TABLES.items():
        db.execute(f"CREATE TABLE {table} ({columns})")
    db.execute("INSERT INTO system_info (hostname, uuid) VALUES ('web-1', 'uuid-1')")
    db.execute("INSERT INTO os_version (platform) VALUES ('ubuntu')")
    db.execute("INSERT INTO time (unix_time) VALUES (1700000000)")
    db.execute("INSERT INTO processes (pid, name, path, cmdline, uid, parent, start_time) VALUES "
               "(42, 'updaterd', '/tmp/x/updaterd', '/tmp/x/updaterd -q', 0, 1, 1699999000), "
               "(7, 'sshd', '/usr/sbin/sshd', 'sshd: alice', 0, 1, 1690000100), "
               "(1, 'systemd', '/usr/lib/systemd/systemd', '', 0, 0, 1690000000)")
    db.execute("INSERT INTO users (uid, username) VALUES (0, 'root')")
    db.execute("INSERT INTO hash (path, sha256) VALUES ('/tmp/x/updaterd', 'AB' || hex(zeroblob(31)))")
    # The implant's socket is its descriptors 0, 1 and 2 (one row per descriptor, as osquery lists them).
    db.execute("INSERT INTO process_open_sockets (pid, fd, socket, family, protocol, local_address, remote_address, "
               "local_port, remote_port, state) VALUES "
               "(42, 0, 900, 2, 6, '203.0.113.1', '203.0.113.50', 40000, 4444, 'ESTABLISHED'), "
               "(42, 1, 900, 2, 6, '203.0.113.1', '203.0.113.50', 40000, 4444, 'ESTABLISHED'), "
               "(42, 2, 900, 2, 6, '203.0.113.1', '203.0.113.50', 40000, 4444, 'ESTABLISHED'), "
               "(42, 5, 901, 2, 6, '0.0.0.0', '0.0.0.0', 31337, 0, 'LISTEN'), "
               "(7, 3, 800, 10, 6, '::', '::', 22, 0, 'LISTEN'), "
               "(7, 4, 801, 2, 6, '203.0.113.1', '198.51.100.23', 22, 40112, 'ESTABLISHED'), "
               "(42, 6, 902, 1, 0, '', '', 0, 0, '')")
    db.execute("INSERT INTO listening_ports (pid, port, protocol, family, address, fd, socket) "
               "SELECT pid, local_port, protocol, family, local_address, fd, socket FROM process_open_sockets "
               "WHERE family IN (2, 10) AND remote_port = 0")
    return db


def _run(db: sqlite3.Connection, name: str) -> list[dict]:
    cursor = db.execute(_pack()["queries"][name]["query"])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor.fetchall()]


def _schema_rows(kind: str, rows: list[dict]) -> list[dict]:
    """What connhunt stores for pack rows: the schema's normaliser over them (osquery writes booleans as text)."""
    out = []
    for row in rows:
        record = {k: v for k, v in row.items() if v is not None}
        record["attributed"] = record["attributed"] == "true"
        if "stdio" in record:
            record["stdio"] = record["stdio"] == "true"
        out.append(normalise(kind, record)[1])
    return sorted(out, key=lambda r: (r["pid"], r["local_port"]))


def test_connection_query_joins_rows_into_schema_values() -> None:
    """One row per connected socket with its process, parent, user, hash, direction and stdio."""
    rows = _schema_rows("connection", _run(_endpoint(), "connhunt_connections"))
    assert len(rows) == 2, "listening and unix sockets must be left out, and a socket counted once"
    sshd, implant = rows
    assert (implant["process_path"], implant["parent_name"], implant["username"], implant["remote_port"],
            implant["state"], implant["direction"], implant["stdio"], implant["attribution"],
            implant["seen_by"]) == ("/tmp/x/updaterd", "systemd", "root", 4444, "ESTABLISHED", "outbound", True,
                                    "pid", "snapshot")
    assert implant["exe_sha256"].startswith("ab") and implant["protocol"] == "tcp" and implant["family"] == "ipv4"
    # sshd's client reached port 22, which sshd listens on: a fact about the local service, not a destination.
    assert (sshd["process_path"], sshd["local_port"], sshd["remote_port"], sshd["direction"], sshd["stdio"]) == (
        "/usr/sbin/sshd", 22, 40112, "inbound", False)


def test_listener_query_rows() -> None:
    rows = _schema_rows("listener", _run(_endpoint(), "connhunt_listeners"))
    assert [(r["pid"], r["process_path"], r["protocol"], r["family"], r["local_ip"], r["local_port"],
             r["attributed"]) for r in rows] == [
        (7, "/usr/sbin/sshd", "tcp", "ipv6", "::", 22, True),
        (42, "/tmp/x/updaterd", "tcp", "ipv4", "0.0.0.0", 31337, True)]
