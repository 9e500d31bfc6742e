"""What every detector is, and the one filtered view of the store they all read.

``Context`` applies policy once, in SQL: ignored peers (loopback, link-local, multicast), the allowlist and the
internal networks are resolved per distinct address, and every detector reads the same filtered tables:

- ``flows``: connection rows that survive the filter, with ``internal`` and the program ``name``;
- ``pairs``: one row per (host, process identity, protocol, remote ip, remote port) of outbound (or unknown
  direction) flows, with the facts a responder needs, computed once;
- ``services``: one row per (host, process identity, protocol, local port) of inbound flows: a server answering
  2,000 clients is one fact about its service, never 2,000 destinations;
- ``pair_programs``: the distinct (host, process identity) of ``pairs``, for counting a program's hosts, and
  ``pair_names``: their distinct short names, for the detectors that test names;
- ``listening``: listener rows that survive the allowlist;
- ``queries``: DNS rows that survive the allowlist, with the registered domain of each query (its subdomain
  and longest label are in ``query_domains`` / dns_exfil's ``query_labels``, per distinct query).

A detector is a class whose metadata (name, technique, whether it is a statistic, its priority, its recommended
action and how its facts read) is declared in class attributes, and whose ``query()`` returns one SQL SELECT over
those tables giving its signal rows. Python never sees a row per pair.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, ClassVar

from orchestrator.baseline import DESTINATION_SQL
from orchestrator.config import Config
from orchestrator.domains import deciding_labels, registered_domain
from orchestrator.schema import IPV4_TEXT
from orchestrator.store import Store

# The columns every detector query may return; missing ones take the defaults of the signals table.
SIGNAL_COLUMNS = """
    host VARCHAR NOT NULL, process_identity VARCHAR NOT NULL, destination VARCHAR NOT NULL,
    detector VARCHAR, technique VARCHAR, reason VARCHAR NOT NULL, weight DOUBLE NOT NULL,
    scale DOUBLE DEFAULT 1.0, context BOOLEAN DEFAULT false, facts MAP(VARCHAR, VARCHAR),
    remote_ip VARCHAR, remote_port INTEGER, domain VARCHAR, covers VARCHAR[] DEFAULT [], hosts INTEGER
"""

# The program's short name: its process name, else the last part of its identity (the regex only where needed).
NAME_SQL = ("lower(CASE WHEN coalesce(process_name, '') <> '' THEN process_name "
            "ELSE regexp_extract(replace(process_identity, '\\', '/'), '[^/]*$') END)")
# The process facts detectors test (name, path, command line, user), once per process on a host. Most processes
# show one set of facts in all their rows, so any row's are theirs (any_value: a min over strings costs twice as
# much); the few that show several (``varied``) get theirs per pair below, and NULL here, so nothing can read one
# arbitrary row's.
_PROCESSES_SQL = f"""
CREATE OR REPLACE TEMP TABLE processes AS
SELECT *, {NAME_SQL} AS name FROM (
    SELECT host, process_identity,
           -- rows that disagree on the facts (a 64-bit hash of them, not a DISTINCT over millions of strings)
           min(facts_hash) <> max(facts_hash) AS varied,
           CASE WHEN min(facts_hash) = max(facts_hash) THEN any_value(process_name) END AS process_name,
           CASE WHEN min(facts_hash) = max(facts_hash) THEN any_value(process_path) END AS process_path,
           CASE WHEN min(facts_hash) = max(facts_hash) THEN any_value(command_line) END AS command_line,
           CASE WHEN min(facts_hash) = max(facts_hash) THEN any_value(username) END AS username
    FROM (SELECT *, hash(process_name, process_path, command_line, username) AS facts_hash FROM connections)
    GROUP BY host, process_identity)
"""
# Process facts per pair for the few processes that show several (the others' are their row in ``processes``).
_VARIED_PAIRS_SQL = """
CREATE OR REPLACE TEMP TABLE varied_pairs AS
SELECT host, process_identity, protocol, remote_ip, remote_port, min(process_name) AS process_name,
       min(process_path) AS process_path, min(command_line) AS command_line, min(username) AS username
