"""The detector registry: adding a detector is one new module and one line here."""

from __future__ import annotations

from orchestrator.detectors.base import Context, Detector
from orchestrator.detectors.beacon import Beacon
from orchestrator.detectors.cryptominer import Cryptominer
from orchestrator.detectors.dns_exfil import DnsExfil
from orchestrator.detectors.internal_scan import InternalScan
from orchestrator.detectors.lolbin import Lolbin, OddPath
from orchestrator.detectors.non_app_protocol import NonAppProtocol
from orchestrator.detectors.nonstandard_port import NonstandardPort
from orchestrator.detectors.novelty import Novelty
from orchestrator.detectors.rarity import Rarity

# Order is the tie-break when two signals weigh the same: the more specific behaviour names the technique.
DETECTORS: tuple[Detector, ...] = (
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

__all__ = ["DETECTORS", "Context", "Detector"]
