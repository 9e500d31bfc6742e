"""The facts of one finding that a rule is built from, read the same way from a Finding or a JSON report's
finding (fields the report does not carry yet, such as exe_sha256 or sources, default to unknown)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from orchestrator.model import RISKS, Finding
from orchestrator.schema import UNKNOWN_PROCESS

_WINDOWS_PATH = re.compile(r"^(?:[a-zA-Z]:\\|\\\\)|\\")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_WINDOWS_SOURCES = {"sysmon", "evtx", "wfp", "mde", "defender", "falcon"}


@dataclass(frozen=True)
class FindingFacts:
    hunt_id: str
    host: str
    risk: str
    technique: str
    techniques: tuple[str, ...]
    process_name: str
    process_path: str
    process_identity: str
    command_line: str
    destination: str
    remote_ip: str | None
    remote_port: int | None
    domain: str | None
    exe_sha256: str | None
    direction: str  # outbound / inbound / listener
    local_port: int | None
    sources: tuple[str, ...]
    first_seen: str | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FindingFacts:
        """From one finding of ``connhunt ... --format json`` (or ``Finding.to_dict()``)."""
        risk = str(data.get("risk") or "Low").capitalize()
        if risk not in RISKS:
            raise ValueError(f"risk {data.get('risk')!r} is not one of {', '.join(RISKS)}")
        if not data.get("hunt_id"):
            raise ValueError("finding has no hunt_id")
        technique = str(data.get("technique") or "")
        sha = data.get("exe_sha256")
        port = data.get("remote_port")
        local_port = data.get("local_port")
        first_seen = data.get("first_seen")
        return cls(
            hunt_id=str(data["hunt_id"]), host=str(data.get("host") or ""), risk=risk, technique=technique,
            techniques=tuple(str(t) for t in (data.get("techniques") or [technique]) if t),
            # A socket whose owner was not seen has no binary to match ("<unknown>" is not a file name).
            process_name="" if data.get("process_name") == UNKNOWN_PROCESS else str(data.get("process_name") or ""),
            process_path=str(data.get("process_path") or ""),
            process_identity=str(data.get("process_identity") or data.get("process_path") or ""),
            command_line=str(data.get("command_line") or ""), destination=str(data.get("destination") or ""),
            remote_ip=_usable_ip(data.get("remote_ip")), remote_port=int(port) if port else None,
            domain=str(data["domain"]) if data.get("domain") else None,
            exe_sha256=sha.lower() if isinstance(sha, str) and _SHA256.match(sha) else None,
            direction=str(data.get("direction") or "outbound"),
            local_port=int(local_port) if local_port else None,
            sources=tuple(str(s) for s in (data.get("sources") or ())),
            first_seen=str(first_seen) if first_seen else None,
        )

    @classmethod
    def from_finding(cls, finding: Finding) -> FindingFacts:
        return cls.from_dict(finding.to_dict())

    @property
    def product(self) -> str:
        """The Sigma logsource product: where the evidence came from (Sysmon is Windows) or the path's shape."""
        if any(s.lower() in _WINDOWS_SOURCES for s in self.sources) or _WINDOWS_PATH.search(self.process_path):
            return "windows"
        return "linux"

    @property
    def image(self) -> str | None:
        """The binary as the SIEM records it (Windows paths are case-insensitive, so keep the reported spelling)."""
        return self.process_path or None


def _usable_ip(value: object) -> str | None:
    """An address a rule can match on: not a scan summary, not the unspecified address."""
    if not value:
        return None
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return None
    return None if address.is_unspecified else str(address)