FROM connections SEMI JOIN (SELECT host, process_identity FROM processes WHERE varied)
     USING (host, process_identity)
WHERE direction <> 'inbound'
GROUP BY host, process_identity, protocol, remote_ip, remote_port
"""
# The pairs detectors read: counts and the process facts most detectors test (name, path), no lists (lists and
# structs cost more than the whole stacking pass at fleet scale). The facts a finding prints are gathered for its
# rows only. Stacking reads the stored rows and groups on the pair alone; the peer filter is a property of the
# pair's remote address, so it is applied to the pairs (millions), not to the rows (tens of millions), and so are
# the process facts (a min over strings per pair cost more than the stacking itself). Command line and user, which
# two detectors test, are left in ``processes`` / ``varied_pairs`` for those detectors to join for their candidates
# (PAIR_PROCESS_JOIN): copying them into millions of pairs cost more than either detector. So are a raw socket's
# samples and IP protocol, which only non_app_protocol reads, for raw pairs only: two aggregates over every row
# cost 0.2 s of the 1.3 s stacking at 10M rows.
_PAIRS_SQL = f"""
CREATE OR REPLACE TEMP TABLE all_pairs AS
WITH stacked AS (
    SELECT host, process_identity, protocol, remote_ip, remote_port,
           count(*) AS connections, count(*) FILTER (WHERE state = 'SYN_SENT') AS half_open,
           min(first_seen) AS first_seen, max(last_seen) AS last_seen,
           bool_or(attributed) AS attributed, bool_or(coalesce(stdio, false)) AS stdio,
           -- rows whose owner the socket table or a live dump named (not a guess from history or an exit)
           count(*) FILTER (WHERE attribution IN ('pid', 'inode')) AS owner_seen,
           min(remote_hostname) AS remote_hostname
    FROM connections WHERE direction <> 'inbound'
    GROUP BY host, process_identity, protocol, remote_ip, remote_port
)
SELECT * EXCLUDE (varied, process_name_of), {DESTINATION_SQL} AS destination,
       CASE WHEN varied THEN {NAME_SQL} ELSE process_name_of END AS name FROM (
    SELECT s.host, s.process_identity, s.protocol, s.remote_ip, s.remote_port, coalesce(n.internal, false) AS internal,
           p.varied, p.name AS process_name_of,
           CASE WHEN p.varied THEN v.process_name ELSE p.process_name END AS process_name,
           CASE WHEN p.varied THEN v.process_path ELSE p.process_path END AS process_path,
           s.* EXCLUDE (host, process_identity, protocol, remote_ip, remote_port)
    FROM stacked s
    LEFT JOIN peers n ON n.ip = s.remote_ip
    JOIN processes p ON p.host = s.host AND p.process_identity = s.process_identity
    LEFT JOIN varied_pairs v ON v.host = s.host AND v.process_identity = s.process_identity
         AND v.protocol = s.protocol AND v.remote_ip = s.remote_ip AND v.remote_port IS NOT DISTINCT FROM s.remote_port
    WHERE NOT (coalesce(n.ignored, true) AND s.protocol <> 'raw'))
