"""Zeek conn.log and dns.log (TSV with the #fields header, and JSON) as whole, unattributed schema rows."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_connhunt
from tests.sources.edr_rows import EDR, connection, dns
from tests.sources.helpers import health, one_line_error, read, rows, score_json, utc

NETWORK_ONLY = "network-only source (Zeek): no process attribution, every row's process is <unknown>"
UNKNOWN = {"source": "zeek", "process_identity": "<unknown>", "attributed": False, "attribution": None}
C2 = connection(host="10.0.5.5", **UNKNOWN, protocol="tcp", local_ip="10.0.5.5", local_port=49152,
                remote_ip="203.0.113.44", remote_port=4444, state="ESTABLISHED", direction="outbound",
                first_seen=utc("2026-11-23T01:00:00.1"), last_seen=utc("2026-11-23T01:00:30.6"),
                collected_at=utc("2026-11-23T01:00:30.6"))
SCAN_SYN = connection(host="10.0.5.5", **UNKNOWN, protocol="tcp", local_ip="10.0.5.5", local_port=49153,
                      remote_ip="10.0.5.20", remote_port=22, state="SYN_SENT", direction="outbound",
                      first_seen=utc("2026-11-23T01:00:01"))


def test_conn_log_tsv() -> None:
    name, records = read(EDR / "zeek_conn.log")
    assert name == "zeek"
    assert rows(records, "connection") == [
        C2,
        SCAN_SYN,  # S0: nobody answered, half-open
        connection(host="10.0.5.5", **UNKNOWN, protocol="tcp", local_ip="10.0.5.5", local_port=49154,
                   remote_ip="10.0.5.21", remote_port=23, state="CLOSE", direction="outbound",
                   first_seen=utc("2026-11-23T01:00:02"), last_seen=utc("2026-11-23T01:00:02.0003"),
                   collected_at=utc("2026-11-23T01:00:02.0003")),
        # only the responder is ours: the host is the responder, the client the remote end
        connection(host="10.0.5.5", **UNKNOWN, protocol="tcp", local_ip="10.0.5.5", local_port=443,
                   remote_ip="198.51.100.77", remote_port=51000, state="ESTABLISHED", direction="inbound",
                   first_seen=utc("2026-11-23T01:00:03"), last_seen=utc("2026-11-23T01:00:05"),
                   collected_at=utc("2026-11-23T01:00:05")),
        # ICMP "ports" are type and code, not ports
        connection(host="10.0.5.5", **UNKNOWN, protocol="raw", local_ip="10.0.5.5", remote_ip="198.51.100.1",
                   state="NONE", direction="outbound", first_seen=utc("2026-11-23T01:00:04"),
                   last_seen=utc("2026-11-23T01:00:04.01"), collected_at=utc("2026-11-23T01:00:04.01")),
        # local_orig/local_resp unset (no Site::local_nets): the originator, direction unknown
        connection(host="192.0.2.10", **UNKNOWN, protocol="udp", local_ip="192.0.2.10", local_port=5353,
                   remote_ip="192.0.2.11", remote_port=5353, state="NONE", direction="unknown",
                   first_seen=utc("2026-11-23T01:00:05")),
    ]
    assert [row for kind, row in records if kind == "health"] == [
        {"host": "zeek_conn.log", "source": "zeek", "collected_at": None, "check": "network_only", "count": 6,
         "message": NETWORK_ONLY}]


def test_conn_log_json_same_rows() -> None:
    name, records = read(EDR / "zeek_conn.json")
    assert name == "zeek"
    assert rows(records, "connection") == [C2, SCAN_SYN]
    assert health(records) == {"network_only": 2}


def test_dns_log() -> None:
    name, records = read(EDR / "zeek_dns.log")
    assert name == "zeek"
    assert rows(records, "dns") == [
        dns(host="10.0.5.5", source="zeek", process_identity="<unknown>",
            query="mxk2qh7d3l0a9b8c.tunnel.example.net", qtype="TXT", response_code="NOERROR",
            server_ip="10.0.0.53", timestamp=utc("2026-11-23T01:00:00.2")),
        # the CNAME in answers is not an address: dropped
        dns(host="10.0.5.5", source="zeek", process_identity="<unknown>", query="www.example.com", qtype="A",
            answers=["198.51.100.5", "198.51.100.6"], response_code="NOERROR", server_ip="10.0.0.53",
            timestamp=utc("2026-11-23T01:00:00.3")),
    ]
    assert health(records) == {"network_only": 2, "zeek_dns_no_query": 1}


def test_log_without_close_is_read_and_said(tmp_path: Path) -> None:
    cut = tmp_path / "conn.log"
    cut.write_text("".join((EDR / "zeek_conn.log").read_text().splitlines(keepends=True)[:-1]))
    _, records = read(cut)
    assert len(rows(records, "connection")) == 6
    assert health(records) == {"network_only": 6, "zeek_not_closed": 1}


def test_short_line_named(tmp_path: Path) -> None:
    bad = tmp_path / "conn.log"
    lines = (EDR / "zeek_conn.log").read_text().splitlines()
    lines[9] = lines[9].rsplit("\t", 3)[0]
    bad.write_text("\n".join(lines) + "\n")
    line = one_line_error(run_connhunt("score", str(bad)), f"{bad}:10")
    assert "expected 21 fields, got 18" in line


def test_report_says_network_only() -> None:
    report = score_json(EDR / "zeek_conn.log", EDR / "zeek_dns.log")
    assert {"host": "zeek_conn.log", "source": "zeek", "check": "network_only", "count": 6,
            "message": NETWORK_ONLY} in report["health"]
    found = {(f["host"], f["remote_ip"], f["remote_port"]) for f in report["findings"]}
    assert ("10.0.5.5", "203.0.113.44", 4444) in found


def test_no_valid_line_at_all_is_an_error_even_skipping(tmp_path: Path) -> None:
    bad = tmp_path / "conn.log"
    lines = (EDR / "zeek_conn.log").read_text().splitlines()
    bad.write_text("\n".join(lines[:8] + [line.split("\t", 1)[1] for line in lines[8:14]] + lines[14:]) + "\n")
    line = one_line_error(run_connhunt("score", str(bad), "--skip-bad"), str(bad))
    assert line == f"connhunt: error: {bad}: no valid record (6 unreadable)"
