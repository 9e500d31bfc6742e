"""T1048.003 / T1071.004: data exfiltration over DNS, and DNS sent straight to a nameserver that is not a resolver.

Per (host, process, registered domain): long high-entropy labels (entropy is measured against what a label of
that length and alphabet could reach, so a short label never looks random), many unique subdomains, query
volume, and queries addressed to a server other than the configured resolvers.
"""

from __future__ import annotations

import math
import random
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

import tldextract

from orchestrator.detectors.base import Context, endpoint
from orchestrator.model import PairKey, Signal

MIN_LABEL = 20  # labels shorter than this carry too little data to matter
ENTROPY_THRESHOLD = 0.9  # of what a random label of the same length and alphabet reaches
# Words are ~40 % vowels; base32/hex/base64 encodings ~15 %. Entropy alone cannot tell a 22-character
# host name from 22 random characters, this can.
MAX_VOWEL_SHARE = 0.28
MIN_ENCODED_QUERIES = 8
MIN_UNIQUE_SUBDOMAINS = 30
RESOLVER_PROGRAMS = {"named", "unbound", "dnsmasq", "systemd-resolved", "pdns_recursor", "coredns", "kresd",
                     "dns.exe", "svchost.exe"}
_HEX = re.compile(r"^[0-9a-f]+$")
_BASE32 = re.compile(r"^[a-z2-7]+=*$")

# The bundled public-suffix snapshot; an empty URL list means it never fetches one at run time.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=65536)
def registered_domain(name: str) -> str:
    parts = _EXTRACT(name)
    if parts.suffix and parts.domain:
        return f"{parts.domain}.{parts.suffix}"
    # Private or reserved TLDs (.example, .internal, .lan) have no public suffix: use the last two labels.
    labels = [x for x in name.split(".") if x]
    return ".".join(labels[-2:]) if len(labels) >= 2 else name


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


@lru_cache(maxsize=4096)
def _random_entropy(length: int, alphabet: int) -> float:
    """The mean entropy of random labels of this length and alphabet size: the most a short label can reach.

    Estimated once per (length, alphabet) with a fixed seed, so results are deterministic.
    """
    rng = random.Random(length * 1000 + alphabet)
    symbols = [chr(48 + i) for i in range(alphabet)]
    return statistics.fmean(_entropy("".join(rng.choices(symbols, k=length))) for _ in range(200))


def looks_encoded(label: str) -> bool:
    """A label long enough to carry data, as random as an encoding, and not made of words."""
    if len(label) < MIN_LABEL or label_randomness(label) < ENTROPY_THRESHOLD:
        return False
    if _HEX.match(label.lower()):  # a-f cannot spell much; the vowel test would misfire
        return True
    letters = [c for c in label.lower() if c.isalpha()]
    return not letters or sum(c in "aeiouy" for c in letters) / len(letters) <= MAX_VOWEL_SHARE


def label_randomness(label: str) -> float:
    """Entropy of ``label`` relative to a random label of the same length and alphabet (about 1.0 = random)."""
    if len(label) < 2:
        return 0.0
    text = label.lower()
    alphabet = 16 if _HEX.match(text) else 32 if _BASE32.match(text) else 37
    return _entropy(text) / _random_entropy(len(text), alphabet)


@dataclass
class _DomainStats:
    queries: int = 0
    subdomains: set[str] = field(default_factory=set)
    encoded: int = 0
    longest: str = ""
    servers: Counter[str] = field(default_factory=Counter)
    process_name: str | None = None


class DnsExfil:
    name: ClassVar[str] = "dns_exfil"
    technique: ClassVar[str] = "T1048.003"

    def detect(self, ctx: Context) -> list[Signal]:
        resolvers = ctx.config.resolver_set | _learned_resolvers(ctx)
        stats: dict[tuple[str, str, str], _DomainStats] = defaultdict(_DomainStats)
        for row in ctx.store.query("SELECT host, process_identity, any_value(process_name) AS process_name, query,"
                                   " server_ip, count(*) AS n FROM dns GROUP BY ALL"):
            domain = registered_domain(row["query"])
            item = stats[(row["host"], row["process_identity"], domain)]
            item.process_name = row["process_name"]
            item.queries += row["n"]
            sub = row["query"][: -len(domain)].rstrip(".")
            if sub:
                item.subdomains.add(sub)
            label = max(sub.split("."), key=len) if sub else ""
            if looks_encoded(label):
                item.encoded += row["n"]
                item.longest = max(item.longest, label, key=len)
            if row["server_ip"]:
                item.servers[row["server_ip"]] += row["n"]
        signals = []
        for (host, identity, domain), item in stats.items():
            signal = self._score(host, identity, domain, item, resolvers)
            if signal:
                signals.append(signal)
        return signals

    def _score(self, host: str, identity: str, domain: str, item: _DomainStats,
               resolvers: frozenset[str]) -> Signal | None:
        facts: list[str] = []
        points = 0.0
        technique = self.technique
        if item.encoded >= MIN_ENCODED_QUERIES:
            points += 4.0
            example = item.longest[:40] + ("..." if len(item.longest) > 40 else "")
            facts.append(f"{item.encoded} queries under {domain} carry long high-entropy labels "
                         f"(e.g. {example}, {len(item.longest)} chars)")
        if len(item.subdomains) >= MIN_UNIQUE_SUBDOMAINS:
            points += 2.0
            facts.append(f"{len(item.subdomains)} unique subdomains of {domain} in {item.queries} queries")
        direct = {ip: n for ip, n in item.servers.items() if ip not in resolvers and not ip.startswith("127.")}
        program = (item.process_name or identity.rsplit("/", 1)[-1]).lower()
        if direct and program not in RESOLVER_PROGRAMS:
            points += 2.5
            servers = ", ".join(f"{ip} ({n} queries)" for ip, n in sorted(direct.items(), key=lambda x: -x[1])[:3])
            facts.append(f"queries sent straight to {servers}, not to a configured resolver")
            if not facts[:-1]:
                technique = "T1071.004"
        if points < 2.5:
            return None
        server = max(item.servers, key=lambda ip: item.servers[ip]) if item.servers else None
        # The process's own sockets to those nameservers are this finding's traffic, not another finding.
        covers = frozenset(endpoint(ip, 53, "udp") for ip in item.servers)
        return Signal(self.name, technique, PairKey(host, identity, domain), points, tuple(facts),
                      remote_ip=server, remote_port=53 if server else None, domain=domain, covers=covers)


def _learned_resolvers(ctx: Context) -> frozenset[str]:
    """In a fleet, a server that at least half the hosts query is a resolver (triage adds /etc/resolv.conf's)."""
    rows = ctx.store.query("SELECT server_ip, count(DISTINCT host) AS hosts FROM dns WHERE server_ip IS NOT NULL"
                           " GROUP BY 1")
    if ctx.fleet_size >= ctx.config.min_fleet_for_prevalence:
        return frozenset(r["server_ip"] for r in rows if r["hosts"] >= ctx.config.common_share * ctx.fleet_size)
    return frozenset()
