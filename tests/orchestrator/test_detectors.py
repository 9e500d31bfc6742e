"""Detectors and scoring on connhunt's own JSONL: each scenario fires with its technique and facts; ordinary
traffic stays below High; fleet prevalence lowers what every host does."""

from __future__ import annotations

import random

import pytest

from orchestrator.config import Config
from orchestrator.detectors.beacon import series_stats
from orchestrator.detectors.dns_exfil import encoded_labels, registered_domain
from orchestrator.pipeline import analyse, ingest_files
from orchestrator.reports.prose import evidence
from orchestrator.store import Store
from tests.conftest import at, connection


def _report(jsonl, hosts: dict[str, list[dict]], config: Config | None = None):
    store = Store()
    ingest_files([jsonl(f"{h}.jsonl", [dict(r, host=h) for r in records]) for h, records in hosts.items()], store)
    return analyse(store, config or Config())


def _only(report, **match):
    hits = [f for f in report.findings if all(getattr(f, k) == v for k, v in match.items())]
    assert len(hits) == 1, [(f.process_path, f.destination, f.technique, f.risk) for f in report.findings]
    return hits[0]


def _beacon(period: float, jitter: float, count: int, seed: int = 1, **fields) -> list[dict]:
    rng = random.Random(seed)
    t, out = 0.0, []
    for i in range(count):
        t += period * rng.uniform(1 - jitter, 1 + jitter)
        out.append(connection(local_port=41000 + i, first_seen=at(round(t)), last_seen=at(round(t) + 1), **fields))
    return out


def test_beacon_stats_tolerate_jitter_and_missed_samples() -> None:
    rng = random.Random(7)
    starts, t = [], 0.0
    for i in range(40):
        t += 5 * rng.uniform(0.8, 1.2)
        if i % 7 != 3:  # every 7th check-in missed by sampling
            starts.append(round(t))
    stats = series_stats(starts)
    assert stats is not None and stats["score"] >= 0.7 and stats["folded"] >= 3
    assert 4.5 <= stats["q2"] <= 5.5


def test_random_intervals_are_not_a_beacon() -> None:
    rng = random.Random(3)
    starts, t = [], 0.0
    for _ in range(40):
        t += rng.expovariate(1 / 20)
        starts.append(t)
    stats = series_stats(starts)
    assert stats is not None and stats["score"] < 0.7


def test_encoded_labels_are_told_from_names() -> None:
    names = ["www", "a1b2c3", "mail-gateway-server-01", "ecs-prod-eu-west-1-loadbalancer", "googleusercontent",
             "cdn-assets-production-frankfurt", "aaaaaaaaaaaaaaaaaaaaaaaa"]
    encoded = ["nbswy3dpeb3w64tmmqqgs3tbnvsq", "4a6f686e20536d697468206b6e6f7773", "mfrggzdfmztwq2lknnwg23tpobyxe43u"]
    assert sorted(encoded_labels(names + encoded)) == sorted(encoded)
    assert registered_domain("a.b.exfil.example") == "exfil.example"
    assert registered_domain("x.y.bbc.co.uk") == "bbc.co.uk"


def test_a_names_last_deciding_labels_give_its_registered_domain() -> None:
    # the detector looks up only each query's last deciding_labels() labels: for every rule of the suffix list,
    # wildcards and exceptions included, a long name under it must get the same domain from its ending
    from orchestrator.domains import _extractor, deciding_labels

    keep = deciding_labels()
    assert keep == max(rule.count(".") + 1 for rule in _extractor().tlds) + 1 and keep >= 3
    rules = sorted(_extractor().tlds, key=lambda r: (-r.count("."), r))
    for rule in rules[:400] + [r for r in rules if r.startswith(("*", "!"))]:
        labels = ["q7", "payload9f3", "deep", "owner", *[x if x != "*" else "any" for x in rule.lstrip("!").split(".")]]
        name = ".".join(labels)
        ending = ".".join(labels[-keep:])
        assert registered_domain(ending) == registered_domain(name), (rule, name)


def test_backdoor_on_c2_port_from_tmp(jsonl) -> None:
    backdoor = _beacon(2, 0.0, 20, pid=66, process_name="updaterd", process_path="/tmp/x/updaterd",
                       command_line="/tmp/x/updaterd", username="bob", remote_ip="203.0.113.50", remote_port=4444)
    ordinary = [connection(pid=5, process_name="ssh", process_path="/usr/bin/ssh", remote_ip="203.0.113.22",
                           remote_port=22),
                connection(pid=6, process_name="curl", process_path="/usr/bin/curl", remote_ip="203.0.113.10",
                           remote_port=443)]
    report = _report(jsonl, {"h1": backdoor + ordinary})
    finding = _only(report, process_path="/tmp/x/updaterd")
    assert finding.technique in ("T1571", "T1071") and {"T1571", "T1071"} <= set(finding.techniques)
    assert finding.risk in ("High", "Critical") and finding.user == "bob"
    assert finding.hunt_id.startswith("TH-HUNTIN-") and finding.hunt_id.endswith("-001")
    assert any("4444 is a known C2" in line for line in evidence(finding))
    assert any(line.startswith("[beacon") for line in evidence(finding))
    assert all(f.risk in ("Low", "Medium") for f in report.findings if f.process_path != "/tmp/x/updaterd")


