"""Hunt configuration: which networks are internal, what to ignore, which resolvers are expected.

Defaults suit most fleets; a YAML file (``--config``) overrides any key. The file is checked in full when it is
loaded, against the type hints of the ``Config`` dataclass below (the one declaration of what a key may hold):
an unknown key, a value of the wrong type or an address that does not parse is one error naming the file, the line
and the key, before any collection or scoring starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import types
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from orchestrator.errors import InputError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# Checks on a value already of the right type; used as ``Annotated`` metadata on the fields below. Each returns the
# value or raises ValueError saying what is wrong with it.

def valid_network(value: str) -> str:
    ipaddress.ip_network(value, strict=False)
    return value


def valid_address(value: str) -> str:
    ipaddress.ip_address(value)
    return value


def valid_port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError(f"{value} is not a port number (0-65535)")
    return value


def valid_share(value: float) -> float:
    if not 0.0 <= value <= 1.0:  # also refuses .nan
        raise ValueError(f"{value} is not a share between 0 and 1")
    return value


def at_least(minimum: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if value < minimum:
            raise ValueError(f"{value} is less than {minimum}")
        return value

    return check


def _networks(values: list[str] | tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


@dataclass(frozen=True)
class Allow:
    """One allowlist entry: every given field must match for a pair to be ignored."""

    process: str | None = None  # process name or identity (path), case-insensitive
    remote: Annotated[str, valid_network] | None = None  # an IP or a network in CIDR form
    port: Annotated[int, valid_port] | None = None
    host: str | None = None

    def __post_init__(self) -> None:
        if all(value is None for value in dataclasses.astuple(self)):
            # An entry that names nothing would match every pair and silently allow the whole hunt.
            raise ValueError("an allow entry needs at least one of process, remote, port, host")


@dataclass(frozen=True)
class Config:
    # RFC 1918 + RFC 6598 CGNAT + IPv6 ULA: what counts as "inside" for internal-scan and prevalence.
    internal_networks: tuple[Annotated[str, valid_network], ...] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                              "100.64.0.0/10", "fc00::/7")
    # Loopback and link-local peers are not evidence of anything reaching out.
    ignore_loopback: bool = True
    ignore_link_local: bool = True
    # DNS servers the hosts are supposed to use; anything else on port 53 is a direct query.
    resolvers: tuple[Annotated[str, valid_address], ...] = ()
    allow: tuple[Allow, ...] = ()
    # Ports that need no explanation for an outbound connection from most software.
    common_ports: tuple[Annotated[int, valid_port], ...] = (
        20, 21, 22, 25, 53, 80, 88, 110, 123, 135, 137, 138, 139, 143, 389, 443, 445, 465, 587, 636, 853, 993, 995,
        1433, 3268, 3389, 5222, 5223, 5228, 5353, 5355, 5432, 5985, 5986, 8080, 8443, 9418)
    # A pair on at most this share of hosts is rare; at least common_share is common (RITA's thresholds).
    rare_share: Annotated[float, valid_share] = 0.02
    common_share: Annotated[float, valid_share] = 0.5
    # Installed software doing the same on at least this share of hosts is the software's behaviour: lowered.
    widespread_share: Annotated[float, valid_share] = 0.03
    # Prevalence says little below this many hosts, so it is not scored.
    min_fleet_for_prevalence: Annotated[int, at_least(1)] = 3
    beacon_min_connections: Annotated[int, at_least(2)] = 6
    # A host with no row for longer than this was not being watched: an interval across it is no check-in interval.
    collection_gap_s: Annotated[float, at_least(1)] = 1800.0
    scan_min_targets: Annotated[int, at_least(1)] = 12
    scan_min_half_open: Annotated[int, at_least(0)] = 4
    # A baseline file from `connhunt baseline`: pairs seen before are lowered, never-seen destinations raised.
    baseline: str | None = None
    # Threat-intel files (any format --intel reads), matched against addresses, DNS and executable hashes.
    intel: tuple[str, ...] = ()

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
        """Add resolvers found on the host (resolv.conf); entries that are not addresses are left out, not fatal."""
        usable = {r for r in extra if _is_address(r)}
        return replace(self, resolvers=tuple(sorted(set(self.resolvers) | usable)))


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def load_config(path: Path | None) -> Config:
    """The defaults, overridden by the YAML file at ``path``; any error names the file, the line and the key."""
    if path is None:
        return Config()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}:{line}: not a YAML config: not UTF-8 text (byte {exc.start})") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:  # an empty file, or only comments
            return Config()
        if not isinstance(root, yaml.MappingNode):
            raise _Bad(root, "", "a config file must be a YAML mapping of key: value")
        config = _dataclass(loader, root, Config, "")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise InputError(f"{where}: not valid YAML: {problem}") from None
    except _Bad as bad:
        key = f"{bad.key}: " if bad.key else ""
        raise InputError(f"{path}:{bad.node.start_mark.line + 1}: invalid config: {key}{bad.message}") from None
    finally:
        loader.dispose()
    return config


class _Bad(Exception):
    """A value that does not fit its declared type; carries the YAML node (for its line) and the key path."""

    def __init__(self, node: yaml.Node, key: str, message: str) -> None:
        super().__init__(message)
        self.node, self.key, self.message = node, key, message


def _dataclass(loader: yaml.SafeLoader, node: yaml.Node, cls: type[Any], key: str) -> Any:
    """An instance of the dataclass ``cls`` from a YAML mapping, each field converted by its type hint."""
    if not isinstance(node, yaml.MappingNode):
        raise _Bad(node, key, f"expected {_describe(cls)}, got {_shown(loader, node)}")
    hints = get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    values: dict[str, Any] = {}
    unknown: list[tuple[yaml.Node, str]] = []
    for key_node, value_node in node.value:
        name = loader.construct_object(key_node, deep=True)
        if not isinstance(name, str) or name not in names:
            unknown.append((key_node, str(name)))
            continue
        if name in values:
            raise _Bad(key_node, _join(key, name), "given twice")
        values[name] = _convert(loader, value_node, hints[name], _join(key, name))
    if unknown:
        first = unknown[0][1]
        close = difflib.get_close_matches(first, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(names)})"
        what = "unknown config key(s)" if not key else f"{key}: unknown key(s)"
        raise _Bad(unknown[0][0], "", f"{what}: {', '.join(n for _, n in unknown)}{hint}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise _Bad(node, key, str(exc)) from None


def _convert(loader: yaml.SafeLoader, node: yaml.Node, hint: Any, key: str) -> Any:
    """The value of ``node`` as the type ``hint`` says, or _Bad naming what was expected and what was given."""
    origin = get_origin(hint)
    if origin is Annotated:
        base, *checks = get_args(hint)
        value = _convert(loader, node, base, key)
        for check in checks:
            try:
                value = check(value)
            except ValueError as exc:
                raise _Bad(node, key, str(exc)) from None
        return value
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if type(None) in options and _is_null(node):
            return None
        failures = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(loader, node, option, key)
            except _Bad as bad:
                failures.append(bad)
        if len(failures) == 1:
            raise failures[0]
        raise _Bad(node, key, f"expected {_describe(hint)}, got {_shown(loader, node)}")
    if origin is tuple:
        item, *rest = get_args(hint)
        if rest != [Ellipsis]:
            raise TypeError(f"config {key}: only tuple[X, ...] fields are supported, not {hint!r}")
        if not isinstance(node, yaml.SequenceNode):
            raise _Bad(node, key, f"expected {_describe(hint)}, got {_shown(loader, node)}")
        return tuple(_convert(loader, child, item, f"{key}[{i}]") for i, child in enumerate(node.value))
    if origin is Literal:
        value = _scalar(loader, node)
        if value not in get_args(hint):
            raise _Bad(node, key, f"expected {_describe(hint)}, got {_shown(loader, node)}")
        return value
    if dataclasses.is_dataclass(hint):
        return _dataclass(loader, node, hint, key)  # type: ignore[arg-type]
    if hint in (bool, int, float, str):
        value = _scalar(loader, node)
        # bool is an int in Python, and YAML's "yes" is a bool: neither may pass for the other.
        fits = (isinstance(value, hint) and not (hint is int and isinstance(value, bool))) or (
            hint is float and isinstance(value, int) and not isinstance(value, bool))
        if not fits:
            raise _Bad(node, key, f"expected {_describe(hint)}, got {_shown(loader, node)}")
        return float(value) if hint is float else value
    raise TypeError(f"config {key}: no YAML rule for the type {hint!r}")


def _scalar(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return loader.construct_object(node, deep=True) if isinstance(node, yaml.ScalarNode) else _NOT_SCALAR


_NOT_SCALAR = object()


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _describe(hint: Any) -> str:
    """What a type hint accepts, in words for the error message."""
    origin = get_origin(hint)
    if origin is Annotated:
        return _describe(get_args(hint)[0])
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(o) for o in get_args(hint))
    if origin is tuple:
        return f"a list of {_plural(get_args(hint)[0])}"
    if origin is Literal:
        return "one of " + ", ".join(map(str, get_args(hint)))
    if dataclasses.is_dataclass(hint):
        return "a mapping with keys " + ", ".join(f.name for f in dataclasses.fields(hint))
    return {bool: "true or false", int: "an integer", float: "a number", str: "text",
            type(None): "null"}.get(hint, str(hint))


def _plural(hint: Any) -> str:
    base = get_args(hint)[0] if get_origin(hint) is Annotated else hint
    if dataclasses.is_dataclass(base):
        return "mappings with keys " + ", ".join(f.name for f in dataclasses.fields(base))
    return {int: "integers", float: "numbers", str: "text values", bool: "true/false values"}.get(base, str(base))


def _shown(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    """What the file gave, short: the scalar as written, or the kind of collection."""
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if _is_null(node):
        return "null"
    text = str(node.value)
    return repr(text if len(text) <= 40 else text[:37] + "...")
