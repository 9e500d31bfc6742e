"""Correlation never chains sockets of different processes because neither owner could be seen."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.correlate import correlate
from orchestrator.model import Chain, Finding
from orchestrator.schema import UNKNOWN_PROCESS


def _finding(hunt_id: str, identity: str, remote_ip: str, pids: tuple[int, ...] = ()) -> Finding:
    name = identity.rsplit("/", 1)[-1] if identity != UNKNOWN_PROCESS else ""
    return Finding(hunt_id=hunt_id, technique="T1571", techniques=("T1571",), host="h1", user="", process_name=name,
                   process_path=identity if pids else "", process_identity=identity, command_line="", parent_name=None,
                   parent_path=None,
                   pids=pids, ppids=(), destination=f"{remote_ip}:4444", remote_ip=remote_ip, remote_port=4444,
                   domain=None, first_seen=None, last_seen=None, connections=1, hosts_with_pair=None,
                   fleet_hosts=1, risk="High", confidence="Low", score=6.0, contributions=(),
                   response="investigation")


def test_two_unattributed_sockets_are_not_one_process() -> None:
    findings = [_finding("TH-1", UNKNOWN_PROCESS, "203.0.113.1"), _finding("TH-2", UNKNOWN_PROCESS, "203.0.113.2")]
    assert correlate(findings) == (findings, [])


def test_one_known_process_is_still_chained() -> None:
    a = _finding("TH-1", "/tmp/implant", "203.0.113.1", pids=(10,))
    b = _finding("TH-2", "/tmp/implant", "203.0.113.2", pids=(11,))
    c = _finding("TH-3", UNKNOWN_PROCESS, "203.0.113.3")
    assert correlate([a, b, c]) == ([replace(a, chain="C1"), replace(b, chain="C1"), c],
                                    [Chain("C1", "same process implant on h1", ("TH-1", "TH-2"))])
