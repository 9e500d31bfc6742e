"""Reverse and bind shells, internal C2, programs that never talk, threat-intel matches; the allowlist silences
every detector and says how much it silenced; the same input gives byte-identical reports; collection gaps are not
missed check-ins."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import pytest

from orchestrator.config import Allow, Config
from orchestrator.detectors import DETECTORS, Context
from orchestrator.pipeline import analyse, ingest_files
from orchestrator.reports import Format, render
from orchestrator.reports.prose import evidence
from orchestrator.store import Store
from tests.conftest import at, connection

T_GAP = 4 * 3600


def _report(jsonl, records: list[dict], config: Config | None = None, intel: list[Path] | None = None):
    store = Store()
    ingest_files([jsonl("h.jsonl", records)], store)
    if intel:
        from orchestrator.intel import load_intel
        from orchestrator.intel.store import load_into

        load_into(store.con, load_intel(intel))
    return analyse(store, config or Config())


def _only(report, **match):
    hits = [f for f in report.findings if all(getattr(f, k) == v for k, v in match.items())]
    assert len(hits) == 1, [(f.process_path, f.destination, f.technique, f.risk) for f in report.findings]
    return hits[0]


def test_reverse_shell_with_socket_stdio_is_critical(jsonl) -> None:
    shell = connection(pid=50, process_name="bash", process_path="/usr/bin/bash", command_line="bash -i",
                       username="www-data", remote_ip="203.0.113.60", remote_port=9001, stdio=True,
                       direction="outbound")
    finding = _only(_report(jsonl, [shell]), process_path="/usr/bin/bash")
    assert (finding.technique, finding.risk) == ("T1059", "Critical")
    assert "bash's stdin/stdout/stderr is a network socket to 203.0.113.60:9001: a reverse shell" in \
        " ".join(evidence(finding))


def test_shell_of_a_service_account_talking_out_is_at_least_high(jsonl) -> None:
    shell = connection(pid=51, process_name="sh", process_path="/bin/sh", username="www-data",
                       remote_ip="203.0.113.61", remote_port=443, direction="outbound")
    finding = _only(_report(jsonl, [shell]), process_path="/bin/sh")
    assert finding.technique == "T1059" and finding.risk in ("High", "Critical")


def test_bind_shell_listening_from_tmp_with_a_client_is_critical(jsonl) -> None:
    listener = {"kind": "listener", "host": "h1", "pid": 70, "process_name": "ncat", "process_path": "/tmp/ncat",
                "command_line": "/tmp/ncat -l 31337 -e /bin/sh", "protocol": "tcp", "local_ip": "0.0.0.0",
                "local_port": 31337, "first_seen": at(0)}
    client = connection(pid=70, process_name="ncat", process_path="/tmp/ncat", local_port=31337,
                        remote_ip="198.51.100.99", remote_port=51000, direction="inbound")
    finding = _only(_report(jsonl, [listener, client]), process_path="/tmp/ncat")
    assert finding.destination == "port 31337 (inbound)" and finding.direction == "inbound"
    assert finding.risk == "Critical" and finding.technique == "T1059"


def test_a_listeners_evidence_samples_its_first_clients_over_both_protocols(jsonl) -> None:
    listener = {"kind": "listener", "host": "h1", "pid": 71, "process_name": "bd", "process_path": "/tmp/bd",
                "protocol": "tcp", "local_ip": "0.0.0.0", "local_port": 4444, "first_seen": at(0)}
    clients = [connection(pid=71, process_name="bd", process_path="/tmp/bd", local_port=4444, protocol=protocol,
                          remote_ip=f"198.51.100.{last}", remote_port=50000 + last, direction="inbound")
               for protocol, last in (("tcp", 40), ("tcp", 7), ("udp", 30), ("udp", 12), ("tcp", 40), ("udp", 9))]
    finding = _only(_report(jsonl, [listener, *clients]), process_path="/tmp/bd")
    # the three smallest distinct addresses of all its clients, whichever protocol they came in on
    assert "(198.51.100.12, 198.51.100.30, 198.51.100.40): the listener is in use" in " ".join(evidence(finding))


def test_a_developers_http_server_is_not_high(jsonl) -> None:
    listener = {"kind": "listener", "host": "h1", "pid": 71, "process_name": "python3",
                "process_path": "/usr/bin/python3.11", "command_line": "python3 -m http.server 8000",
                "protocol": "tcp", "local_ip": "0.0.0.0", "local_port": 8000, "first_seen": at(0)}
    clients = [connection(pid=71, process_name="python3", process_path="/usr/bin/python3.11", local_port=8000,
                          remote_ip="10.9.0.7", remote_port=50000 + i, direction="inbound") for i in range(5)]
    report = _report(jsonl, [listener, *clients])
    assert all(f.risk in ("Low", "Medium") for f in report.findings)


def test_a_web_servers_clients_are_one_service_not_thousands_of_destinations(jsonl) -> None:
    clients = [connection(pid=80, process_name="nginx", process_path="/usr/sbin/nginx", local_port=443,
                          remote_ip=f"198.51.100.{i % 250}", remote_port=40000 + i, direction="inbound")
               for i in range(300)]
    assert _report(jsonl, clients).findings == ()


def test_lolbin_to_an_internal_host_on_an_uncommon_port_is_high(jsonl) -> None:
    c2 = connection(pid=90, os="windows", process_name="regsvr32.exe", remote_ip="10.20.0.5", remote_port=8444,
                    process_path="C:\\Windows\\System32\\regsvr32.exe", direction="outbound")
    finding = _only(_report(jsonl, [c2]), process_name="regsvr32.exe")
    assert finding.risk in ("High", "Critical") and "T1218.010" in finding.techniques
    assert "regsvr32.exe (a LOLBin) reaches internal host 10.20.0.5 on port 8444" in " ".join(evidence(finding))


def test_a_program_that_never_talks_is_injected(jsonl) -> None:
    notepad = connection(pid=91, os="windows", process_name="notepad.exe",
                         process_path="C:\\Windows\\System32\\notepad.exe", remote_ip="10.20.0.6", remote_port=888)
    finding = _only(_report(jsonl, [notepad]), process_name="notepad.exe")
    assert finding.technique == "T1055" and finding.risk in ("High", "Critical")
    assert "notepad.exe (a program that never talks) reaches internal host 10.20.0.6" in " ".join(evidence(finding))


def test_intel_match_on_an_address_cites_the_ioc(jsonl, tmp_path: Path) -> None:
    iocs = tmp_path / "iocs.txt"
    iocs.write_text("# analyst list\n203.0.113.200\n", encoding="utf-8")
    conn = connection(pid=92, process_name="svc", process_path="/usr/local/bin/svc", remote_ip="203.0.113.200",
                      remote_port=443)
    finding = _only(_report(jsonl, [conn], intel=[iocs]), process_path="/usr/local/bin/svc")
    assert finding.risk in ("High", "Critical")
    assert any("203.0.113.200 is an IOC" in line and str(iocs) in line for line in evidence(finding))


def test_intel_domain_links_the_query_and_the_connection(jsonl, tmp_path: Path) -> None:
    iocs = tmp_path / "iocs.txt"
    iocs.write_text("bad-c2.example\n", encoding="utf-8")
    query = {"kind": "dns", "host": "h1", "pid": 93, "process_name": "agent", "process_path": "/opt/agent",
             "query": "api.bad-c2.example", "answers": ["198.51.100.77"], "timestamp": at(0)}
    conn = connection(pid=93, process_name="agent", process_path="/opt/agent", remote_ip="198.51.100.77",
                      remote_port=443, first_seen=at(1))
    report = _report(jsonl, [query, conn], intel=[iocs])
    finding = _only(report, process_path="/opt/agent")
    assert finding.destination == "bad-c2.example" and finding.risk in ("High", "Critical")


# One record per detector that makes it fire on its own; the allowlist entry for its process silences it.
FIRES = {
    "threat_intel": None,  # needs an intel file: covered above
    "reverse_shell": [connection(process_name="bash", process_path="/usr/bin/bash", stdio=True, remote_port=9001)],
    "listener": [{"kind": "listener", "host": "h1", "pid": 5, "process_name": "nc", "process_path": "/usr/bin/nc",
                  "protocol": "tcp", "local_port": 4444, "first_seen": at(0)}],
    "never_talk": [connection(process_name="sleep", process_path="/usr/bin/sleep", remote_port=8080)],
    "cryptominer": [connection(process_name="xmrig", process_path="/opt/xmrig", remote_port=3333,
                               command_line="xmrig -o stratum+tcp://pool.example:3333")],
    "dns_exfil": [{"kind": "dns", "host": "h1", "pid": 8, "process_name": "x", "process_path": "/usr/bin/x",
                   "query": "".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz234567", k=40))
                   + ".t.evil.example", "server_ip": "198.51.100.53", "timestamp": at(i)} for i in range(12)],
    "internal_scan": [connection(process_name="scan", process_path="/usr/bin/scan", remote_ip=f"10.1.0.{i}",
                                 remote_port=445, state="SYN_SENT", local_port=30000 + i) for i in range(20)],
    "non_app_protocol": [connection(process_name="tund", process_path="/usr/bin/tund", protocol="raw",
                                    remote_ip="0.0.0.0", remote_port=None, local_port=None, state="PROTO_1")],
    "nonstandard_port": [connection(process_name="app", process_path="/usr/bin/app", remote_port=4444)],
    "beacon": [connection(process_name="app", process_path="/usr/bin/app", remote_port=443, local_port=41000 + i,
                          first_seen=at(10 * i), last_seen=at(10 * i + 1)) for i in range(12)],
    "lolbin": [connection(os="windows", process_name="powershell.exe", remote_port=443,
                          process_path="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe")],
    "odd_path": [connection(process_name="app", process_path="/tmp/app", remote_port=443)],
    "rarity": None,  # a statistic: never a finding of its own (needs a fleet)
    "novelty": None,  # needs a baseline: tests/orchestrator/test_baseline.py
}


def _name(records: list[dict]) -> str:
    return records[0]["process_name"]


@pytest.mark.parametrize("detector", [d.name for d in DETECTORS])
def test_the_allowlist_silences_every_detector_and_is_counted(jsonl, detector: str) -> None:
    records = FIRES[detector]
    if records is None:
        pytest.skip(f"{detector} is covered by its own test")
    fired = _report(jsonl, records)
    assert any(c.detector == detector for f in fired.findings for c in f.contributions), fired.findings
    silenced = _report(jsonl, records, Config(allow=(Allow(process=_name(records)),)))
    assert not any(c.detector == detector for f in silenced.findings for c in f.contributions)
    assert sum(silenced.suppressed.values()) >= 1


def test_the_same_input_gives_byte_identical_reports(jsonl) -> None:
    rng = random.Random(4)
    records = []
    for h in range(6):
        for i in range(300):
            records.append(connection(host=f"h{h}", pid=rng.randrange(100, 110), process_name=f"p{i % 7}",
                                      process_path=f"/usr/bin/p{i % 7}", command_line=f"p{i % 7} --n {rng.random()}",
                                      remote_ip=f"198.51.100.{rng.randrange(1, 40)}",
                                      remote_port=rng.choice([443, 4444, 8081, 2222]), local_port=30000 + i,
                                      first_seen=at(i), last_seen=at(i + 1)))
    path = jsonl("fleet.jsonl", records)
    outputs = set()
    for _ in range(3):
        store = Store()
        ingest_files([path], store)
        report = analyse(store, Config(), now=__import__("datetime").datetime(2026, 11, 23))
        outputs.add(render(report, Format.json) + render(report, Format.text))
    assert len(outputs) == 1


def test_connections_in_collections_hours_apart_are_not_a_beacon(jsonl) -> None:
    # two connections in each of four 10-minute collections, 4 hours apart: regular gaps, but not check-ins
    records = [connection(process_name="app", process_path="/usr/bin/app", remote_port=443, local_port=41000 + n,
                          first_seen=at(w * T_GAP + k * 300), last_seen=at(w * T_GAP + k * 300 + 1),
                          collected_at=at(w * T_GAP + 600))
               for n, (w, k) in enumerate((w, k) for w in range(4) for k in range(2))]
    report = _report(jsonl, records, Config(beacon_min_connections=6))
    assert not any(c.detector == "beacon" for f in report.findings for c in f.contributions)
    # the same eight connections inside one watched window are a beacon
    steady = [dict(r, first_seen=at(n * 300), last_seen=at(n * 300 + 1), collected_at=at(n * 300))
              for n, r in enumerate(records)]
    report = _report(jsonl, steady, Config(beacon_min_connections=6))
    assert any(c.detector == "beacon" for f in report.findings for c in f.contributions)


def test_a_silent_program_credited_only_by_a_guess_is_not_called_injected(jsonl) -> None:
    guessed = connection(pid=94, process_name="sleep", process_path="/usr/bin/sleep", remote_ip="10.20.0.7",
                         remote_port=80, attribution="exec-cache", seen_by="event")
    report = _report(jsonl, [guessed])
    assert not any(c.detector == "never_talk" for f in report.findings for c in f.contributions)
    seen = _report(jsonl, [dict(guessed, attribution="pid", seen_by="snapshot", remote_port=8081)])
    finding = _only(seen, process_name="sleep")
    assert finding.risk == "Critical" and {"T1055", "T1021"} <= set(finding.techniques)


@pytest.mark.parametrize("loopback", [True, False])
def test_peer_classification_in_sql_agrees_with_the_config_rules(jsonl, loopback: bool) -> None:
    """IPv4 peers are classified in SQL as integer ranges, the rest in Python: both must say what Config says."""

    ips = ["10.1.2.3", "9.255.255.255", "11.0.0.0", "172.16.0.1", "172.32.0.1", "192.168.255.255", "100.64.0.9",
           "127.0.0.1", "127.255.255.254", "169.254.1.1", "169.255.0.1", "224.0.0.251", "239.255.255.250",
           "240.0.0.1", "0.0.0.0", "203.0.113.7", "198.51.100.200", "198.51.101.1", "255.255.255.255",
           "::1", "fe80::1", "fd00::5", "2001:db8::7", "ff02::fb", "::"]
    config = Config(ignore_loopback=loopback, allow=(Allow(remote="198.51.100.0/24"), Allow(remote="203.0.113.7/32"),
                                                       Allow(remote="2001:db8::/32"), Allow(process="x")))
    store = Store()
    ingest_files([jsonl("peers.jsonl", [connection(remote_ip=ip, family="ipv6" if ":" in ip else "ipv4")
                                        for ip in ips])], store)
    ctx = Context(store, config)
    got = {ip: (ignored, internal, list(nets)) for ip, ignored, internal, nets in
           ctx.con.execute("SELECT ip, ignored, internal, allow_nets FROM peers").fetchall()}
    nets = config.allow_networks
    assert set(got) == set(ips)
    for ip in ips:
        addr = ipaddress.ip_address(ip)
        want_nets = [i for i, (_, net) in enumerate(nets) if net is not None and addr.version == net.version
                     and addr in net]
        want = (config.is_ignored_peer(ip) or ip in ("0.0.0.0", "::"), config.is_internal(ip), want_nets)
        assert got[ip] == want, ip


def test_a_process_with_two_command_lines_keeps_each_pairs_own_facts(jsonl) -> None:
    """Process facts are taken once per process, except where its rows disagree: then per pair, exactly. A python
    serving files and a python running a miner on one host must not lend each other their command lines."""
    server = connection(pid=20, process_name="python3", process_path="/usr/bin/python3", username="alice",
                        command_line="python3 -m http.server 8000", remote_ip="198.51.100.40", remote_port=443)
    miner = connection(pid=21, process_name="python3", process_path="/usr/bin/python3", username="www-data",
                       command_line="python3 miner.py -o stratum+tcp://203.0.113.9:3333",
                       remote_ip="203.0.113.9", remote_port=3333, first_seen=at(0), last_seen=at(300))
    store = Store()
    ingest_files([jsonl("two.jsonl", [server, miner])], store)
    ctx = Context(store, Config())
    assert ctx.con.execute("SELECT varied FROM processes").fetchall() == [(True,)]
    report = analyse(store, Config())
    reasons = {(f.destination, c.detector, c.reason) for f in report.findings for c in f.contributions}
    assert ("203.0.113.9:3333", "cryptominer", "miner_cmdline") in reasons
    assert not any(d == "198.51.100.40:443" and r == "miner_cmdline" for d, _, r in reasons)
    miner_finding = next(f for f in report.findings if f.destination == "203.0.113.9:3333")
    assert "miner.py" in miner_finding.command_line