"""
# A pair's user (or command line): ``SELECT {PAIR_USERNAME} ... FROM pairs p {PAIR_PROCESS_JOIN}`` (filter ``p``
# first: the join is per pair that survives). The cryptominer tests command lines per process instead.
PAIR_PROCESS_JOIN = """
    JOIN processes pp_r ON pp_r.host = p.host AND pp_r.process_identity = p.process_identity
    LEFT JOIN varied_pairs pp_v ON pp_v.host = p.host AND pp_v.process_identity = p.process_identity
         AND pp_v.protocol = p.protocol AND pp_v.remote_ip = p.remote_ip
         AND pp_v.remote_port IS NOT DISTINCT FROM p.remote_port"""
PAIR_USERNAME = "CASE WHEN pp_r.varied THEN pp_v.username ELSE pp_r.username END"
_SERVICES_SQL = f"""
CREATE OR REPLACE TEMP TABLE all_services AS
WITH clients AS (
    -- one row per client of a service first: the peer filter then runs per client, not per row
    SELECT c.*, coalesce(n.internal, false) AS internal FROM (
        SELECT host, process_identity, protocol, local_port, remote_ip, count(*) AS connections,
               min(first_seen) AS first_seen, max(last_seen) AS last_seen, bool_or(attributed) AS attributed,
               bool_or(coalesce(stdio, false)) AS stdio
        FROM connections WHERE direction = 'inbound'
        GROUP BY host, process_identity, protocol, local_port, remote_ip) c
    LEFT JOIN peers n ON n.ip = c.remote_ip
    WHERE NOT (coalesce(n.ignored, true) AND c.protocol <> 'raw')
), served AS (
    SELECT host, process_identity, protocol, local_port,
           sum(connections) AS connections, count(*) AS clients,
           count(*) FILTER (WHERE NOT internal) AS external_clients,
           min(first_seen) AS first_seen, max(last_seen) AS last_seen, bool_or(attributed) AS attributed,
           bool_or(stdio) AS stdio,
           list(remote_ip ORDER BY remote_ip)[1:3] AS sample  -- a few clients, for a finding's evidence
    FROM clients GROUP BY host, process_identity, protocol, local_port
), varied AS (
    SELECT host, process_identity, protocol, local_port, min(process_name) AS process_name,
           min(process_path) AS process_path, min(command_line) AS command_line, min(username) AS username
    FROM classified SEMI JOIN (SELECT host, process_identity FROM processes WHERE varied)
         USING (host, process_identity)
    WHERE direction = 'inbound'
    GROUP BY host, process_identity, protocol, local_port
)
SELECT * EXCLUDE (varied, process_name_of), 'port ' || local_port || ' (inbound)' AS destination,
       CASE WHEN varied THEN {NAME_SQL} ELSE process_name_of END AS name FROM (
    SELECT s.host, s.process_identity, s.protocol, s.local_port, p.varied, p.name AS process_name_of,
           CASE WHEN p.varied THEN v.process_name ELSE p.process_name END AS process_name,
           CASE WHEN p.varied THEN v.process_path ELSE p.process_path END AS process_path,
           CASE WHEN p.varied THEN v.command_line ELSE p.command_line END AS command_line,
           CASE WHEN p.varied THEN v.username ELSE p.username END AS username,
           s.* EXCLUDE (host, process_identity, protocol, local_port)
    FROM served s
    JOIN processes p ON p.host = s.host AND p.process_identity = s.process_identity
    LEFT JOIN varied v ON v.host = s.host AND v.process_identity = s.process_identity AND v.protocol = s.protocol
         AND v.local_port IS NOT DISTINCT FROM s.local_port)
"""


def endpoint(ip: str, port: int | None, protocol: str) -> str:
    """A destination as text, the same as DESTINATION_SQL: ``ip:port``, ``[v6]:port``, or the bare address."""
    if port is None or protocol == "raw":
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def values_table(con: Any, name: str, columns: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """A small lookup table (ports, program names) from Python constants, so detectors can join it."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({columns})")
    rows = list(rows)
    if rows:
        # one statement, a list per column zipped by unnest (executemany runs one insert per row)
        types = [row[1] for row in con.execute(f"DESCRIBE {name}").fetchall()]
        select = ", ".join(f"unnest(?::{kind}[])" for kind in types)
        con.execute(f"INSERT INTO {name} SELECT {select}", [list(column) for column in zip(*rows, strict=True)])


class Detector:
    """A detector's metadata; subclasses set these and implement ``query``."""

    name: ClassVar[str]
    technique: ClassVar[str]
    # A statistic (prevalence, novelty) says how common a pair is, not what it does: alone it never makes a finding,
    # and it is computed only for pairs some other detector already flagged.
    statistic: ClassVar[bool] = False
    # Context (an odd path, a LOLBin) raises a score but names the technique only when nothing behavioural fired.
    context: ClassVar[bool] = False
    # Lower is more specific: it names the technique when two signals weigh the same.
    priority: ClassVar[int] = 50
    # How several signals of this detector on one finding add up: the strongest counts ("max"), or all ("sum").
    combine: ClassVar[str] = "max"
    # What to do about a finding this detector names (None: the generic "acquire the binary..." advice).
    action: ClassVar[str | None] = None
    # reason -> how its facts read; placeholders are the signal's fact names.
    explain: ClassVar[dict[str, str]] = {}

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]] | None:
        """One SELECT giving this detector's signal rows (see SIGNAL_COLUMNS), or None to stay silent."""
        raise NotImplementedError


