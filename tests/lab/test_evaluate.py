"""Matching findings to the lab's ground truth, and the placement of scenarios on the fleet (no root needed)."""

from __future__ import annotations

from orchestrator.lab import scenarios
from orchestrator.lab.evaluate import ScenarioResult, evaluate
from orchestrator.lab.groundtruth import TruthPair, pairs

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
    for role in scenarios.MALICIOUS:
        on = [h for h, roles in placed.items() if role in roles]
        assert 1 <= len(on) <= 2, (role.name, on)
    for role in scenarios.BENIGN:
        assert all(role in roles for roles in placed.values())
    truth = pairs(placed)
    assert {t.scenario for t in truth} == {"c2_beacon", "dns_exfiltration", "internal_scan", "cryptominer",
                                           "icmp_tunnel"}
    assert all(t.process_path.startswith(("/tmp/", "/var/tmp/", "/dev/shm/")) for t in truth)



def test_a_binary_deleted_while_it_ran_is_still_the_same_program() -> None:
    deleted = finding("ws05", SCAN.process_path + " (deleted)", "T1046", "Critical", 11.0, remote_ip=None)
    result = evaluate({"findings": [deleted]}, [SCAN])
    assert result.targets_met, result.failures
