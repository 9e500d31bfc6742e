"""Fleet generator for the scoring benchmark: N hosts x M rows as connhunt JSONL and Parquet, plus ground truth.

    python bench/score/generate.py --hosts 10000 --rows 10000000 --out /tmp/fleet [--seed 1]

Rows are made set-wise in DuckDB (SQL over range() with hash-based choices, then COPY ... TO), never by a Python
loop per row, so ten million rows take minutes in bounded memory. The benign side comes from catalogue.py, the
planted anomalies and the gap case from plants.py. The same seed gives byte-identical files.

Writes DIR/fleet.jsonl (one record per line with ``kind``; the schema's fields minus process_identity, times ISO
8601 UTC with Z), DIR/connections.parquet, listeners.parquet, dns.parquet (the schema's columns and DuckDB types,
process_identity included), DIR/truth.json and DIR/connhunt.yaml (the fleet's configured resolvers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.score import catalogue as cat  # noqa: E402
from bench.score.plants import WINDOW_S, Host, Planted, Planter  # noqa: E402
from orchestrator.schema import TABLE_COLUMNS, process_identity  # noqa: E402

BASE = datetime(2026, 11, 30, 8, 0, 0)  # first collection window; UTC
WINDOWS = 3
WINDOW_GAP_H = 4
DENSITY_REF = 1000  # catalogue counts are per window at this many rows per host
# Component ids: the first sort key of every row, and how results name where a row came from.
COMPONENTS = ("flow", "mirror", "prometheus", "ansible", "scanner", "web_clients", "tail", "planted", "browser")
COMP = {name: i for i, name in enumerate(COMPONENTS)}
SCAN_PORTS = (22, 80, 443, 445, 135, 139, 3389, 5985, 9100, 9182, 21, 23, 25, 53, 110, 143, 161, 389, 1433, 1521,
              3306, 5432, 5900, 6379, 8080, 8443, 9200, 11211, 27017, 2049)
OPEN_ON = {"linux": (22, 9100), "windows": (135, 445, 9182)}


def _scaled(base: float, f: float, cap: int | None = None) -> int:
    n = max(1, round(base * f))
    return min(n, cap) if cap else n


def _sql_list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


class Generator:
    def __init__(self, hosts: int, rows: int, out: Path, seed: int, threads: int | None = None) -> None:
        self.n, self.m, self.out, self.seed = hosts, rows, out, seed
        self.f = rows / hosts / DENSITY_REF
        self.counts = cat.role_counts(hosts)
        self.tmp = Path(tempfile.mkdtemp(prefix="gen-", dir=out))
        self.con = duckdb.connect(str(self.tmp / "gen.duckdb"))
        self.con.execute(f"SET temp_directory = '{self.tmp / 'spill'}'")
        self.con.execute("SET memory_limit = '2GB'")
        self.con.execute("SET preserve_insertion_order = true")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        s = int(seed)
        # u(...): a uniform [0, 1) from a hash of the arguments and the seed; every choice below is one of these.
        self.con.execute(f"CREATE MACRO u(a, b, c) AS (hash(a, b, c, {s}) % 1000003)::DOUBLE / 1000003")
        self.con.execute(f"CREATE MACRO hh(a, b, c) AS (hash(a, b, c, {s}) >> 1)::BIGINT")
        self.con.execute("CREATE MACRO ts(t0, secs) AS t0 + to_milliseconds(CAST(round(secs * 1000) AS BIGINT))")
        # Zipf-like pick of 0..n-1: log-uniform, so index 0 is the most common and the tail thins as 1/rank.
        self.con.execute("CREATE MACRO zipf(x, n) AS least(n - 1, CAST(floor(exp(x * ln(n + 1))) - 1 AS BIGINT))")
        self.con.execute("CREATE MACRO cdn_ip(i) AS (['13', '18', '23', '34', '52', '104', '142', '151', '185',"
                         " '199'])[(i % 10) + 1] || '.' || ((i * 37) % 256) || '.' || ((i * 101 // 7) % 256) || '.'"
                         " || ((i * 7) % 254 + 1)")
        # rows of one program in one window: the expected count e rounded by chance (so a fleet at low density
        # still has the right total), and at least one in the program's first window so every host that runs it
        # shows it
        self.con.execute("CREATE MACRO count_in(e, h, id, w, first_w) AS greatest(CASE WHEN w = first_w THEN 1"
                         " ELSE 0 END, CAST(floor(e) AS INTEGER) + CASE WHEN u(h, id, w) < e - floor(e) THEN 1"
                         " ELSE 0 END)")
        self.con.execute("CREATE MACRO ephemeral(os, x) AS CASE WHEN os = 'windows' THEN 49152 + x % 16384"
                         " ELSE 32768 + x % 28232 END")
        self.procs: list[cat.Proc] = list(cat.PROCS)

    # ---- hosts and windows
    def make_hosts(self) -> None:
        ranges, lo = [], 0
        for role in cat.ROLES:
            count = self.counts[role.name]
            ranges.append(f"('{role.name}', '{role.os}', '{role.prefix}', {lo}, {lo + count})")
            lo += count
        self.con.execute(f"CREATE TABLE roles(role VARCHAR, os VARCHAR, prefix VARCHAR, lo INTEGER, hi INTEGER);"
                         f" INSERT INTO roles VALUES {', '.join(ranges)}")
        self.con.execute(f"""
            CREATE TABLE hosts AS
            SELECT t.h, r.role, r.os, r.prefix || '-' || lpad(t.h::VARCHAR, 5, '0') AS name,
                   'C.' || substr(md5('{self.seed}-' || t.h), 1, 16) AS host_id,
                   '10.' || (1 + t.h // 65024) || '.' || ((t.h // 254) % 256) || '.' || (t.h % 254 + 1) AS ip,
                   CASE WHEN r.os = 'windows' THEN 'CORP\\u' ELSE 'u' END || lpad(t.h::VARCHAR, 5, '0') AS usr,
                   t.h - r.lo AS ord
            FROM (SELECT range::INTEGER AS h FROM range({self.n})) t JOIN roles r ON t.h >= r.lo AND t.h < r.hi""")
        self.con.execute(f"""
            CREATE TABLE hw AS
            SELECT h.h, h.role, h.os, w.range::INTEGER AS w,
                   ts(TIMESTAMP '{BASE}', w.range * {WINDOW_GAP_H * 3600} + hh(h.h, w.range, 'win') % 60) AS wstart
            FROM hosts h CROSS JOIN range({WINDOWS}) w""")

    def host_objects(self) -> dict[str, list[Host]]:
        windows: dict[int, list[datetime]] = {}
        for h, _w, start in self.con.execute("SELECT h, w, wstart FROM hw ORDER BY h, w").fetchall():
            windows.setdefault(h, []).append(start)
        by_role: dict[str, list[Host]] = {}
        for h, role, os_name, name, ip, usr in self.con.execute(
                "SELECT h, role, os, name, ip, usr FROM hosts ORDER BY h").fetchall():
            by_role.setdefault(role, []).append(Host(h, name, role, os_name, ip, usr, tuple(windows[h])))
        return by_role

    # ---- processes
    def make_procs(self, tail: list[dict[str, Any]], planted: list[cat.Proc]) -> None:
        self.procs += [cat.Proc(t["key"], t["os"], t["name"], t["path"], t["cmd"], t["user"], t["parent"],
                                t["parent_path"]) for t in tail]
        self.procs += planted
        rows = []
        for i, p in enumerate(self.procs):
            digest = hashlib.sha256(f"{p.path or p.name}|{p.os}|{'planted' if p.key.startswith('plant') else 'v1'}"
                                    .encode()).hexdigest()
            rows.append((i, p.key, p.os, p.name, p.path, p.cmd, p.user, p.parent, p.parent_path,
                         process_identity(p.path, p.name, p.os), None if p.name == "System" else digest))
        self.con.execute("CREATE TABLE procs(id INTEGER, key VARCHAR, os VARCHAR, name VARCHAR, path VARCHAR,"
                         " cmd VARCHAR, usr VARCHAR, parent VARCHAR, parent_path VARCHAR, identity VARCHAR,"
                         " sha VARCHAR)")
        self.con.executemany("INSERT INTO procs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self.proc_id = {p.key: i for i, p in enumerate(self.procs)}

    def tail_programs(self) -> list[dict[str, Any]]:
        """The Zipf tail of vendor software: the named vendors, then made-up ones, each on fewer hosts."""
        syll = ("ko", "va", "lex", "tri", "on", "qua", "zen", "mar", "ix", "dal", "pre", "sto", "nu", "vi", "ra")
        out = []
        total = len(cat.TAIL) + cat.TAIL_GENERATED
        for j in range(total):
            if j < len(cat.TAIL):
                vendor, path, port = cat.TAIL[j]
            else:
                k = j * 2654435761 % 3375
                vendor = syll[k % 15] + syll[k // 15 % 15] + syll[k // 225 % 15] + str(j)
                windows = j % 2 == 0
                path = (rf"C:\Program Files\{vendor.title()}\{vendor}svc.exe" if windows
                        else f"/opt/{vendor}/bin/{vendor}d")
                port = cat.ODD_PORTS[j % 3] if j % 5 == 0 else 443
            os_name = "windows" if path.lower().endswith(".exe") else "linux"
            name = path.replace("\\", "/").rsplit("/", 1)[-1]
            hosts = max(1, round(cat.TAIL_SHARE * self.n / (j + 1)))
            first = (45, 64, 66, 69, 74, 81, 94, 107, 159, 173)[j % 10]
            ip = f"{first}.{(j * 53) % 256}.{(j * 29) % 256}.{j % 250 + 2}"
            out.append({"key": f"tail{j}", "os": os_name, "name": name, "path": path,
                        "cmd": f'"{path}" --service' if os_name == "windows" else f"{path} --daemon",
                        "user": cat.SYSTEM if os_name == "windows" else "root",
                        "parent": "services.exe" if os_name == "windows" else "systemd",
                        "parent_path": r"C:\Windows\System32\services.exe" if os_name == "windows"
                        else "/usr/lib/systemd/systemd",
                        "port": port, "ip": ip, "hosts": hosts, "hostname": f"agent.{vendor}.com",
                        "per_window": 1 + j % 3, "vendor": vendor})
        return out

    # ---- connections
    def make_spec(self) -> None:
        self.con.execute("""CREATE TABLE spec(comp TINYINT, h INTEGER, w TINYINT, seq BIGINT, proc INTEGER,
            protocol VARCHAR, remote_ip VARCHAR, remote_port INTEGER, rh INTEGER, mirror BOOLEAN, state VARCHAR,
            first_seen TIMESTAMP, last_seen TIMESTAMP, direction VARCHAR, local_port INTEGER, stdio BOOLEAN,
            remote_hostname VARCHAR)""")
        self.con.execute("CREATE TABLE role_hosts AS SELECT role, ord, h, ip FROM hosts")

    def insert_flows(self) -> None:
        rows = []
        for fid, fl in enumerate(cat.FLOWS):
            kind, _, target = fl.dest.partition(":")
            period = float(fl.pattern.split(":")[1]) if fl.pattern.startswith("period:") else 0.0
            cap = int(WINDOW_S // period) if period else None
            # a schedule keeps its shape at any density; other traffic thins to an expected count per window
            expected = float(max(2, _scaled(fl.per_window, self.f, cap))) if period else fl.per_window * self.f
            rows.append((fid, self.proc_id[fl.proc], list(fl.roles), kind, target if kind == "ip" else None,
                         target if kind == "role" else None, self.counts.get(target, 1) if kind == "role" else 1,
                         fl.port, fl.protocol, expected, fl.pattern.split(":")[0], period,
                         fl.hostname, list(fl.windows), fl.pick, fl.share))
        self.con.execute("CREATE TABLE flows(fid INTEGER, proc INTEGER, roles VARCHAR[], kind VARCHAR, dest_ip VARCHAR,"
                         " dest_role VARCHAR, dest_count INTEGER, port INTEGER, protocol VARCHAR, n DOUBLE,"
                         " pattern VARCHAR, period DOUBLE, hostname VARCHAR, windows INTEGER[], pick VARCHAR,"
                         " share DOUBLE)")
        self.con.executemany("INSERT INTO flows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self.con.execute(f"""
            INSERT INTO spec
            SELECT {COMP['flow']}, x.h, x.w, f.fid * 1000000 + x.k, f.proc, f.protocol,
                   CASE f.kind WHEN 'ip' THEN f.dest_ip WHEN 'cdn' THEN cdn_ip(zipf(u(x.h, x.k, f.fid), {cat.CDN_POOL}))
                        ELSE rt.ip END,
                   f.port, rt.h, f.kind = 'role',
                   CASE WHEN f.protocol = 'udp' THEN 'NONE' WHEN f.pattern = 'long' THEN 'ESTABLISHED'
                        WHEN f.pattern = 'period' THEN 'TIME_WAIT'
                        ELSE (['ESTABLISHED', 'ESTABLISHED', 'TIME_WAIT', 'CLOSE_WAIT'])[hh(x.h, x.k, f.fid) % 4 + 1]
                   END,
                   x.first_seen,
                   CASE f.pattern WHEN 'long' THEN x.wstart + INTERVAL {WINDOW_S} SECOND
                        WHEN 'period' THEN ts(x.first_seen, 0.05 + u(x.h, x.k, 'd') * 0.9)
                        ELSE ts(x.first_seen, 0.05 + u(x.h, x.k, 'd') * 20) END,
                   'outbound', ephemeral(x.os, hh(x.h, x.w * 100000 + x.k, f.fid)),
                   CASE WHEN x.os = 'linux' THEN false END,
                   f.hostname
            FROM (SELECT y.*, CASE y.pattern
                        WHEN 'long' THEN ts(y.wstart, -u(y.h, y.fid, y.w) * 3600)
                        WHEN 'period' THEN ts(y.wstart, u(y.h, y.fid, 'ph') * greatest(1, {WINDOW_S} - y.n * y.period)
                                              + y.k * y.period + (u(y.h, y.k, y.w) - 0.5) * 0.02)
                        ELSE ts(y.wstart, u(y.h, y.k * 3 + y.w, y.fid) * ({WINDOW_S} - 10)) END AS first_seen
                  FROM (SELECT f.fid, f.pattern, f.period, f.n, hw.h, hw.w, hw.os, hw.wstart,
                               unnest(range(count_in(f.n, hw.h, f.fid, hw.w, f.windows[1]))) AS k
                        FROM flows f JOIN hw ON list_contains(f.roles, hw.role) AND list_contains(f.windows, hw.w)
                        WHERE f.share >= 1 OR u(hw.h, f.fid, 'share') < f.share) y) x
            JOIN flows f ON f.fid = x.fid
            LEFT JOIN role_hosts rt ON rt.role = f.dest_role
                 AND rt.ord = (CASE WHEN f.pick = 'host' THEN x.h ELSE hh(x.h, x.w * 100000 + x.k, 'pick') END)
                              % f.dest_count""")

    def fan_out(self, comp: str, source_role: str, proc: str, targets_sql: str, n: int, pattern_sql: str,
                port_sql: str, state_sql: str, dur_sql: str, window_sql: str, mirror: bool,
                ports: int = 1) -> None:
        """One role's hosts connecting to many fleet hosts (scrapers, config management, scanners).

        Targets are dealt round-robin to the sources; each (target, k < n, p < ports) becomes one row in the
        source's collection window(s) chosen by ``window_sql``.
        """
        self.con.execute(f"""
            INSERT INTO spec
            SELECT {COMP[comp]}, s.h, x.w, x.t * 100000 + x.k * 100 + x.p, {self.proc_id[proc]}, 'tcp', x.ip,
                   {port_sql}, x.t, {str(mirror).lower()}, {state_sql}, {pattern_sql}, ts({pattern_sql}, {dur_sql}),
                   'outbound', ephemeral('linux', hh(s.h, x.t * 1000 + x.k * 31 + x.p, x.w)), false, NULL
            FROM (SELECT t.h AS t, t.os AS tos, t.ip, t.ord AS tord, t.h % {self.counts[source_role]} AS src,
                         w.range::INTEGER AS w, k.range::INTEGER AS k, p.range::INTEGER AS p
                  FROM hosts t, range({WINDOWS}) w, range({n}) k, range({ports}) p WHERE {targets_sql}) x
            JOIN hosts s ON s.role = '{source_role}' AND s.ord = x.src AND s.h <> x.t
            JOIN hw ON hw.h = s.h AND hw.w = x.w
            WHERE {window_sql}""")

    def insert_fan_outs(self) -> None:
        scrapes = _scaled(20, self.f, 40)
        # Prometheus: every host every 15 s, node_exporter on Linux, windows_exporter on Windows
        self.fan_out("prometheus", "monitor", "l_prometheus", "true", scrapes,
                     "ts(hw.wstart, (hh(s.h, x.t, 'ph') % 15000) / 1000.0 + x.k * 15"
                     " + (u(x.t, x.k, x.w) - 0.5) * 0.02)",
                     "CASE WHEN x.tos = 'windows' THEN 9182 ELSE 9100 END", "'TIME_WAIT'",
                     "0.02 + u(x.t, x.k, 'd') * 0.2", "true", mirror=True)
        # Ansible over ssh: each Linux host once per window, a minute or two of work
        self.fan_out("ansible", "ansible", "l_ansible_ssh", "t.os = 'linux'", 1,
                     "ts(hw.wstart, 30 + (hh(s.h, x.t, x.w) % 400000) / 1000.0)", "22", "'ESTABLISHED'",
                     "20 + u(x.t, x.w, 'd') * 100", "true", mirror=True)
        # Vulnerability scanner: every host, many ports, once a day (here: scanner i in window i % 3)
        ports = _scaled(30, self.f, len(SCAN_PORTS))
        open_ports = (f"list_contains(CASE WHEN x.tos = 'windows' THEN {list(OPEN_ON['windows'])} "
                      f"ELSE {list(OPEN_ON['linux'])} END, {_sql_list_int(SCAN_PORTS)}[x.p + 1])")
        per_scanner = max(1, -(-self.n // self.counts["scanner"])) * ports
        self.fan_out("scanner", "scanner", "l_nessus", "true", 1,
                     f"ts(hw.wstart, 5 + ((x.tord // {self.counts['scanner']}) * {ports} + x.p) * "
                     f"{(WINDOW_S - 20) / per_scanner:.6f})",
                     f"{_sql_list_int(SCAN_PORTS)}[x.p + 1]",
                     f"CASE WHEN {open_ports} THEN 'TIME_WAIT' WHEN u(x.t, x.p, 'st') < 0.4 THEN 'SYN_SENT' "
                     f"ELSE 'CLOSE' END", "0.01 + u(x.t, x.p, 'd') * 0.05", f"x.w = s.ord % {WINDOWS}",
                     mirror=False, ports=ports)

    def insert_mirrors(self) -> None:
        """An outbound connection to a fleet host's listener is also an inbound connection on that host."""
        lrows = []
        for lid, li in enumerate(cat.LISTENS):
            for role in li.roles:
                lrows.append((lid, self.proc_id[li.proc], role, li.port, li.protocol, li.local_ip))
        self.con.execute("CREATE TABLE listens(lid INTEGER, proc INTEGER, role VARCHAR, port INTEGER,"
                         " protocol VARCHAR, local_ip VARCHAR)")
        self.con.executemany("INSERT INTO listens VALUES (?, ?, ?, ?, ?, ?)", lrows)
        self.con.execute(f"""
            INSERT INTO spec
            SELECT {COMP['mirror']}, s.rh, s.w,
                   s.comp::BIGINT * 1000000000000 + s.h::BIGINT * 10000000 + s.seq % 10000000,
                   l.proc, s.protocol, src.ip, s.local_port, NULL, false, s.state, s.first_seen, s.last_seen,
                   'inbound', s.remote_port, CASE WHEN tgt.os = 'linux' THEN false END, NULL
            FROM spec s JOIN hosts src ON src.h = s.h JOIN hosts tgt ON tgt.h = s.rh
            JOIN listens l ON l.role = tgt.role AND l.port = s.remote_port AND l.protocol = s.protocol
            WHERE s.mirror AND s.protocol = 'tcp'""")

    def insert_web_clients(self) -> None:
        """Public web servers: thousands of outside clients on ephemeral ports, inbound to nginx:443/80."""
        n = _scaled(1000, self.f)
        self.con.execute(f"""
            INSERT INTO spec
            SELECT {COMP['web_clients']}, x.h, x.w, x.k, {self.proc_id['l_nginx']}, 'tcp',
                   (['24', '31', '37', '46', '62', '73', '77', '82', '86', '88', '90', '95', '109', '176', '178',
                     '188', '201', '212', '213', '217'])[c % 20 + 1] || '.' || (c // 20 % 256) || '.'
                     || (c // 5120 % 256) || '.' || (c % 251 + 2),
                   1024 + hh(x.h, x.k, x.w) % 64000, NULL, false,
                   CASE WHEN u(x.h, x.k, 'st') < 0.6 THEN 'ESTABLISHED' ELSE 'TIME_WAIT' END,
                   ts(x.wstart, u(x.h, x.k, x.w) * {WINDOW_S - 10}),
                   ts(x.wstart, u(x.h, x.k, x.w) * {WINDOW_S - 10} + 0.2 + u(x.k, x.h, 'd') * 30),
                   'inbound', CASE WHEN u(x.h, x.k, 'p') < 0.9 THEN 443 ELSE 80 END, false, NULL
            FROM (SELECT hw.h, hw.w, hw.wstart, k.range AS k, zipf(u(hw.h, k.range, 'client'), 2000000) AS c
                  FROM hw, range({n}) k WHERE hw.role = 'web') x""")

    def insert_tail(self, tail: list[dict[str, Any]]) -> None:
        rows = [(j, self.proc_id[t["key"]], t["os"], t["ip"], t["port"], t["hosts"], t["per_window"] * self.f,
                 t["hostname"]) for j, t in enumerate(tail)]
        self.con.execute("CREATE TABLE tail(j INTEGER, proc INTEGER, os VARCHAR, ip VARCHAR, port INTEGER,"
                         " hosts INTEGER, n DOUBLE, hostname VARCHAR)")
        self.con.executemany("INSERT INTO tail VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        os_count = {"windows": sum(self.counts[r] for r in cat.WINDOWS),
                    "linux": sum(self.counts[r] for r in cat.LINUX)}
        self.con.execute(f"""
            INSERT INTO spec
            SELECT {COMP['tail']}, x.h, x.w, x.j * 1000 + x.k, x.proc, 'tcp', x.ip, x.port, NULL, false,
                   CASE WHEN x.k = 0 THEN 'ESTABLISHED' ELSE 'TIME_WAIT' END,
                   ts(x.wstart, u(x.h, x.j * 10 + x.k, x.w) * {WINDOW_S - 10}),
                   ts(x.wstart, u(x.h, x.j * 10 + x.k, x.w) * {WINDOW_S - 10} + 0.5 + u(x.h, x.k, 'd') * 5),
                   'outbound', ephemeral(x.os, hh(x.h, x.j * 10 + x.k, x.w)), CASE WHEN x.os = 'linux' THEN false END,
                   x.hostname
            FROM (SELECT t.*, hw.h, hw.w, hw.wstart, unnest(range(count_in(t.n, hw.h, 1000 + t.j, hw.w, 0))) AS k
                  FROM tail t JOIN hw ON hw.os = t.os
                  WHERE hh(hw.h, t.j, 'tail') % (CASE t.os WHEN 'windows' THEN {os_count['windows']}
                                                  ELSE {os_count['linux']} END) < t.hosts) x""")

    def insert_planted(self, planted: Planted) -> None:
        path = self.tmp / "planted.jsonl"
        with path.open("w") as handle:
            for i, row in enumerate(planted.connections):
                rec = dict(row, comp=COMP["planted"], seq=i, proc=self.proc_id[row["proc"]], rh=None, mirror=False,
                           first_seen=row["first_seen"].isoformat(), last_seen=row["last_seen"].isoformat())
                if rec["local_port"] is None and rec["protocol"] != "raw":
                    rec["local_port"] = 40000 + i % 20000
                handle.write(json.dumps(rec) + "\n")
        cols = ("comp, h, w, seq, proc, protocol, remote_ip, remote_port, rh, mirror, state, first_seen, last_seen,"
                " direction, local_port, stdio, remote_hostname")
        self.con.execute(f"INSERT INTO spec SELECT {cols} FROM read_json('{path}', columns = {{comp: 'TINYINT',"
                         " h: 'INTEGER', w: 'TINYINT', seq: 'BIGINT', proc: 'INTEGER', protocol: 'VARCHAR',"
                         " remote_ip: 'VARCHAR', remote_port: 'INTEGER', rh: 'INTEGER', mirror: 'BOOLEAN',"
                         " state: 'VARCHAR', first_seen: 'TIMESTAMP', last_seen: 'TIMESTAMP', direction: 'VARCHAR',"
                         " local_port: 'INTEGER', stdio: 'BOOLEAN', remote_hostname: 'VARCHAR'})")

    def insert_browsers(self, count: int) -> None:
        """The filler that makes the row count exact: workstation browsers reaching the CDN pool."""
        self.con.execute("CREATE TABLE ws AS SELECT row_number() OVER (ORDER BY h) - 1 AS i, h, os FROM hosts"
                         " WHERE role IN ('winws', 'lnxws')")
        n_ws = self.con.execute("SELECT count(*) FROM ws").fetchone()[0]
        chrome, edge, firefox = (self.proc_id[k] for k in ("w_chrome", "w_edge", "l_firefox"))
        self.con.execute(f"""
            INSERT INTO spec
            SELECT {COMP['browser']}, ws.h, x.w, x.r, CASE WHEN ws.os = 'linux' THEN {firefox}
                        WHEN hh(ws.h, 0, 'browser') % 4 = 0 THEN {edge} ELSE {chrome} END, 'tcp', cdn_ip(x.c),
                   CASE WHEN u(x.r, 0, 'port') < 0.05 THEN 80 ELSE 443 END, NULL, false,
                   (['ESTABLISHED', 'ESTABLISHED', 'TIME_WAIT', 'CLOSE_WAIT'])[hh(x.r, 1, 'st') % 4 + 1],
                   ts(hw.wstart, u(x.r, 2, 't') * {WINDOW_S - 5}), ts(hw.wstart, u(x.r, 2, 't') * {WINDOW_S - 5}
                   + 0.05 + u(x.r, 3, 'd') * 60), 'outbound', ephemeral(ws.os, hh(x.r, 4, 'lp')),
                   CASE WHEN ws.os = 'linux' THEN false END, NULL
            FROM (SELECT range AS r, range % {n_ws} AS i, (range // {n_ws} % {WINDOWS})::INTEGER AS w,
                         zipf(u(range, 5, 'cdn'), {cat.CDN_POOL}) AS c FROM range({count})) x
            JOIN ws ON ws.i = x.i JOIN hw ON hw.h = ws.h AND hw.w = x.w""")

    # ---- listeners and DNS
    def make_listeners(self, planted: Planted) -> None:
        self.con.execute(f"""
            CREATE TABLE lspec AS
            SELECT {COMP['flow']}::TINYINT AS comp, hw.h, hw.w::TINYINT AS w, l.lid::BIGINT AS seq, l.proc, l.protocol,
                   l.local_ip, l.port AS local_port
            FROM listens l JOIN hw ON hw.role = l.role""")
        for i, row in enumerate(planted.listeners):
            self.con.execute("INSERT INTO lspec VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             [COMP["planted"], row["h"], row["w"], i, self.proc_id[row["proc"]], row["protocol"],
                              row["local_ip"], row["local_port"]])

    def make_dns(self, planted: Planted) -> None:
        self.con.execute("""CREATE TABLE dspec(comp TINYINT, h INTEGER, w TINYINT, seq BIGINT, proc INTEGER,
            query VARCHAR, qtype VARCHAR, answers VARCHAR[], response_code VARCHAR, server_ip VARCHAR,
            timestamp TIMESTAMP)""")
        n_dc = self.counts["dc"]
        resolver = f"(SELECT ip FROM role_hosts WHERE role = 'dc' AND ord = hw.h % {n_dc})"
        names = _sql_list(cat.COMMON_DOMAINS)
        n_common = len(cat.COMMON_DOMAINS)
        chrome, edge, firefox = (self.proc_id[k] for k in ("w_chrome", "w_edge", "l_firefox"))
        lookups = _scaled(60, self.f)
        # browsing: index i is CDN address i; the head are household names, the tail CDN-style edge names
        self.con.execute(f"""
            INSERT INTO dspec
            SELECT {COMP['browser']}, hw.h, hw.w, hw.kk, CASE WHEN hw.os = 'linux' THEN {firefox}
                        WHEN hh(hw.h, 0, 'browser') % 4 = 0 THEN {edge} ELSE {chrome} END,
                   CASE WHEN c < {n_common} THEN {names}[c + 1]
                        WHEN c % 3 = 0 THEN 'd' || substr(md5('cf' || c), 1, 13) || '.cloudfront.net'
                        WHEN c % 3 = 1 THEN 'e' || (c * 7 % 9999) || '.dscx.akamaiedge.net'
                        ELSE 'cdn' || c || '.fastly-edge.com' END,
                   'A', [cdn_ip(c)], 'NOERROR', {resolver}, ts(hw.wstart, u(hw.h, hw.kk, hw.w) * {WINDOW_S})
            FROM (SELECT hw.*, zipf(u(hw.h, k.range * 7 + hw.w, 'q'), {cat.CDN_POOL}) AS c, k.range AS kk
                  FROM hw, range({lookups}) k WHERE hw.role IN ('winws', 'lnxws')) hw""")
        # every program that talks to a named vendor endpoint looked the name up once (then cached it)
        self.con.execute(f"""
            INSERT INTO dspec
            SELECT {COMP['flow']}, s.h, min(s.w), min(s.seq), s.proc, s.remote_hostname, 'A', [min(s.remote_ip)],
                   'NOERROR', (SELECT ip FROM role_hosts WHERE role = 'dc' AND ord = s.h % {n_dc}),
                   min(s.first_seen) - INTERVAL 50 MILLISECOND
            FROM spec s WHERE s.remote_hostname IS NOT NULL AND s.comp IN ({COMP['flow']}, {COMP['tail']})
            GROUP BY s.h, s.proc, s.remote_hostname""")
        # Sophos-style reputation lookups: a hex digest as a DNS label on many hosts, through the resolver
        self.con.execute(f"""
            INSERT INTO dspec
            SELECT {COMP['flow']}, hw.h, hw.w, 900000 + k.range, {self.proc_id['w_sophos']},
                   md5(hw.h || '-' || hw.w || '-' || k.range) || '.b.00.s.sophosxl.net', 'A', ['127.0.0.1'],
                   'NOERROR', {resolver}, ts(hw.wstart, u(hw.h, k.range, 'sx') * {WINDOW_S})
            FROM hw, range({_scaled(20, self.f)}) k WHERE hw.role = 'winws' AND u(hw.h, 0, 'sophos') < 0.1""")
        path = self.tmp / "planted_dns.jsonl"
        with path.open("w") as handle:
            for i, row in enumerate(planted.dns):
                handle.write(json.dumps(dict(row, comp=COMP["planted"], seq=i, proc=self.proc_id[row["proc"]],
                                             timestamp=row["timestamp"].isoformat())) + "\n")
        if planted.dns:
            self.con.execute(f"INSERT INTO dspec SELECT comp, h, w, seq, proc, query, qtype, answers, response_code,"
                             f" server_ip, timestamp FROM read_json('{path}', columns = {{comp: 'TINYINT',"
                             " h: 'INTEGER', w: 'TINYINT', seq: 'BIGINT', proc: 'INTEGER', query: 'VARCHAR',"
                             " qtype: 'VARCHAR', answers: 'VARCHAR[]', response_code: 'VARCHAR',"
                             " server_ip: 'VARCHAR', timestamp: 'TIMESTAMP'})")

    # ---- output
    def _process_cols(self) -> dict[str, str]:
        """SQL for the owning-process columns every table shares (p = procs, h = hosts, x = the spec row)."""
        return {
            "pid": "CASE WHEN p.name = 'System' THEN 4 ELSE 400 + hh(x.h, p.id, 'pid') % 60000 END",
            "ppid": "CASE WHEN p.parent IS NULL THEN NULL ELSE 300 + hh(x.h, p.parent, 'pid') % 60000 END",
            "process_name": "p.name", "process_path": "p.path", "process_identity": "p.identity",
            "command_line": "nullif(p.cmd, '')", "username": "replace(p.usr, '{user}', ho.usr)",
            "process_start": f"ts(TIMESTAMP '{BASE}', -86400.0 - hh(x.h, p.id, 'start') % 864000)",
            "parent_name": "p.parent", "parent_path": "p.parent_path", "exe_sha256": "p.sha",
            "host": "ho.name", "host_id": "ho.host_id", "os": "ho.os",
            "collected_at": f"hw.wstart + INTERVAL {WINDOW_S} SECOND", "source": "'velociraptor'",
        }

    def _select(self, table: str, spec: str, extra: dict[str, str], order: str) -> str:
        cols = {**self._process_cols(), **extra}
        exprs = ", ".join(f"CAST({cols[name]} AS {typ}) AS {name}" for name, typ in TABLE_COLUMNS[table])
        return (f"SELECT {exprs} FROM {spec} x JOIN procs p ON p.id = x.proc JOIN hosts ho ON ho.h = x.h"
                f" JOIN hw ON hw.h = x.h AND hw.w = x.w ORDER BY {order}")

    def write(self) -> dict[str, int]:
        conn = self._select("connections", "spec", {
            "protocol": "x.protocol", "family": "'ipv4'", "local_ip": "ho.ip", "local_port": "x.local_port",
            "remote_ip": "x.remote_ip", "remote_port": "x.remote_port", "state": "x.state",
            "first_seen": "x.first_seen", "last_seen": "x.last_seen",
            "observations": "greatest(1, least(60, CAST(epoch(x.last_seen - x.first_seen) // 10 AS INTEGER)))",
            "remote_hostname": "x.remote_hostname", "attributed": "true", "direction": "x.direction",
            "seen_by": "'snapshot'", "attribution": "'pid'", "stdio": "x.stdio"},
            "x.h, x.w, x.comp, x.seq, x.first_seen, x.remote_ip, x.remote_port, x.local_port, x.proc")
        lis = self._select("listeners", "lspec", {
            "protocol": "x.protocol", "family": "'ipv4'", "local_ip": "x.local_ip", "local_port": "x.local_port",
            "first_seen": f"ts(TIMESTAMP '{BASE}', -86400.0 - hh(x.h, p.id, 'start') % 864000 + 2)",
            "last_seen": f"hw.wstart + INTERVAL {WINDOW_S} SECOND", "observations": "1", "attributed": "true"},
            "x.h, x.w, x.comp, x.seq, x.proc, x.local_port, x.protocol")
        dns = self._select("dns", "dspec", {
            "query": "x.query", "qtype": "x.qtype", "answers": "x.answers", "response_code": "x.response_code",
            "server_ip": "x.server_ip", "timestamp": "x.timestamp"},
            "x.h, x.w, x.comp, x.seq, x.timestamp, x.query, x.proc")
        counts = {}
        for table, kind, sql in (("connections", "connection", conn), ("listeners", "listener", lis),
                                 ("dns", "dns", dns)):
            target = self.out / f"{table}.parquet"
            self.con.execute(f"COPY ({sql}) TO '{target}' (FORMAT PARQUET, COMPRESSION ZSTD, ROW_GROUP_SIZE 122880)")
            counts[kind] = self.con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()[0]
            self._write_jsonl(table, kind, target)
        # connections are most of the bytes: move that part into place and append the other two to it
        fleet = self.out / "fleet.jsonl"
        (self.tmp / "connections.jsonl").replace(fleet)
        with fleet.open("ab") as out:
            for table in ("listeners", "dns"):
                part = self.tmp / f"{table}.jsonl"
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out, 16 << 20)
                part.unlink()
        return counts

    def _write_jsonl(self, table: str, kind: str, parquet: Path) -> None:
        """connhunt JSONL from the Parquet just written, so both carry the same rows in the same order."""
        exprs = [f"'{kind}' AS kind"]
        for name, typ in TABLE_COLUMNS[table]:
            if name == "process_identity":
                continue  # the orchestrator derives it
            if typ == "TIMESTAMP":
                exprs.append(f"strftime({name}, '%Y-%m-%dT%H:%M:%S.%gZ') AS {name}")
            else:
                exprs.append(name)
        self.con.execute(f"COPY (SELECT {', '.join(exprs)} FROM read_parquet('{parquet}')) TO"
                         f" '{self.tmp / (table + '.jsonl')}' (FORMAT JSON)")

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _sql_list_int(values: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def lookalikes(tail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The benign programs that look like attacks, by process identity, with why they look suspicious."""
    def ident(key: str) -> str:
        p = cat.PROC_BY_KEY[key]
        return process_identity(p.path, p.name, p.os)

    entries = [
        ("vulnerability_scanner", ["l_nessus"], "fans out to every internal host on many ports once a day; "
                                                "40 % of the probes stay half-open (SYN_SENT)"),
        ("prometheus_scrape", ["l_prometheus"], "one process to every host every 15 s on 9100/9182: fan-out and a "
                                                "metronome"),
        ("exporter_inbound", ["l_nodeexp", "w_winexporter"], "scraped every 15 s: many regular inbound connections"),
        ("ansible_ssh", ["l_ansible_ssh"], "ssh from one management host to every Linux host"),
        ("sshd_inbound", ["l_sshd"], "inbound ssh from the management host on every Linux host"),
        ("cron_curl_poller", ["l_curl_cron"], "curl every 300 s to an internal API: as regular as a beacon"),
        ("python_health_poller", ["l_poller"], "a python interpreter every 60 s to an internal API: a beacon shape"),
        ("backup_agent", ["l_bacula", "w_bacula"], "one long-lived connection to port 9103 from every server"),
        ("nginx_inbound_clients", ["l_nginx"], "thousands of outside clients on ephemeral ports"),
        ("postgres_inbound", ["l_postgres"], "app servers connect in on 5432"),
        ("app_inbound", ["l_java_app", "l_gunicorn"], "nginx and the pollers connect in on 8080"),
        ("dc_inbound", ["w_lsass", "w_system", "w_dns"], "every Windows host reaches the DCs on 88/389/445/53"),
        ("dns_server_forwarding", ["w_dns"], "dns.exe sends port-53 traffic to an outside forwarder (9.9.9.9)"),
        ("sophos_reputation_dns", ["w_sophos"], "32-hex-character DNS labels, many unique subdomains of sophosxl.net"),
        ("bacula_sd_inbound", ["l_bacula_sd"], "every server holds a connection in on 9103"),
    ]
    out = [{"name": name, "process_identity": sorted({ident(k) for k in keys}), "why": why}
           for name, keys, why in entries]
    for t in tail:
        if t["port"] != 443:
            out.append({"name": f"vendor_{t['vendor']}", "process_identity": [process_identity(t["path"], t["name"],
                                                                                                 t["os"])],
                        "remote": f"{t['ip']}:{t['port']}",
                        "why": f"vendor agent on about {t['hosts']} host(s) to its own cloud on port {t['port']}"})
    return out


def generate(hosts: int, rows: int, out: Path, seed: int = 1, threads: int | None = None,
             echo: Any = None) -> dict[str, Any]:
    """Write the fleet into ``out``; returns the truth document (also written to out/truth.json)."""
    say = echo or (lambda _line: None)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    gen = Generator(hosts, rows, out, seed, threads)
    try:
        gen.make_hosts()
        by_role = gen.host_objects()
        planted = Planter(by_role, process_identity, seed).plant_all()
        tail = gen.tail_programs()
        gen.make_procs(tail, planted.procs)
        gen.make_spec()
        gen.insert_flows()
        gen.insert_fan_outs()
        gen.insert_mirrors()
        gen.insert_web_clients()
        gen.insert_tail(tail)
        gen.insert_planted(planted)
        gen.make_listeners(planted)
        gen.make_dns(planted)
        have = sum(gen.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("spec", "lspec", "dspec"))
        filler = rows - have
        if filler < 0:
            raise SystemExit(f"generate: {rows} rows is too few for {hosts} hosts (the fleet's fixed traffic alone is "
                             f"{have} rows); ask for at least {have}")
        gen.insert_browsers(filler)
        say(f"generate: {hosts} hosts, {rows} rows planned in {time.monotonic() - started:.1f} s; writing")
        counts = gen.write()
        by_comp = dict(gen.con.execute("SELECT comp, count(*) FROM spec GROUP BY 1 ORDER BY 1").fetchall())
        resolvers = [h.ip for h in by_role["dc"]]
    finally:
        gen.close()
    truth = {
        "seed": seed, "hosts": hosts, "rows": sum(counts.values()), "rows_by_kind": counts,
        "connections_by_component": {COMPONENTS[c]: n for c, n in by_comp.items()},
        "roles": gen.counts, "windows": [f"{(BASE + timedelta(hours=WINDOW_GAP_H * w)).isoformat()}Z"
                                         for w in range(WINDOWS)],
        "resolvers": resolvers, "planted": planted.truth, "benign": lookalikes(tail) + planted.benign,
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    (out / "connhunt.yaml").write_text("# the fleet's configured resolvers (its domain controllers)\nresolvers: ["
                                       + ", ".join(resolvers) + "]\n")
    say(f"generate: wrote {truth['rows']} rows ({counts}) to {out} in {time.monotonic() - started:.1f} s")
    return truth


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hosts", type=int, required=True)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    args = p.parse_args(argv)
    try:
        generate(args.hosts, args.rows, args.out, args.seed, args.threads, echo=lambda s: print(s, file=sys.stderr))
    except ValueError as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
