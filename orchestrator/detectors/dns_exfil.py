"""T1048.003 / T1071.004: data exfiltration over DNS, and DNS sent straight to a nameserver that is not a resolver.

Per (host, process, registered domain): long high-entropy labels (entropy is measured against what a label of
that length and alphabet could reach, so a short label never looks random), many unique subdomains, query
volume, and queries addressed to a server other than the configured resolvers.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from functools import lru_cache
from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector, values_table
from orchestrator.domains import registered_domain

__all__ = ["DnsExfil", "encoded_labels", "registered_domain"]

MIN_LABEL = 20  # labels shorter than this carry too little data to matter
ENTROPY_THRESHOLD = 0.9  # of what a random label of the same length and alphabet reaches
# Words are ~40 % vowels; base32/hex/base64 encodings ~15 %. Entropy alone cannot tell a 22-character
# host name from 22 random characters, this can.
MAX_VOWEL_SHARE = 0.28
MIN_ENCODED_QUERIES = 8
MIN_UNIQUE_SUBDOMAINS = 30
RESOLVER_PROGRAMS = {"named", "unbound", "dnsmasq", "systemd-resolved", "pdns_recursor", "coredns", "kresd",
                     "dns.exe", "svchost.exe"}

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


# Per distinct label: its entropy against what a random label of the same length and alphabet reaches, and whether
# it looks like an encoding rather than words. Runs over distinct labels, in SQL; only the expected entropy of a
# random label (a constant per length and alphabet) comes from Python.
LABELS_SQL = """
CREATE OR REPLACE TEMP TABLE labels AS
WITH base AS (
    SELECT label, lower(label) AS text, length(label) AS len,
           CASE WHEN regexp_full_match(lower(label), '[0-9a-f]+') THEN 16
                WHEN regexp_full_match(lower(label), '[a-z2-7]+=*') THEN 32 ELSE 37 END AS alphabet
    FROM ({source}) WHERE length(label) >= $min_label
), chars AS (
    SELECT label, ch, count(*) AS n FROM (SELECT label, unnest(string_split(text, '')) AS ch FROM base) GROUP BY ALL
), entropy AS (
    SELECT c.label, -sum(c.n / b.len * log2(c.n / b.len)) AS bits,
           sum(c.n) FILTER (WHERE regexp_full_match(c.ch, '[a-z]')) AS letters,
           sum(c.n) FILTER (WHERE c.ch IN ('a', 'e', 'i', 'o', 'u', 'y')) AS vowels
    FROM chars c JOIN base b USING (label) GROUP BY c.label
)
SELECT b.label, e.bits / r.bits AS randomness,
       e.bits / r.bits >= $entropy_threshold
       AND (b.alphabet = 16 OR coalesce(e.letters, 0) = 0
            OR coalesce(e.vowels, 0) / e.letters <= $max_vowel_share) AS encoded
FROM base b JOIN entropy e USING (label) JOIN random_entropy r USING (len, alphabet)
"""


def build_labels(con: Any, source: str) -> None:
    """The ``labels`` table for the distinct labels ``source`` (a SELECT of one ``label`` column) yields."""
    shapes = con.execute(f"""
        SELECT DISTINCT length(label), CASE WHEN regexp_full_match(lower(label), '[0-9a-f]+') THEN 16
                                            WHEN regexp_full_match(lower(label), '[a-z2-7]+=*') THEN 32 ELSE 37 END
        FROM ({source}) WHERE length(label) >= {MIN_LABEL}""").fetchall()
    values_table(con, "random_entropy", "len INTEGER, alphabet INTEGER, bits DOUBLE",
                 ((n, k, _random_entropy(n, k)) for n, k in shapes))
    con.execute(LABELS_SQL.format(source=source), {"min_label": MIN_LABEL, "entropy_threshold": ENTROPY_THRESHOLD,
                                                   "max_vowel_share": MAX_VOWEL_SHARE})


def encoded_labels(labels: list[str]) -> dict[str, float]:
    """label -> randomness for the labels that look encoded (the same SQL the detector runs; for tests)."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE given AS SELECT unnest(?::VARCHAR[]) AS label", [labels])
    build_labels(con, "SELECT DISTINCT label FROM given")
    rows = con.execute("SELECT label, randomness FROM labels WHERE encoded").fetchall()
    con.close()
    return dict(rows)


