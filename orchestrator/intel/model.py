"""The one IOC row every intel loader yields, and the value canonicalisation they all share.

A row is one matchable value: an IP address or network, a domain, a URL or a file hash, with what the feed said
about it (threat name, its own confidence, validity and sighting dates, tags) and where it came from. Values are
canonical so that the threat-intel detector can join them to the store's columns with plain equality: IPs as
``orchestrator.schema.canonical_ip`` writes them, domains lower-case without a trailing dot, hashes lower-case hex.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any, TypedDict
from urllib.parse import urlsplit

from orchestrator.schema import SchemaError, canonical_ip, columns_of, parse_time

IOC_KINDS = ("ipv4", "ipv6", "domain", "url", "sha256", "md5", "sha1")
HASH_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256"}


class IocRow(TypedDict):
    """One indicator value from an offline intel file (a row of the ``iocs`` table)."""

    kind: str  # one of IOC_KINDS
    # Canonical text: an IP address, or a network in CIDR form when ``network`` is true (ipv4/ipv6 only); a domain
    # lower-case without its trailing dot; a URL as the feed gave it; a hash in lower-case hex.
    value: str
    network: bool  # value is a CIDR network (match remote_ip by containment), not one address
    port: Annotated[int, "INTEGER"] | None  # ip:port / domain:port IOCs (ThreatFox, Feodo, MISP ip-dst|port)
    # The host part of a URL (canonical domain or IP), so that a URL IOC can be matched on DNS queries and
    # remote addresses as weaker evidence; never emitted as a domain IOC of its own, since a URL on a shared host
    # (a code-hosting site, a CDN) does not make the whole host malicious.
    host: str | None
    # STIX only: the value is one part of an AND / FOLLOWEDBY pattern, so seeing it alone only partly matches the
    # indicator. False for every other format (each of their rows is a whole indicator).
    conjunctive: bool
    source_file: str
    source_format: str  # stix, misp, threatfox-csv, threatfox-json, feodo-csv, feodo-txt, plain
    source_line: Annotated[int, "INTEGER"] | None  # the line of a text format; None in JSON formats
    indicator_id: str | None  # STIX indicator id, MISP attribute uuid, ThreatFox ioc id
    name: str | None  # the threat or malware family
    description: str | None
    confidence: Annotated[int, "INTEGER"] | None  # the feed's own, 0-100; None where the format has none
    valid_from: datetime | None
    valid_until: datetime | None
    first_seen: datetime | None
    last_seen: datetime | None
    tags: list[str]
    reference: str | None  # a report the feed cites for the indicator (ThreatFox reference, STIX external_references)


IOC_COLUMNS = columns_of(IocRow)
OnNote = Callable[[str], None] | None


class Notes:
    """Counted notes about indicators skipped in one file: one line per reason with its count and first location."""

    def __init__(self, source_file: str) -> None:
        self.source_file = source_file
        self._counts: Counter[str] = Counter()
        self._first: dict[str, str] = {}

    def skip(self, where: str, reason: str) -> None:
        self._counts[reason] += 1
        self._first.setdefault(reason, where)

    def lines(self) -> list[str]:
        return [f"{self.source_file}: skipped {count} indicator(s): {reason} (first at {self._first[reason]})"
                for reason, count in sorted(self._counts.items())]


def ioc_row(kind: str, value: str, *, source_file: str, source_format: str, port: int | None = None,
            conjunctive: bool = False, source_line: int | None = None, indicator_id: Any = None, name: Any = None,
            description: Any = None, confidence: Any = None, valid_from: Any = None, valid_until: Any = None,
            first_seen: Any = None, last_seen: Any = None, tags: Iterable[Any] | None = None,
            reference: Any = None) -> IocRow:
    """A complete IocRow: ``value`` canonicalised for ``kind``, the feed's loose fields checked (SchemaError)."""
    value, network = canonical_value(kind, value)
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
        raise SchemaError(f"port out of range: {port!r}")
    return IocRow(kind=kind, value=value, network=network, port=port,
                  host=url_host(value) if kind == "url" else None, conjunctive=conjunctive, source_file=source_file,
                  source_format=source_format, source_line=source_line, indicator_id=_text(indicator_id),
                  name=_text(name), description=_text(description), confidence=confidence_of(confidence),
                  valid_from=time_or_none(valid_from), valid_until=time_or_none(valid_until),
                  first_seen=time_or_none(first_seen), last_seen=time_or_none(last_seen),
                  tags=[str(tag) for tag in tags or [] if str(tag).strip()], reference=_text(reference))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