def test_ssh_off_port_22_is_nonstandard(jsonl) -> None:
    report = _report(jsonl, {"h1": [connection(process_name="ssh", process_path="/usr/bin/ssh", remote_port=2022)]})
    finding = _only(report, process_path="/usr/bin/ssh")
    assert finding.technique == "T1571" and "ssh normally uses port 22, here 2022" in " ".join(evidence(finding))


def test_cryptominer(jsonl) -> None:
    miner = connection(pid=9, process_name="xmrig", process_path="/dev/shm/.x/xmrig", remote_ip="203.0.113.77",
                       remote_port=3333, command_line="xmrig -o stratum+tcp://pool.example:3333 --donate-level 1",
                       first_seen=at(0), last_seen=at(240), observations=240)
    finding = _only(_report(jsonl, {"h1": [miner]}), process_path="/dev/shm/.x/xmrig")
    assert (finding.technique, finding.risk) == ("T1496", "Critical")
    assert any("stratum" in line for line in evidence(finding))


def test_internal_scan_folds_targets_into_one_finding(jsonl) -> None:
    scan = [connection(pid=3, process_name="svc", process_path="/var/tmp/svc", remote_ip=f"10.66.1.{i}",
                       remote_port=port, state="SYN_SENT" if i % 2 else "ESTABLISHED", local_port=30000 + i * 10 + n)
            for i in range(1, 11) for n, port in enumerate((22, 445))]
    report = _report(jsonl, {"h1": scan})
    finding = _only(report, process_path="/var/tmp/svc")
    assert finding.technique == "T1046" and finding.risk in ("High", "Critical")
    assert finding.destination == "internal network (10 hosts, 2 ports)"
    assert "10 half-open (SYN_SENT) connections" in " ".join(evidence(finding))


def test_raw_icmp_socket_is_non_application_protocol(jsonl) -> None:
    raw = connection(pid=4, process_name="tund", process_path="/usr/local/bin/tund", protocol="raw",
                     remote_ip="0.0.0.0", remote_port=None, local_port=None, state="PROTO_1", observations=60)
    ping = dict(raw, pid=5, process_name="ping", process_path="/usr/bin/ping")
    report = _report(jsonl, {"h1": [raw, ping]})
    finding = _only(report, process_path="/usr/local/bin/tund")
    assert finding.technique == "T1095" and finding.risk in ("Medium", "High")
    assert "raw ICMP socket held by tund, not a ping-like tool; seen in 60 samples" in " ".join(evidence(finding))
    assert not [f for f in report.findings if f.process_path == "/usr/bin/ping"]


def test_dns_exfiltration_to_attacker_nameserver(jsonl) -> None:
    rng = random.Random(5)
    queries = [{"kind": "dns", "pid": 8, "process_name": "dnsupd", "process_path": "/usr/sbin/dnsupd",
                "query": "".join(rng.choices("abcdefghijklmnopqrstuvwxyz234567", k=50)) + f".{i}.t.evil.example",
                "qtype": "A", "server_ip": "198.51.100.53", "timestamp": at(i)} for i in range(40)]
    benign = [{"kind": "dns", "pid": 9, "process_name": "curl", "process_path": "/usr/bin/curl",
               "query": "www.example.org", "server_ip": "10.0.0.53", "timestamp": at(i)} for i in range(5)]
    report = _report(jsonl, {"h1": queries + benign}, Config(resolvers=("10.0.0.53",)))
    finding = _only(report, process_path="/usr/sbin/dnsupd")
    assert (finding.technique, finding.domain, finding.remote_ip) == ("T1048.003", "evil.example", "198.51.100.53")
    assert finding.risk in ("High", "Critical")
    assert not [f for f in report.findings if f.process_path == "/usr/bin/curl"]


@pytest.mark.parametrize("hosts", [8])
def test_fleet_prevalence_lowers_the_common_beacon_and_raises_the_rare_one(jsonl, hosts: int) -> None:
    fleet = {}
    for h in range(hosts):
        records = _beacon(60, 0.02, 8, seed=h, pid=100, process_name="pkg-updater",
                          process_path="/opt/lab/bin/pkg-updater", remote_ip="198.51.100.80", remote_port=8080)
        if h == 3:
            records += _beacon(5, 0.2, 30, seed=99, pid=66, process_name="kworkerd",
                               process_path="/usr/lib/kworkerd", remote_ip="203.0.113.66", remote_port=8081)
        fleet[f"host{h}"] = records
    report = _report(jsonl, fleet)
    updater = [f for f in report.findings if f.process_path == "/opt/lab/bin/pkg-updater"]
    assert updater and all(f.risk == "Low" and f.hosts_with_pair == hosts for f in updater)
    c2 = _only(report, process_path="/usr/lib/kworkerd")
    assert c2.risk in ("High", "Critical") and c2.hosts_with_pair == 1 and c2.technique == "T1071"
    assert report.findings[0] == c2