class DnsExfil(Detector):
    name: ClassVar[str] = "dns_exfil"
    technique: ClassVar[str] = "T1048.003"
    priority: ClassVar[int] = 20
    combine: ClassVar[str] = "sum"
    action: ClassVar[str | None] = ("block the domain at the resolver and egress port 53 to non-resolvers, review "
                                   "what data was read")
    explain: ClassVar[dict[str, str]] = {
        "encoded": "{encoded} queries under {domain} carry long high-entropy labels (e.g. {example}, {length} chars)",
        "subdomains": "{subdomains} unique subdomains of {domain} in {queries} queries",
        "direct": "queries sent straight to {servers}, not to a configured resolver",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]]:
        con = ctx.con
        # Per distinct query: its domain, subdomain and longest label; the label tests run per distinct label.
        con.execute("""
            CREATE OR REPLACE TEMP TABLE query_labels AS
            SELECT query, domain, subdomain,
                   list_reduce(string_split(subdomain, '.'),
                               lambda a, b: CASE WHEN length(b) > length(a) THEN b ELSE a END) AS label
            FROM query_domains""")
        build_labels(con, "SELECT DISTINCT label FROM query_labels WHERE label IS NOT NULL")
        values_table(con, "resolver_programs", "name VARCHAR", ((n,) for n in sorted(RESOLVER_PROGRAMS)))
        # In a fleet, a server that at least half the hosts query is a resolver (triage adds /etc/resolv.conf's).
        con.execute("""
            CREATE OR REPLACE TEMP TABLE resolvers AS
            SELECT unnest(?::VARCHAR[]) AS ip
            UNION SELECT server_ip FROM queries WHERE server_ip IS NOT NULL AND ?
            GROUP BY server_ip HAVING count(DISTINCT host) >= ? * ?""",
                    [sorted(ctx.config.resolver_set), ctx.fleet, ctx.config.common_share, ctx.fleet_size])
        # The domains that can give a signal at all: enough distinct subdomains in the whole data, an encoded
        # label, or a query sent past the resolvers. Only their queries are grouped per host and process.
        con.execute("""
            CREATE OR REPLACE TEMP TABLE exfil_candidates AS
            SELECT domain FROM query_labels WHERE subdomain <> '' GROUP BY domain HAVING count(*) >= ?
            UNION SELECT q.domain FROM query_labels q JOIN labels l USING (label) WHERE l.encoded
            UNION SELECT domain FROM queries WHERE server_ip IS NOT NULL AND NOT starts_with(server_ip, '127.')
                  AND server_ip NOT IN (SELECT ip FROM resolvers)""", [MIN_UNIQUE_SUBDOMAINS])
        # One row per (host, process, query) of those domains; the servers it went to are counted apart.
        con.execute("""
            CREATE OR REPLACE TEMP TABLE query_shapes AS
            SELECT s.*, d.domain, d.subdomain, d.label
            FROM (SELECT host, process_identity, query, min(name) AS name, count(*) AS n
                  FROM queries SEMI JOIN exfil_candidates USING (domain) GROUP BY host, process_identity, query) s
            JOIN query_labels d USING (query)""")
        sql = """
            WITH per_domain AS (
                SELECT q.host, q.process_identity, q.domain, min(q.name) AS name, sum(q.n) AS queries,
                       count(*) FILTER (WHERE q.subdomain <> '') AS subdomains,
                       coalesce(sum(q.n) FILTER (WHERE l.encoded), 0) AS encoded,
                       arg_max(q.label, (length(q.label), q.label)) FILTER (WHERE l.encoded) AS example
                FROM query_shapes q LEFT JOIN labels l ON l.label = q.label
                GROUP BY q.host, q.process_identity, q.domain
            ), servers AS (
                SELECT host, process_identity, domain, server_ip, count(*) AS n
                FROM queries SEMI JOIN exfil_candidates USING (domain) WHERE server_ip IS NOT NULL GROUP BY ALL
            ), direct AS (
                SELECT s.host, s.process_identity, s.domain,
                       string_agg(s.server_ip || ' (' || s.n || ' queries)', ', ' ORDER BY s.n DESC, s.server_ip)
                           AS servers
                FROM servers s
                WHERE s.server_ip NOT IN (SELECT ip FROM resolvers) AND NOT starts_with(s.server_ip, '127.')
                GROUP BY ALL
            ), top_server AS (
                SELECT host, process_identity, domain, arg_max(server_ip, (n, server_ip)) AS server_ip,
                       list(DISTINCT server_ip || ':53' ORDER BY server_ip || ':53') AS covers
                FROM servers GROUP BY ALL
            ), scored AS (
                SELECT d.*, x.servers AS direct_servers, t.server_ip, t.covers,
                       (x.servers IS NOT NULL AND d.name NOT IN (SELECT name FROM resolver_programs)) AS is_direct
                FROM per_domain d
                LEFT JOIN direct x USING (host, process_identity, domain)
                LEFT JOIN top_server t USING (host, process_identity, domain)
            ), reasons AS (
                SELECT *, 'encoded' AS reason, 4.0 AS weight FROM scored WHERE encoded >= $min_encoded
                UNION ALL SELECT *, 'subdomains', 2.0 FROM scored WHERE subdomains >= $min_subdomains
                UNION ALL SELECT *, 'direct', 2.5 FROM scored WHERE is_direct
            )
            SELECT host, process_identity, domain AS destination, domain, server_ip AS remote_ip,
                   CASE WHEN server_ip IS NULL THEN NULL ELSE 53 END AS remote_port, reason,
                   -- one signal per domain carries the whole score; its facts name every reason
                   weight, coalesce(covers, []) AS covers,
                   -- direct-to-nameserver alone is tunnelling over DNS (T1071.004), not exfiltration
                   CASE WHEN reason = 'direct' AND NOT (encoded >= $min_encoded OR subdomains >= $min_subdomains)
                        THEN 'T1071.004' END AS technique,
                   MAP {'domain': domain, 'encoded': encoded::VARCHAR,
                        'example': CASE WHEN length(example) > 40 THEN example[:40] || '...'
                                        ELSE coalesce(example, '') END,
                        'length': coalesce(length(example), 0)::VARCHAR, 'subdomains': subdomains::VARCHAR,
                        'queries': queries::VARCHAR, 'servers': coalesce(direct_servers, '')} AS facts
            FROM reasons
            QUALIFY sum(weight) OVER (PARTITION BY host, process_identity, domain) >= 2.5"""
        return sql, {"min_encoded": MIN_ENCODED_QUERIES, "min_subdomains": MIN_UNIQUE_SUBDOMAINS}