_HEX = re.compile(r"[0-9a-fA-F]+")
# A DNS name as feeds write them: labels of letters, digits, '-' and '_' (service names), or IDN text.
_DOMAIN = re.compile(r"(?=.{1,253}$)(?!-)[\w-]{1,63}(\.(?!-)[\w-]{1,63})*", re.UNICODE)


def canonical_value(kind: str, value: str) -> tuple[str, bool]:
    """(canonical text, is a network) of ``value`` as an IOC of ``kind``; SchemaError says why it is not one."""
    text = str(value).strip()
    if not text:
        raise SchemaError("empty value")
    if kind in ("ipv4", "ipv6"):
        address, network = canonical_address(text)
        if ("ipv6" if ":" in address else "ipv4") != kind:
            raise SchemaError(f"not an {kind} address: {text!r}")
        return address, network
    if kind == "domain":
        return canonical_domain(text), False
    if kind == "url":
        try:
            scheme = urlsplit(text).scheme
        except ValueError:  # an unbalanced '[' in the authority
            scheme = ""
        if any(c.isspace() for c in text) or not scheme or "://" not in text:
            raise SchemaError(f"not a URL: {text!r}")
        return text, False
    if kind in ("sha256", "md5", "sha1"):
        if not _HEX.fullmatch(text) or HASH_LENGTHS.get(len(text)) != kind:
            raise SchemaError(f"not a {kind} hash: {text!r}")
        return text.lower(), False
    raise SchemaError(f"unknown IOC kind {kind!r}")


def canonical_address(text: str) -> tuple[str, bool]:
    """(canonical address or CIDR network, is a network); a /32 (or /128) network is the one address."""
    if "/" not in text:
        return canonical_ip(text), False
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise SchemaError(f"not an IP network: {text!r}") from None
    if net.num_addresses == 1:
        return canonical_ip(net.network_address), False
    return str(net), True


def canonical_domain(text: str) -> str:
    """Lower-case, no trailing dot, IDN labels in their ASCII (punycode) form as DNS queries carry them."""
    name = text.strip().rstrip(".").lower()
    if not _DOMAIN.fullmatch(name) or name.replace(".", "").isdigit():
        raise SchemaError(f"not a domain name: {text!r}")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise SchemaError(f"not a domain name: {text!r}") from None
    return name


def address_kind(text: str) -> str:
    """ipv4 or ipv6 for an address or network (SchemaError if it is neither)."""
    address, _ = canonical_address(text)
    return "ipv6" if ":" in address else "ipv4"


def url_host(url: str) -> str | None:
    """The host of a URL: a canonical IP, else a lower-case domain; None when the URL has none."""
    try:
        host = urlsplit(url).hostname
    except ValueError:  # an unbalanced '[' in the authority
        return None
    if not host:
        return None
    try:
        return canonical_ip(host)
    except SchemaError:
        pass
    try:
        return canonical_domain(host)  # punycode, like a domain IOC, so both match the same DNS query
    except SchemaError:
        return host.rstrip(".").lower()


def split_port(text: str) -> tuple[str, int]:
    """(host, port) of ``host:port`` or ``[v6]:port``; SchemaError when there is no valid port."""
    host, sep, port = text.strip().rpartition(":")
    # isascii: '²'.isdigit() is true, yet int('²') fails
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise SchemaError(f"not host:port: {text!r}")
    return host.strip("[]"), int(port)


def confidence_of(value: Any) -> int | None:
    """The feed's confidence as an integer 0-100, or None; SchemaError when it is something else."""
    if value is None or value == "" or value == "None":
        return None
    if isinstance(value, bool):
        raise SchemaError(f"confidence must be 0-100, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SchemaError(f"confidence must be 0-100, got {value!r}") from None
    if not 0 <= number <= 100:
        raise SchemaError(f"confidence must be 0-100, got {value!r}")
    return round(number)


def time_or_none(value: Any) -> datetime | None:
    """A UTC datetime from the feed's time text ("None" and "" are no time, as abuse.ch writes them)."""
    if isinstance(value, str) and value.strip() in ("", "None", "null"):
        return None
    parsed = parse_time(value)
    if parsed is not None and type(parsed) is not datetime:  # stix2's STIXdatetime, whose repr is its JSON text
        parsed = datetime.fromisoformat(parsed.isoformat())
    return parsed
