"""The schema's normalisers: one spelling for every value, clear errors for what cannot be normalised."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from orchestrator.schema import SchemaError, normalise_connection, normalise_dns, parse_time, process_identity


def test_connection_values_are_spelled_one_way() -> None:
    row = normalise_connection({"host": "web1", "protocol": "TCP6", "remote_ip": "::ffff:203.0.113.5",
                                "remote_port": "4444", "state": "Estab", "pid": 42, "first_seen": 1763859600,
                                "process_path": "C:\\Windows\\System32\\RUNDLL32.EXE", "os": "Windows"})
    assert row["protocol"] == "tcp"
    assert row["remote_ip"] == "203.0.113.5"
    assert row["family"] == "ipv4"
    assert row["remote_port"] == 4444
    assert row["state"] == "ESTABLISHED"
    assert row["process_identity"] == "c:\\windows\\system32\\rundll32.exe"
    assert row["first_seen"] == datetime(2025, 11, 23, 1, 0, tzinfo=timezone.utc)
    assert row["attributed"] is True


@pytest.mark.parametrize("value", [1763859600, 1763859600_000, 1763859600_000_000, 1763859600_000_000_000,
                                   "2025-11-23T01:00:00Z", "2025-11-23 01:00:00+00:00"])
def test_times_in_any_unit_are_utc(value: object) -> None:
    assert parse_time(value) == datetime(2025, 11, 23, 1, 0, tzinfo=timezone.utc)


def test_identity_is_the_path_not_the_pid() -> None:
    assert process_identity("/tmp/x (deleted)", "x", "linux") == "/tmp/x"
    assert process_identity(None, "Sshd", "linux") == "sshd"
    assert process_identity("C:/Temp/a.exe", "a.exe", None) == "c:\\temp\\a.exe"


@pytest.mark.parametrize(("record", "message"), [
    ({"protocol": "tcp", "remote_ip": "1.2.3.4", "remote_port": 1}, r"missing field\(s\): host"),
    ({"host": "h", "protocol": "tcp", "remote_ip": "1.2.3.4", "remote_port": "x"}, "must be an integer"),
    ({"host": "h", "protocol": "tcp", "remote_ip": "1.2.3.4", "remote_port": 70000}, "out of range"),
    ({"host": "h", "protocol": "sctp", "remote_ip": "1.2.3.4", "remote_port": 1}, "protocol"),
    ({"host": "h", "protocol": "tcp", "remote_ip": "nope", "remote_port": 1}, "not an IP address"),
    ({"host": "h", "protocol": "tcp", "remote_ip": "1.2.3.4", "remote_port": 1, "pid": [1]}, "must be an integer"),
    ({"host": "h", "protocol": "tcp", "remote_ip": "1.2.3.4", "remote_port": 1, "first_seen": "yesterday"},
     "not a time"),
])
def test_bad_records_say_which_field(record: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        normalise_connection(record)


def test_dns_query_is_lowercased_without_trailing_dot() -> None:
    row = normalise_dns({"host": "h", "query": "WWW.Example.COM.", "answers": "1.2.3.4,5.6.7.8",
                         "server_ip": "10.0.0.53", "timestamp": "2026-11-23T00:00:00Z"})
    assert row["query"] == "www.example.com"
    assert row["answers"] == ["1.2.3.4", "5.6.7.8"]
    assert row["server_ip"] == "10.0.0.53"
