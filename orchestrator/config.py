"""Hunt configuration: which networks are internal, what to ignore, which resolvers are expected.

Defaults suit most fleets; a YAML file (``--config``) overrides any key. Unknown keys are an error, so a typo in a
config file is caught instead of silently ignored.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import InputError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(values: list[str] | tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


@dataclass(frozen=True)
class Allow:
    """One allowlist entry: every given field must match for a pair to be ignored."""

    process: str | None = None  # process name or identity (path), case-insensitive
    remote: str | None = None  # an IP or a network in CIDR form
    port: int | None = None
    host: str | None = None


@dataclass(frozen=True)
class Config:
    # RFC 1918 + RFC 6598 CGNAT + IPv6 ULA: what counts as "inside" for internal-scan and prevalence.
    internal_networks: tuple[str, ...] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                                         "fc00::/7")
    # Loopback and link-local peers are not evidence of anything reaching out.
    ignore_loopback: bool = True
    ignore_link_local: bool = True
    # DNS servers the hosts are supposed to use; anything else on port 53 is a direct query.
    resolvers: tuple[str, ...] = ()
    allow: tuple[Allow, ...] = ()
    # Ports that need no explanation for an outbound connection from most software.
    common_ports: tuple[int, ...] = (20, 21, 22, 25, 53, 80, 88, 110, 123, 135, 137, 138, 139, 143, 389, 443, 445,
                                     465, 587, 636, 853, 993, 995, 1433, 3268, 3389, 5222, 5223, 5228, 5353, 5355,
                                     5432, 5985, 5986, 8080, 8443, 9418)
    # A pair on at most this share of hosts is rare; at least common_share is common (RITA's thresholds).
    rare_share: float = 0.02
    common_share: float = 0.5
    # Prevalence says little below this many hosts, so it is not scored.
    min_fleet_for_prevalence: int = 3
    beacon_min_connections: int = 6
    # A host with no row for longer than this was not being watched: an interval across it is no check-in interval.
    collection_gap_s: float = 1800.0
    scan_min_targets: int = 12
    scan_min_half_open: int = 4
    # A baseline file from `connhunt baseline`: pairs seen before are lowered, never-seen destinations raised.
    baseline: str | None = None

    @cached_property
    def internal(self) -> tuple[IPNetwork, ...]:
        return _networks(self.internal_networks)

    @cached_property
    def resolver_set(self) -> frozenset[str]:
        return frozenset(str(ipaddress.ip_address(r)) for r in self.resolvers)

    @cached_property
    def allow_networks(self) -> tuple[tuple[Allow, IPNetwork | None], ...]:
        return tuple((a, ipaddress.ip_network(a.remote, strict=False) if a.remote else None) for a in self.allow)

    def is_internal(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr.version == net.version and addr in net for net in self.internal)

    def is_ignored_peer(self, ip: str) -> bool:
        """Loopback, link-local, unspecified and multicast peers are not connections to anyone."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return True
        if self.ignore_loopback and addr.is_loopback:
            return True
        if self.ignore_link_local and addr.is_link_local:
            return True
        return addr.is_multicast

    def is_allowed(self, host: str, process_name: str | None, identity: str, remote_ip: str, port: int | None) -> bool:
        for entry, net in self.allow_networks:
            if entry.host and entry.host.lower() != host.lower():
                continue
            if entry.process and entry.process.lower() not in ((process_name or "").lower(), identity.lower()):
                continue
            if entry.port is not None and entry.port != port:
                continue
            if net is not None:
                try:
                    if ipaddress.ip_address(remote_ip) not in net:
                        continue
                except ValueError:
                    continue
            return True
        return False

    def with_resolvers(self, extra: set[str]) -> Config:
        return replace(self, resolvers=tuple(sorted(set(self.resolvers) | extra)))


def load_config(path: Path | None) -> Config:
    """The defaults, overridden by the YAML file at ``path``; errors name the file and the key."""
    if path is None:
        return Config()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise InputError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InputError(f"{where}: not valid YAML") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config file must be a YAML mapping")
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{path}: unknown config key(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    try:
        for key, value in data.items():
            if key == "allow":
                values[key] = tuple(Allow(**entry) for entry in (value or []))
            elif isinstance(value, list):
                values[key] = tuple(value)
            else:
                values[key] = value
        config = Config(**values)
        _ = config.internal, config.resolver_set, config.allow_networks  # validate addresses now, not mid-hunt
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: invalid config: {exc}") from None
    return config
