"""Matching findings to the lab's ground truth, and the placement of scenarios on the fleet (no root needed)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.lab import scenarios
from orchestrator.lab.evaluate import ScenarioResult, evaluate
from orchestrator.lab.groundtruth import TruthPair, pairs, read, write

C2 = TruthPair("ws02", "/tmp/.cache/kworkerd", "c2_beacon", "T1571", ("T1571", "T1071"), "203.0.113.66", 4444,
               None, None)
SCAN = TruthPair("ws05", "/tmp/.svc/svc-scan", "internal_scan", "T1046", ("T1046",), None, None, None,
                 "10.66.0.0/16")
EXFIL = TruthPair("ws03", "/var/tmp/dnsupd", "dns_exfiltration", "T1048.003", ("T1048.003", "T1071.004"),
                  "198.51.100.53", 53, "t.example.net", None)


def finding(host: str, path: str, technique: str, risk: str, score: float, **kw: object) -> dict[str, object]:
    return {"hunt_id": f"{host}-{score}", "host": host, "process_path": path, "technique": technique,
            "techniques": [technique], "risk": risk, "score": score, "destination": kw.get("remote_ip", "x"), **kw}


def test_every_target_met() -> None:
    report = {"findings": [
        finding("ws02", C2.process_path, "T1071", "High", 7.0, remote_ip="203.0.113.66"),
        finding("ws05", SCAN.process_path, "T1046", "Critical", 11.0, remote_ip=None),
        finding("ws03", EXFIL.process_path, "T1048.003", "Critical", 10.0, domain="example.net"),
        finding("ws01", "/usr/bin/pkg-updater", "T1071", "Medium", 3.0, remote_ip="198.51.100.80"),
    ]}
    result = evaluate(report, [C2, SCAN, EXFIL])
    assert result.targets_met, result.failures
    assert result.scenarios[0] == ScenarioResult("c2_beacon", "ws02", C2.process_path, ("T1571", "T1071"), True,
                                                 "T1071", "High", 3, 7.0, "ws02-7.0")
    assert (result.precision, result.recall, result.best_benign_rank) == (1.0, 1.0, 4)


def test_benign_alarm_wrong_technique_and_rank_are_failures() -> None:
    report = {"findings": [
        finding("ws01", "/usr/bin/pkg-updater", "T1071", "High", 9.0, remote_ip="198.51.100.80"),
        finding("ws02", C2.process_path, "T1095", "High", 8.0, remote_ip="203.0.113.66"),
        finding("ws05", SCAN.process_path, "T1046", "Medium", 5.0),
    ]}
    result = evaluate(report, [C2, SCAN, EXFIL])
    assert not result.targets_met
    assert [r.found for r in result.scenarios] == [False, False, False]
    assert result.scenarios[0].why_missed == "technique T1095, expected T1571/T1071"
    assert result.scenarios[1].why_missed == "risk Medium"
    assert result.scenarios[2].why_missed == "no finding for this process and destination"
    assert len(result.benign_alarms) == 1 and result.precision == 0.5 and result.recall == 0.0


def test_related_findings_on_malicious_process_are_not_benign() -> None:
    # The miner's lookup of its pool, say: same process, another destination.
    report = {"findings": [finding("ws02", C2.process_path, "T1071", "High", 5.0, remote_ip="10.66.0.53")]}
    result = evaluate(report, [C2])
    assert result.benign_alarms == () and result.precision == 1.0 and result.recall == 0.0


def test_unattributed_socket_to_a_c2_is_not_a_benign_pair() -> None:
    report = {"findings": [
        finding("ws02", C2.process_path, "T1071", "High", 7.0, remote_ip="203.0.113.66"),
        finding("ws02", "", "T1571", "Medium", 3.0, remote_ip="203.0.113.66"),
        finding("ws01", "", "T1571", "Low", 1.0, remote_ip="203.0.113.20"),
    ]}
    result = evaluate(report, [C2])
    assert result.targets_met and result.best_benign_rank == 3


def test_placement_puts_each_attack_on_one_or_two_hosts_and_benign_everywhere() -> None:
    hosts = [f"ws{i:02d}" for i in range(1, 9)]
    placed = scenarios.placement(hosts)
    for role in (*scenarios.MALICIOUS, *scenarios.depth_scenarios(len(hosts)).values()):
        on = [h for h, roles in placed.items() if role in roles]
        assert 1 <= len(on) <= 2, (role.name, on)
    for role in scenarios.BENIGN:
        assert all(role in roles for roles in placed.values())
    truth = pairs(placed)
    assert {t.scenario for t in truth} == {"c2_beacon", "dns_exfiltration", "internal_scan", "cryptominer",
                                           "icmp_tunnel", "bash_reverse_shell", "pty_reverse_shell", "bind_shell",
                                           "web_shell", "lolbin_lateral", "injected_implant"}
    # The shells are the machine's own bash, the implant and the LOLBin sit in system-like paths; the rest run
    # from writable locations.
    system_like = {"bash_reverse_shell": scenarios.BASH, "web_shell": scenarios.BASH,
                   "pty_reverse_shell": f"{scenarios.SYSTEM}/usr/bin/python3",
                   "lolbin_lateral": f"{scenarios.SYSTEM}/opt/microsoft/powershell/7/pwsh",
                   "injected_implant": f"{scenarios.SYSTEM}/usr/bin/sleep"}
    for t in truth:
        if t.scenario in system_like:
            assert t.process_path == system_like[t.scenario], t
        else:
            assert t.process_path.startswith(("/tmp/", "/var/tmp/", "/dev/shm/")), t


def test_benign_servers_and_their_clients_are_placed_apart() -> None:
    hosts = [f"ws{i:02d}" for i in range(1, 9)]
    names = {h: [r.name for r in roles] for h, roles in scenarios.placement(hosts).items()}
    assert "nginx" in names["ws01"] and "intranet_fetch" not in names["ws01"]
    assert all("intranet_fetch" in names[h] for h in hosts[1:])
    assert "sshd" in names["ws06"] and "admin_ssh" in names["ws02"]
    assert "dev_http" in names["ws04"] and "dev_peer" in names["ws05"]
    assert "db_client" in names["ws08"]
    admin = next(r for r in scenarios.placement(hosts)["ws02"] if r.name == "admin_ssh")
    assert admin.args == ("--name", "10.66.0.16", "--interactive")
    # The operator connects in to the bind shell's host and port.
    bind, exploit = scenarios.operators(len(hosts))
    assert bind.args == ("--target", "10.66.0.16:31337", "--source", "198.51.100.66")
    # The web shell's operator sends its injection to the apache2 on ws08, whose CGI path the role is told.
    assert exploit.args[:4] == ("--target", "10.66.0.18:80", "--source", "198.51.100.66")
    assert exploit.args[5].startswith(scenarios.VULNERABLE_CGI + "?")
    apache = next(r for r in scenarios.placement(hosts)["ws08"] if r.name == "web_shell")
    assert apache.args[-2:] == ("--vulnerable", scenarios.VULNERABLE_CGI)


def test_a_bind_shell_is_found_by_its_listening_port() -> None:
    bind = TruthPair("ws06", "/tmp/.n/ncat", "bind_shell", "T1059", ("T1059", "T1571"), None, None, None, None,
                     31337)
    listening = finding("ws06", bind.process_path, "T1059", "Critical", 9.0, destination="port 31337 (inbound)",
                        remote_ip=None, direction="inbound", local_port=31337)
    other_port = finding("ws06", bind.process_path, "T1059", "High", 6.0, destination="port 8080 (inbound)",
                         remote_ip=None)
    result = evaluate({"findings": [other_port, listening]}, [bind])
    assert result.targets_met, result.failures
    assert result.scenarios[0] == ScenarioResult("bind_shell", "ws06", "/tmp/.n/ncat", ("T1059", "T1571"), True,
                                                 "T1059", "Critical", 1, 9.0, "ws06-9.0")
    assert not evaluate({"findings": [other_port]}, [bind]).targets_met


def test_the_shell_a_bind_shell_starts_is_the_attack_not_a_benign_pair() -> None:
    bind = TruthPair("ws06", "/tmp/.n/ncat", "bind_shell", "T1059", ("T1059",), None, None, None, None, 31337,
                     ("/usr/bin/bash",))
    report = {"findings": [
        finding("ws06", "/tmp/.n/ncat", "T1059", "Critical", 10.0, destination="port 31337 (inbound)"),
        finding("ws06", "/usr/bin/bash", "T1059", "Critical", 13.0, remote_ip="198.51.100.66"),
        finding("ws01", "/usr/bin/bash", "T1059", "High", 7.0, remote_ip="198.51.100.66"),
    ]}
    result = evaluate(report, [bind])
    assert [b["host"] for b in result.benign_alarms] == ["ws01"]  # the same program on another host is not related
    assert result.scenarios[0].found and result.best_benign_rank == 3


def test_ground_truth_round_trips_with_listening_ports(tmp_path: Path) -> None:
    truth = pairs(scenarios.placement([f"ws{i:02d}" for i in range(1, 9)]))
    write(tmp_path / "truth.json", truth)
    assert read(tmp_path / "truth.json") == truth
    assert [t.local_port for t in truth if t.scenario == "bind_shell"] == [31337]


def test_a_binary_deleted_while_it_ran_is_still_the_same_program() -> None:
    deleted = finding("ws05", SCAN.process_path + " (deleted)", "T1046", "Critical", 11.0, remote_ip=None)
    result = evaluate({"findings": [deleted]}, [SCAN])
    assert result.targets_met, result.failures
