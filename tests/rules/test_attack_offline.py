"""pySigma's ATT&CK tag validation with no network: connhunt hands it the vendored bundle. Sockets are blocked
in a fresh interpreter with an empty HOME, so no cache from an earlier download can help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orchestrator.rules import attack
from tests.conftest import ROOT

_BLOCK = """
import socket
def refuse(*args, **kwargs):
    raise OSError("network blocked by the test")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
"""
_RULE = {"title": "t", "id": "8d7b1a4e-1b1e-4f5e-9d2b-0a6b1c2d3e4f", "status": "experimental", "description": "d",
         "logsource": {"category": "network_connection", "product": "linux"},
         "detection": {"selection": {"DestinationPort": 4444}, "condition": "selection"}, "level": "low"}


def _offline(code: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _BLOCK + code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


def test_validation_works_offline_with_the_vendored_data(tmp_path: Path) -> None:
    good = {**_RULE, "tags": ["attack.command-and-control", "attack.t1571", "attack.t1048.003", "attack.g0016",
                              "attack.s0002", "attack.m1031"]}
    bad = {**_RULE, "tags": ["attack.t9999", "attack.not-a-tactic"]}
    code = ("import json\nfrom orchestrator.rules import validate\n"
            f"print(json.dumps([validate.issues([{good!r}]), validate.issues([{bad!r}])]))")
    result = _offline(code, tmp_path)
    assert result.returncode == 0, result.stderr
    clean, flagged = json.loads(result.stdout)
    assert clean == []
    assert [line.split(" ")[0] for line in flagged] == ["InvalidATTACKTagIssue", "InvalidATTACKTagIssue"]
    assert not (tmp_path / ".cache" / "pysigma").exists()  # the user's pySigma cache is neither read nor written


def test_without_the_vendored_data_pysigma_fails_offline(tmp_path: Path) -> None:
    """The control: the same check straight through pySigma needs the network, which the test really blocks."""
    code = ("from sigma.collection import SigmaCollection\nfrom sigma.validation import SigmaValidator\n"
            "from sigma.validators.core import validators\n"
            f"rules = SigmaCollection.from_dicts([{ {**_RULE, 'tags': ['attack.t1571']}!r}])\n"
            "SigmaValidator(set(validators.values())).validate_rules(iter(rules.rules))\n")
    result = _offline(code, tmp_path)
    assert result.returncode != 0
    assert "Failed to load MITRE" in result.stderr and "network blocked by the test" in result.stderr


def test_trim_keeps_what_pysigma_reads() -> None:
    refs = [{"source_name": "mitre-attack", "external_id": "T1571", "url": "https://attack.mitre.org/techniques/T1571"},
            {"source_name": "capec", "external_id": "CAPEC-1"}]
    bundle = {"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "x-mitre-collection", "id": "x-mitre-collection--1", "name": "Enterprise ATT&CK",
         "x_mitre_version": "18.1", "description": "long text"},
        {"type": "attack-pattern", "id": "attack-pattern--1", "name": "Non-Standard Port", "external_references": refs,
         "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "command-and-control"}],
         "description": "long text", "x_mitre_platforms": ["Linux"]},
        {"type": "attack-pattern", "id": "attack-pattern--2", "name": "Old", "revoked": True,
         "external_references": [{"source_name": "mitre-attack", "external_id": "T1000"}]},
        {"type": "malware", "id": "malware--1", "name": "Gone", "x_mitre_deprecated": True,
         "external_references": [{"source_name": "mitre-attack", "external_id": "S9999"}]},
        {"type": "relationship", "id": "relationship--1", "relationship_type": "uses"},
    ]}
    assert attack.trim(bundle) == {"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "x-mitre-collection", "id": "x-mitre-collection--1", "name": "Enterprise ATT&CK",
         "x_mitre_version": "18.1"},
        {"type": "attack-pattern", "id": "attack-pattern--1", "name": "Non-Standard Port",
         "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "command-and-control"}],
         "external_references": [{"source_name": "mitre-attack", "external_id": "T1571"}]},
    ]}


def test_vendored_bundle_is_trimmed_and_current() -> None:
    bundle = json.loads(attack.data_path(attack.ATTACK_FILE).read_text(encoding="utf-8"))
    assert attack.trim(bundle) == bundle
    collection = next(o for o in bundle["objects"] if o["type"] == "x-mitre-collection")
    assert collection["x_mitre_version"] == "18.1"
    assert attack.tactics_of("T1048.003") == ["exfiltration"]
    assert attack.techniques()["T1571"] == "Non-Standard Port"
