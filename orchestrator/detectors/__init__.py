"""The detector registry: adding a detector is one new module and one line here."""

from __future__ import annotations

from orchestrator.detectors.base import Context, Detector
from orchestrator.detectors.beacon import Beacon
from orchestrator.detectors.cryptominer import Cryptominer
from orchestrator.detectors.dns_exfil import DnsExfil
from orchestrator.detectors.internal_scan import InternalScan
from orchestrator.detectors.listeners import Listener
from orchestrator.detectors.lolbin import Lolbin, OddPath
from orchestrator.detectors.never_talk import NeverTalk
from orchestrator.detectors.non_app_protocol import NonAppProtocol
from orchestrator.detectors.nonstandard_port import NonstandardPort
from orchestrator.detectors.novelty import Novelty
from orchestrator.detectors.rarity import Rarity
from orchestrator.detectors.shells import ReverseShell
from orchestrator.detectors.threat_intel import ThreatIntel
from orchestrator.detectors.unattributed import Unattributed

DETECTORS: tuple[Detector, ...] = (
    ThreatIntel(),
    ReverseShell(),
    Listener(),
    NeverTalk(),
    Cryptominer(),
    DnsExfil(),
    InternalScan(),
    NonAppProtocol(),
    NonstandardPort(),
    Beacon(),
    Lolbin(),
    OddPath(),
    Rarity(),
    Novelty(),
)
# Every name a contribution can carry, with its metadata: the registry plus the notes scoring writes itself.
ALL_DETECTORS: tuple[Detector, ...] = (*DETECTORS, Unattributed())
BY_NAME: dict[str, Detector] = {d.name: d for d in ALL_DETECTORS}

__all__ = ["ALL_DETECTORS", "BY_NAME", "DETECTORS", "Context", "Detector"]