class Context:
    """What detectors share for one run: the store, the config, and the filtered tables, built once."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self.con = store.con
        self.hosts: tuple[str, ...] = tuple(
            r[0] for r in self.con.execute(
                "SELECT host FROM connections UNION SELECT host FROM listeners UNION SELECT host FROM dns "
                "UNION SELECT host FROM health WHERE host <> '' ORDER BY 1").fetchall())
        self._classify_peers()
        self._allow_tables()
        self.suppressed = self._build_views()

    @property
    def fleet_size(self) -> int:
        return len(self.hosts)

    @property
    def fleet(self) -> bool:
        """Enough hosts for prevalence to mean something."""
        return self.fleet_size >= self.config.min_fleet_for_prevalence

    def _classify_peers(self) -> None:
        """Per distinct address (not per row): ignored, internal, and which allowlist networks contain it.

        IPv4 addresses (nearly all of a fleet's hundred thousand) are classified in SQL against the networks as
        integer ranges; the rest (IPv6, anything unparsable) by ``ipaddress`` in Python, one by one.
        """
        con = self.con
        con.execute("CREATE OR REPLACE TEMP TABLE peer_ips AS SELECT ip, CASE WHEN regexp_full_match(ip, ?) THEN "
                    "list_reduce(list_transform(string_split(ip, '.'), lambda o: o::UBIGINT), "
                    "lambda a, b: a * 256 + b) END AS v4 FROM (SELECT DISTINCT remote_ip AS ip FROM connections "
                    "UNION SELECT DISTINCT server_ip FROM dns WHERE server_ip IS NOT NULL)", [IPV4_TEXT])
        values_table(con, "peer_ranges", "role VARCHAR, id INTEGER, lo UBIGINT, hi UBIGINT", self._v4_ranges())
        con.execute("""
            CREATE OR REPLACE TEMP TABLE peers AS
            SELECT i.ip,
                   i.v4 = 0 OR coalesce(bool_or(r.role = 'ignored'), false) AS ignored,
                   coalesce(bool_or(r.role = 'internal'), false) AS internal,
                   coalesce(list(DISTINCT r.id ORDER BY r.id) FILTER (WHERE r.role = 'allow'), [])::INTEGER[]
                       AS allow_nets
            FROM peer_ips i LEFT JOIN peer_ranges r ON i.v4 BETWEEN r.lo AND r.hi
            WHERE i.v4 IS NOT NULL GROUP BY i.ip, i.v4""")
        others = [r[0] for r in con.execute("SELECT ip FROM peer_ips WHERE v4 IS NULL").fetchall()]
        nets = self.config.allow_networks
        ignored, internal, allow_nets = [], [], []
        for ip in others:
            ignored.append(self.config.is_ignored_peer(ip) or ip in ("", "0.0.0.0", "::"))
            internal.append(self.config.is_internal(ip))
            try:
                addr = ipaddress.ip_address(ip)
                allow_nets.append([i for i, (_, net) in enumerate(nets)
                                   if net is not None and addr.version == net.version and addr in net])
            except ValueError:
                allow_nets.append([])
        if others:  # one statement for all of them (an IPv6 fleet has tens of thousands)
            con.execute("INSERT INTO peers SELECT unnest(?::VARCHAR[]), unnest(?::BOOLEAN[]), unnest(?::BOOLEAN[]), "
                        "unnest(?::INTEGER[][])", [others, ignored, internal, allow_nets])

    def _v4_ranges(self) -> list[tuple[str, int, int, int]]:
        """The IPv4 networks that classify a peer, as integer ranges: what ``Config.is_ignored_peer`` ignores
        (loopback and link-local when configured, multicast), the internal networks and the allowlist's."""
        ignored = ["224.0.0.0/4"] + (["127.0.0.0/8"] if self.config.ignore_loopback else []) + (
            ["169.254.0.0/16"] if self.config.ignore_link_local else [])
        ranges = [("ignored", -1, ipaddress.ip_network(n)) for n in ignored]
        ranges += [("internal", -1, net) for net in self.config.internal]
        ranges += [("allow", i, net) for i, (_, net) in enumerate(self.config.allow_networks) if net is not None]
        return [(role, i, int(net.network_address), int(net.broadcast_address))
                for role, i, net in ranges if net.version == 4]

    def _allow_tables(self) -> None:
        """The allowlist as a table, so the filter is one join whatever its length (values are parameters)."""
        rows = [(i, (e.process or "").lower() or None, e.port, (e.host or "").lower() or None, net is not None)
                for i, (e, net) in enumerate(self.config.allow_networks)]
        values_table(self.con, "allow", "id INTEGER, process VARCHAR, port INTEGER, host VARCHAR, has_net BOOLEAN",
                     rows)

    def _allowed(self, alias: str, port: str, nets: str) -> str:
        """SQL: some allowlist entry matches every field it gives (a join of the few entries, per group not row)."""
        return (f"(a.host IS NULL OR a.host = lower({alias}.host)) "
                f"AND (a.process IS NULL OR a.process = lower({alias}.process_name) "
                f"OR a.process = lower({alias}.process_identity)) "
                f"AND (a.port IS NULL OR a.port = {port}) AND (NOT a.has_net OR list_contains({nets}, a.id))")

    def _build_views(self) -> dict[str, int]:
        con = self.con
        con.execute("""
            CREATE OR REPLACE TEMP VIEW classified AS
            SELECT c.*, coalesce(p.internal, false) AS internal
            FROM connections c LEFT JOIN peers p ON p.ip = c.remote_ip
            WHERE NOT (coalesce(p.ignored, true) AND c.protocol <> 'raw')""")
        con.execute(_PROCESSES_SQL)
        con.execute(_VARIED_PAIRS_SQL)
        con.execute(_PAIRS_SQL)
        con.execute(_SERVICES_SQL)
        if not self.config.allow:
            # nothing to allow: the tables are the pairs as they are (no copy of millions of pairs)
            con.execute("CREATE OR REPLACE TEMP TABLE allowed_pairs AS SELECT host, process_identity, protocol, "
                        "remote_ip, remote_port, connections FROM all_pairs LIMIT 0")
            con.execute("CREATE OR REPLACE TEMP TABLE allowed_services AS SELECT host, process_identity, protocol, "
                        "local_port, connections FROM all_services LIMIT 0")
            con.execute("DROP TABLE IF EXISTS pairs")
            con.execute("DROP TABLE IF EXISTS services")
            con.execute("ALTER TABLE all_pairs RENAME TO pairs")
            con.execute("ALTER TABLE all_services RENAME TO services")
            con.execute("CREATE OR REPLACE TEMP VIEW flows AS SELECT * FROM classified")
        else:
            self._apply_allowlist()
        # the hosts each program has pairs on, once: fleet counts of a program's hosts read this, not every pair;
        # and the programs' short names, so a test of names runs once per name, not once per pair
        con.execute("CREATE OR REPLACE TEMP TABLE pair_programs AS SELECT DISTINCT host, process_identity FROM pairs")
        con.execute("CREATE OR REPLACE TEMP TABLE pair_names AS SELECT DISTINCT name FROM pairs")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE listening AS
            SELECT l.*, {NAME_SQL} AS name FROM listeners l
            WHERE NOT EXISTS (SELECT 1 FROM allow a WHERE {self._allowed('l', 'l.local_port', '[]')})""")
        self._queries_table()
        counts = con.execute("""
            SELECT (SELECT coalesce(sum(connections), 0) FROM allowed_pairs)
                   + (SELECT coalesce(sum(connections), 0) FROM allowed_services),
                   (SELECT count(*) FROM listeners) - (SELECT count(*) FROM listening),
                   (SELECT count(*) FROM dns) - (SELECT count(*) FROM queries)""").fetchone() or (0, 0, 0)
        return {"connections": int(counts[0]), "listeners": int(counts[1]), "dns": int(counts[2])}


    def _apply_allowlist(self) -> None:
        """The allowlist is matched per pair (its fields are all pair facts), then everything reads past it."""
        con = self.con
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE allowed_pairs AS
            SELECT DISTINCT p.host, p.process_identity, p.protocol, p.remote_ip, p.remote_port, p.connections
            FROM all_pairs p JOIN peers n ON n.ip = p.remote_ip JOIN allow a ON {self._allowed('p', 'p.remote_port',
                                                                                                'n.allow_nets')}""")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE allowed_services AS
            SELECT DISTINCT s.host, s.process_identity, s.protocol, s.local_port, s.connections
            FROM all_services s JOIN allow a ON {self._allowed('s', 's.local_port', '[]')}""")
        # raw sockets have no port: NULL must match NULL here
        same = ("{0}.host = a.host AND {0}.process_identity = a.process_identity AND {0}.protocol = a.protocol "
                "AND {0}.remote_ip = a.remote_ip AND {0}.remote_port IS NOT DISTINCT FROM a.remote_port")
        con.execute(f"CREATE OR REPLACE TEMP TABLE pairs AS SELECT * FROM all_pairs p ANTI JOIN allowed_pairs a "
                    f"ON {same.format('p')}")
        con.execute("CREATE OR REPLACE TEMP TABLE services AS SELECT * FROM all_services ANTI JOIN allowed_services "
                    "USING (host, process_identity, protocol, local_port)")
        con.execute(f"CREATE OR REPLACE TEMP VIEW flows AS SELECT * FROM classified c ANTI JOIN allowed_pairs a "
                    f"ON {same.format('c')}")

    def _queries_table(self) -> None:
        """DNS rows that survive the allowlist, with each query's registered domain.

        The public-suffix split runs once per distinct name ending (the last labels that decide it: five with
        today's list), and the domain is joined back per distinct query, so a million queries cost one lookup of
        each of their few endings.
        """
        con = self.con
        any_dns = (con.execute("SELECT EXISTS (SELECT 1 FROM dns)").fetchone() or (False,))[0]
        con.execute("CREATE OR REPLACE TEMP TABLE query_names AS SELECT query, array_to_string("
                    "string_split(query, '.')[-?:], '.') AS ending FROM (SELECT DISTINCT query FROM dns)",
                    [deciding_labels() if any_dns else 1])  # no DNS rows: the suffix list is never loaded
        endings = [r[0] for r in con.execute("SELECT DISTINCT ending FROM query_names").fetchall()]
        con.execute("CREATE OR REPLACE TEMP TABLE endings AS SELECT unnest(?::VARCHAR[]) AS ending, "
                    "unnest(?::VARCHAR[]) AS domain", [endings, [registered_domain(e) for e in endings]])
        con.execute("""
            CREATE OR REPLACE TEMP TABLE query_domains AS
            SELECT n.query, e.domain,
                   rtrim(left(n.query, greatest(length(n.query) - length(e.domain), 0)), '.') AS subdomain
            FROM query_names n JOIN endings e USING (ending)""")
        allowed = ""
        if self.config.allow:
            allowed = (f"LEFT JOIN peers p ON p.ip = d.server_ip WHERE NOT EXISTS (SELECT 1 FROM allow a WHERE "
                       f"{self._allowed('d', '53', 'coalesce(p.allow_nets, [])')})")
        # the columns detectors and the findings' facts read (a copy of every column cost a third more)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE queries AS
            SELECT d.host, d.process_identity, d.pid, d.process_name, d.process_path, d.query, d.answers,
                   d.server_ip, d.timestamp, d.source, q.domain, {NAME_SQL} AS name
            FROM dns d JOIN query_domains q USING (query) {allowed}""")
