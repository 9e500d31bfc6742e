"""The lab's ground truth: each malicious (host, process path, destination) and its scenario, as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator.lab.scenarios import Role


@dataclass(frozen=True)
class TruthPair:
    host: str
    process_path: str
    scenario: str
    technique: str
    techniques: tuple[str, ...]
    remote_ip: str | None
    remote_port: int | None
    domain: str | None
    remote_range: str | None
    local_port: int | None = None  # a listener on the host itself (a bind shell)
    related: tuple[str, ...] = ()  # other programs of the attack on this host (see Role.related)


def pairs(placement: dict[str, list[Role]]) -> list[TruthPair]:
    return [TruthPair(host, role.program, role.scenario or "", role.techniques[0], role.techniques, d.remote_ip,
                      d.remote_port, d.domain, d.remote_range, d.local_port, role.related)
            for host, roles in placement.items() for role in roles if role.malicious for d in role.destinations]


def write(path: Path, truth: list[TruthPair]) -> None:
    path.write_text(json.dumps([asdict(t) for t in truth], indent=2) + "\n")


def read(path: Path) -> list[TruthPair]:
    return [TruthPair(**{**row, "techniques": tuple(row["techniques"]), "related": tuple(row.get("related", ()))})
            for row in json.loads(path.read_text())]