def test_allowlist_and_loopback_are_ignored(jsonl) -> None:
    records = [connection(remote_ip="127.0.0.1", remote_port=4444),
               connection(pid=2, process_name="agent", process_path="/opt/agent", remote_ip="203.0.113.5",
                          remote_port=4444)]
    from orchestrator.config import Allow

    report = _report(jsonl, {"h1": records}, Config(allow=(Allow(process="/opt/agent", port=4444),)))
    assert report.findings == ()


def test_unattributed_socket_is_reported_with_less_confidence(jsonl) -> None:
    orphan = connection(pid=None, ppid=None, process_name=None, process_path=None, command_line=None, username=None,
                        parent_name=None, parent_path=None, attributed=False, remote_ip="203.0.113.9",
                        remote_port=50050, state="TIME_WAIT")
    finding = _only(_report(jsonl, {"h1": [orphan]}, ), process_identity="<unknown>")
    assert (finding.technique, finding.risk, finding.confidence) == ("T1571", "Medium", "Low")
    assert finding.pids == () and finding.user == "unknown"


def test_beacon_sampled_at_whole_ticks_still_scores() -> None:
    """As the lab measured: a 5 s +/- 20 % beacon seen by a 1 s sampler gives intervals like 5.998, 6.000, 6.996."""
    rng = random.Random(11)
    starts, t = [], 100.0
    for _ in range(36):
        t += 5 * rng.uniform(0.8, 1.2)
        tick = int(t) + 1  # first sample after the connection opened
        starts.append(tick + rng.uniform(-0.003, 0.003))
    stats = series_stats(starts)
    assert stats is not None and stats["score"] >= 0.7, stats


def test_orphaned_sockets_fold_into_the_process_talking_to_the_same_destination(jsonl) -> None:
    beacon = _beacon(5, 0.1, 12, pid=66, process_name="kworkerd", process_path="/tmp/.cache/kworkerd",
                     remote_ip="203.0.113.66", remote_port=4444)
    orphans = [connection(pid=None, ppid=None, process_name=None, process_path=None, attributed=False,
                          remote_ip="203.0.113.66", remote_port=4444, state="TIME_WAIT", local_port=50000 + i)
               for i in range(5)]
    report = _report(jsonl, {"h1": beacon + orphans})
    assert [f.process_path for f in report.findings] == ["/tmp/.cache/kworkerd"]
    assert any("had no owner when sampled" in line for line in evidence(report.findings[0]))


def test_dns_exfil_covers_the_processes_own_sockets_to_the_nameserver(jsonl) -> None:
    rng = random.Random(2)
    queries = [{"kind": "dns", "pid": 8, "process_name": "dnsupd", "process_path": "/var/tmp/dnsupd",
                "query": "".join(rng.choices("abcdefghijklmnopqrstuvwxyz234567", k=50)) + f".{i}.t.evil.example",
                "server_ip": "198.51.100.53", "timestamp": at(i)} for i in range(20)]
    socket_row = connection(pid=8, process_name="dnsupd", process_path="/var/tmp/dnsupd", protocol="udp",
                            remote_ip="198.51.100.53", remote_port=53, state="NONE")
    report = _report(jsonl, {"h1": [*queries, socket_row]})
    assert [(f.destination, f.technique) for f in report.findings] == [("evil.example", "T1048.003")]
    assert any(line.startswith("[odd_path") for line in evidence(report.findings[0]))


def test_a_scans_orphaned_sockets_fold_into_the_scanner(jsonl) -> None:
    """Closed scan connections linger without an owner; they fan out too, but are the scanner's, not a second scan."""
    scanner = [connection(pid=3, process_name="svc", process_path="/tmp/.svc/svc-scan", remote_ip=f"10.66.1.{i}",
                          remote_port=445, state="SYN_SENT", local_port=30000 + i) for i in range(1, 21)]
    orphans = [connection(pid=None, ppid=None, process_name=None, process_path=None, attributed=False,
                          remote_ip=f"10.66.1.{i}", remote_port=port, state="TIME_WAIT", local_port=40000 + i * 5 + n)
               for i in range(5, 30) for n, port in enumerate((22, 445))]
    report = _report(jsonl, {"h1": scanner + orphans})
    assert [(f.process_path, f.technique) for f in report.findings] == [("/tmp/.svc/svc-scan", "T1046")]


def test_name_lookups_are_not_an_off_pattern_port(jsonl) -> None:
    """chronyd and ssh resolve names themselves: their UDP 53 to the resolver is not a non-standard port."""
    lookups = [connection(pid=n, process_name=name, process_path=f"/usr/sbin/{name}", protocol="udp",
                          remote_ip="10.66.0.53", remote_port=53, state="NONE") for n, name in ((1, "chronyd"),
                                                                                                (2, "ssh"))]
    assert _report(jsonl, {"h1": lookups}).findings == ()
