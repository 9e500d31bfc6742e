"""osquery socket_events (audit: connect, bind, accept) in the results log, read into whole schema rows."""

from __future__ import annotations

from tests.sources.edr_rows import EDR, connection, listener
from tests.sources.helpers import health, read, rows, utc

DB = {"host": "db-4", "host_id": "6a1f1c3e-8d2b-4b0e-9f1a-2c3d4e5f6a7b", "source": "osquery",
      "collected_at": utc("2026-11-23T01:00:10"), "seen_by": "event"}
IMPLANT = {**DB, "pid": 5150, "process_name": "sshd", "process_path": "/var/tmp/.s/sshd",
           "process_identity": "/var/tmp/.s/sshd"}
POSTGRES = {"pid": 812, "process_name": "postgres", "process_path": "/usr/lib/postgresql/16/bin/postgres",
            "process_identity": "/usr/lib/postgresql/16/bin/postgres"}


def test_socket_events() -> None:
    name, records = read(EDR / "osquery_socket_events.log")
    assert name == "osquery"
    assert rows(records, "connection") == [
        connection(**IMPLANT, protocol="tcp", remote_ip="203.0.113.21", remote_port=1337, state="ESTABLISHED",
                   direction="outbound", first_seen=utc("2026-11-23T01:00:05")),
        # success=0: the connect did not complete, half-open
        connection(**IMPLANT, protocol="tcp", remote_ip="10.0.6.30", remote_port=5432, state="SYN_SENT",
                   direction="outbound", first_seen=utc("2026-11-23T01:00:06")),
        # accept: remote_address is the client reaching this host's listener
        connection(**DB, **POSTGRES, protocol="tcp", remote_ip="10.0.6.31", remote_port=40110,
                   state="ESTABLISHED", direction="inbound", first_seen=utc("2026-11-23T01:00:07")),
    ]
    db = {k: v for k, v in DB.items() if k != "seen_by"}
    assert rows(records, "listener") == [
        listener(**db, **POSTGRES, protocol="tcp", local_ip="0.0.0.0", local_port=5432,
                 first_seen=utc("2026-11-23T00:58:20")),
    ]
    assert health(records) == {"not_inet": 1}
