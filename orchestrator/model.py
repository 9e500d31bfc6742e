"""The immutable result documents: a detector's Signal, a scored Finding, and the HuntReport reports render."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

RISKS = ("Low", "Medium", "High", "Critical")


def utc_text(value: datetime | None) -> str | None:
    """ISO 8601 with Z; the store hands back naive datetimes that are UTC."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat() + "Z"


def risk_rank(risk: str) -> int:
    return RISKS.index(risk)


@dataclass(frozen=True)
class PairKey:
    """What a finding is about: one process identity on one host talking to one destination."""

    host: str
    process_identity: str
    destination: str  # "ip:port", a registered domain, or a summary such as "10.0.0.0/8 (scan)"


@dataclass(frozen=True)
class Signal:
    """One detector's reason to look at a pair, with the facts that made it fire."""

    detector: str
    technique: str
    key: PairKey
    weight: float  # points this signal adds to the pair's score
    facts: tuple[str, ...]  # short, human-readable; they become the finding's Evidence
    # Context signals (odd path, rarity) raise a score but never name the technique alone when a
    # behavioural signal is present.
    context: bool = False
    remote_ip: str | None = None
    remote_port: int | None = None
    domain: str | None = None
    # Destinations this signal stands for (a scan summarises its targets): their own groups fold into it.
    covers: frozenset[str] = frozenset()
    # Multiplies the pair's total: fleet prevalence lowers what every host does (< 1).
    scale: float = 1.0
    hosts: int | None = None  # fleet prevalence: hosts with this pair (rarity only)


@dataclass(frozen=True)
class Contribution:
    detector: str
    technique: str
    points: float
    reason: str


@dataclass(frozen=True)
class Finding:
    hunt_id: str
    technique: str
    techniques: tuple[str, ...]
    host: str
    user: str
    process_name: str
    process_path: str
    process_identity: str
    command_line: str
    parent: str
    pids: tuple[int, ...]
    ppids: tuple[int, ...]
    destination: str
    remote_ip: str | None
    remote_port: int | None
    domain: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    connections: int
    hosts_with_pair: int | None
    fleet_hosts: int
    risk: str
    confidence: str
    score: float
    evidence: tuple[str, ...]
    contributions: tuple[Contribution, ...]
    recommended_action: str
    chain: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("first_seen", "last_seen"):
            value = data[key]
            data[key] = utc_text(value)
        return data


@dataclass(frozen=True)
class Chain:
    """Findings that belong together: one process tree on a host, or one destination across hosts."""

    chain_id: str
    reason: str
    hunt_ids: tuple[str, ...]


@dataclass(frozen=True)
class HuntReport:
    generated_at: datetime
    hosts: tuple[str, ...]
    sources: tuple[str, ...]
    rows: dict[str, int]
    findings: tuple[Finding, ...]
    chains: tuple[Chain, ...] = ()
    health: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
