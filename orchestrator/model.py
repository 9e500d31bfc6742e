"""The immutable result documents: a scored Finding with its structured evidence, and the HuntReport that reports
render."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any


class Risk(str, Enum):
    """The one spelling of a risk level; members compare by severity through ``rank``."""

    Low = "Low"
    Medium = "Medium"
    High = "High"
    Critical = "Critical"

    @property
    def rank(self) -> int:
        return list(Risk).index(self)


RISKS = tuple(r.value for r in Risk)
# (lowest score, risk): a finding's risk follows its summed, scaled detector points.
RISK_THRESHOLDS = ((9.0, Risk.Critical), (6.0, Risk.High), (3.0, Risk.Medium))


def risk_for(score: float) -> Risk:
    return next((risk for floor, risk in RISK_THRESHOLDS if score >= floor), Risk.Low)


def utc_text(value: datetime | None) -> str | None:
    """ISO 8601 with Z; the store hands back naive datetimes that are UTC."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat() + "Z"


def risk_rank(risk: str) -> int:
    return Risk(risk).rank


@dataclass(frozen=True)
class Contribution:
    """One detector's reason for a finding: its points and the named facts that made it fire."""

    detector: str
    technique: str
    reason: str
    points: float
    facts: tuple[tuple[str, str], ...]  # (name, value), as the detector's ``explain`` template names them
    scale: float = 1.0  # multiplies the finding's total (fleet prevalence lowers what every host does)
    context: bool = False

    @property
    def fact_map(self) -> dict[str, str]:
        return dict(self.facts)


@dataclass(frozen=True)
class Finding:
    """A scored (host, process identity, destination): facts only. Renderers write the prose from them."""

    hunt_id: str
    technique: str
    techniques: tuple[str, ...]
    host: str
    user: str
    process_name: str
    process_path: str
    process_identity: str
    command_line: str
    parent_name: str | None
    parent_path: str | None
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
    contributions: tuple[Contribution, ...]
    # containment / investigation / monitoring: the kind of response the risk calls for
    response: str
    # the primary detector's own advice (declared on its class), None for the generic advice
    action: str | None = None
    exe_sha256: str | None = None
    direction: str = "outbound"  # outbound, inbound (a local service's clients) or listener
    local_port: int | None = None
    protocols: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    remote_hostname: str | None = None
    sources: tuple[str, ...] = ()
    kind: str = "connections"  # what the timing counts: connections, or DNS queries for a DNS-only finding
    chain: str | None = None

    @property
    def parent(self) -> str:
        if not (self.parent_name or self.parent_path):
            return "unknown"
        ppid = f" (ppid {','.join(map(str, self.ppids))})" if self.ppids else ""
        return f"{self.parent_name or ''} {self.parent_path or ''}".strip() + ppid

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("first_seen", "last_seen"):
            data[key] = utc_text(data[key])
        data["parent"] = self.parent
        data["contributions"] = [{**asdict(c), "facts": dict(c.facts)} for c in self.contributions]
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
    # rows the allowlist kept out of scoring, per table, so a suppression is visible instead of silent
    suppressed: dict[str, int] = field(default_factory=dict)
    # findings of each risk this run produced, including those below the --min-risk that was built and shown
    totals: dict[str, int] = field(default_factory=dict)
