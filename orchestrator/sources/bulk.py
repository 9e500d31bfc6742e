"""Set-wise loading for the formats DuckDB reads itself: Parquet, a connhunt DuckDB file (a hunt's or an export's),
and connhunt's own JSONL on its fast path.

Rows go from the file to the store in SQL, typed by the schema's declared columns, and the normalisation rules of
``orchestrator.schema`` are applied to columns, not rows: the spelling maps (protocol, family, state, direction)
are the schema's own dicts turned into SQL maps, and the rules that need Python (canonical IP text, process
identity) run once per distinct value and are joined back. When a file does not fit this path (a malformed line,
a value the SQL checks reject), ``load`` returns None and the caller reads it with the line-by-line reader, which
names the file and line of the problem: the fast path never decides an error message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from orchestrator.errors import InputError
from orchestrator.schema import (
    _DIRECTIONS,
    _FAMILIES,
    _PROTOCOLS,
    _STATES,
    DIRECTIONS,
    IPV4_TEXT,
    KINDS,
    TABLE_COLUMNS,
    UNKNOWN_PROCESS,
    SchemaError,
    canonical_ip,
    process_identity,
)
from orchestrator.store import Store

PARQUET_MAGIC = b"PAR1"
DUCKDB_MAGIC = b"DUCK"  # at offset 8 of a DuckDB database file
_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT"}
# Columns that decide which table a Parquet file without a ``kind`` column holds.
_KIND_BY_COLUMN = (("check", "health"), ("query", "dns"), ("remote_ip", "connection"), ("local_port", "listener"))


def sniff_bulk(path: Path) -> str | None:
    """"parquet", "duckdb" or None, from the file's first bytes."""
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError:
        return None
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head[8:12] == DUCKDB_MAGIC:
        return "duckdb"
    return None


def _sql_map(mapping: dict[str, str]) -> str:
    """A SQL MAP literal of the schema's own spelling dict (constants, never user input)."""
    def text(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    return "MAP {" + ", ".join(f"{text(k)}: {text(v)}" for k, v in mapping.items()) + "}"


def _lookup(mapping: dict[str, str], column: str, default: str) -> str:
    """SQL for ``mapping.get(lower(trim(column)), default)``."""
    return f"coalesce({_sql_map(mapping)}[lower(trim({column}::VARCHAR))], {default})"


class _Loader:
    """Moves one source relation into the store's table for ``kind`` with one INSERT, normalising on the way."""

    def __init__(self, store: Store, default_source: str) -> None:
        self.store = store
        self.con = store.con
        self.default_source = default_source

    def types(self, relation: str) -> dict[str, str]:
        return {r[0]: r[1] for r in self.con.execute(f"DESCRIBE {relation}").fetchall()}

    def load(self, kind: str, relation: str) -> int:
        table, _ = KINDS[kind]
        types = self.types(relation)
        wanted = TABLE_COLUMNS[table]
        self._column_types(types, wanted)

        def col(name: str, sql_type: str = "VARCHAR") -> str:
            return f'TRY_CAST(s."{name}" AS {sql_type})' if name in types else f"NULL::{sql_type}"

        exprs = {name: col(name, sql_type) for name, sql_type in wanted}
        for name, sql_type in wanted:
            if sql_type == "TIMESTAMP" and name in types:
                exprs[name] = self._time(f's."{name}"', types[name])
        if "host_id" in exprs:
            exprs["host_id"] = f"coalesce({col('host_id')}, {col('host')})"
        exprs["source"] = f"coalesce({col('source')}, '{self.default_source}')"
        ips = {"connection": ("remote_ip", "local_ip"), "listener": ("local_ip",), "dns": ("server_ip",),
               "health": ()}[kind]
        for ip in ips:
            exprs[ip] = f"coalesce(fix_{ip}.fixed, nullif({col(ip)}, ''))" if ip != "remote_ip" else \
                f"coalesce(fix_{ip}.fixed, {col(ip)})"
        if kind in ("connection", "listener"):
            first, collected = exprs["first_seen"], exprs["collected_at"]
            exprs["first_seen"] = f"coalesce({first}, {collected})"
            exprs["last_seen"] = f"coalesce({exprs['last_seen']}, {first}, {collected})"
            exprs["collected_at"] = f"coalesce({collected}, {exprs['last_seen']})"
            exprs["protocol"] = _lookup(_PROTOCOLS, col("protocol"), "NULL")
            ip = exprs["remote_ip" if kind == "connection" else "local_ip"]
            exprs["family"] = _lookup(_FAMILIES, col("family"),
                                      f"CASE WHEN contains(coalesce({ip}, {exprs['local_ip']}, ''), ':') "
                                      "THEN 'ipv6' ELSE 'ipv4' END")
            exprs["observations"] = f"coalesce(nullif({col('observations', 'INTEGER')}, 0), 1)"
            exprs["attributed"] = f"coalesce({col('attributed', 'BOOLEAN')}, coalesce({col('pid', 'BIGINT')}, 0) > 0)"
            exprs["os"] = f"nullif(lower({col('os')}), '')"
            exprs["exe_sha256"] = f"lower({col('exe_sha256')})"
        if kind == "connection":
            state = f"lower(trim(coalesce({col('state')}, '')))"
            exprs["state"] = f"coalesce({_sql_map(_STATES)}[{state}], upper({state}))"
            direction = f"lower(trim(coalesce({col('direction')}, '')))"
            exprs["direction"] = f"coalesce({_sql_map(_DIRECTIONS)}[{direction}], {direction})"
            exprs["seen_by"] = f"coalesce(lower({col('seen_by')}), 'snapshot')"
            exprs["attribution"] = f"coalesce({col('attribution')}, CASE WHEN {exprs['attributed']} THEN 'pid' END)"
        if kind == "dns":
            exprs["timestamp"], exprs["collected_at"] = (f"coalesce({exprs['timestamp']}, {exprs['collected_at']})",
                                                         f"coalesce({exprs['collected_at']}, {exprs['timestamp']})")
            exprs["query"] = f"rtrim(lower(trim({col('query')})), '.')"
            exprs["qtype"] = f"nullif(upper({col('qtype')}), '')"
            exprs["answers"] = "coalesce(s.answers::VARCHAR[], [])" if "answers" in types else "[]::VARCHAR[]"
        if kind == "health":
            exprs["check"] = f"coalesce({col('check')}, 'note')"
            exprs["message"] = f"coalesce({col('message')}, '')"
        joins = [f"LEFT JOIN ip_fix fix_{ip} ON fix_{ip}.raw = {col(ip)}" for ip in ips]
        if kind != "health":
            os_expr = exprs.get("os", "NULL::VARCHAR")
            given = col("process_identity")
            # a given identity is kept (an export's); otherwise it is derived as the schema derives it
            exprs["process_identity"] = f"coalesce({given}, ident.identity, '{UNKNOWN_PROCESS}')"
            joins.append(f"LEFT JOIN identity_of ident ON ident.path IS NOT DISTINCT FROM {col('process_path')} "
                         f"AND ident.name IS NOT DISTINCT FROM {col('process_name')} "
                         f"AND ident.os IS NOT DISTINCT FROM {os_expr}")
            self._identities(relation, col("process_path"), col("process_name"), os_expr)
        self._ip_fixes(relation, [col(ip) for ip in ips])
        casts = [f's."{name}" IS NOT NULL AND {exprs[name] if sql_type == "TIMESTAMP" else col(name, sql_type)} '
                 "IS NULL" for name, sql_type in wanted
                 if name in types and sql_type not in ("VARCHAR", "VARCHAR[]") and types[name] != sql_type]
        # read_json hands a list or an object in a text field over as its JSON text; the row reader refuses it
        casts += [f'(s."{name}" IS NOT NULL AND (starts_with(s."{name}", \'[\') OR starts_with(s."{name}", \'{{\'))'
                  f' AND json_valid(s."{name}"))' for name, sql_type in wanted
                  if sql_type == "VARCHAR" and types.get(name) == "VARCHAR"]
        exprs["__cast_failed"] = " OR ".join(casts) or "false"
        select = ", ".join(f'{expr} AS "{name}"' for name, expr in exprs.items())
        body = f"SELECT {select} FROM {relation} s {' '.join(joins)}"
        self._check(kind, body)
        before = self.store.count(table)
        self.con.execute(f"INSERT INTO {self.store.table(table)} BY NAME SELECT * EXCLUDE (__cast_failed) "
                         f"FROM ({body})")
        return self.store.count(table) - before

    @staticmethod
    def _column_types(types: dict[str, str], wanted: tuple[tuple[str, str], ...]) -> None:
        """A column of the wrong shape (a list where text belongs) must not be cast into a silent NULL."""
        for name, sql_type in wanted:
            found = types.get(name)
            if found is None:
                continue
            if sql_type == "VARCHAR[]" and not found.endswith("[]"):
                raise _NotBulk(f"column {name} is {found}, not a list")
            if sql_type == "VARCHAR" and (found.endswith("[]") or found.startswith(("STRUCT", "MAP", "JSON"))):
                raise _NotBulk(f"column {name} is {found}")

    @staticmethod
    def _time(column: str, found: str) -> str:
        # ISO text with or without a zone, or a TIMESTAMP(TZ) column: UTC, naive, like schema.parse_time
        if found.startswith("TIMESTAMP"):
            return f"timezone('UTC', {column}::TIMESTAMPTZ)"
        return f"timezone('UTC', TRY_CAST(replace({column}::VARCHAR, ' UTC', '+00:00') AS TIMESTAMPTZ))"

    def _check(self, kind: str, body: str) -> None:
        """Anything the row-wise normaliser would reject sends the file to it, which says where and why: required
        fields, spellings and ranges, and any value a cast turned into NULL."""
        checks = {"connection": "host IS NULL OR host = '' OR protocol IS NULL OR remote_ip IS NULL OR remote_ip = '' "
                                "OR (protocol <> 'raw' AND remote_port IS NULL) OR remote_port NOT BETWEEN 0 AND 65535 "
                                f"OR local_port NOT BETWEEN 0 AND 65535 OR direction NOT IN {tuple(DIRECTIONS)} "
                                "OR seen_by NOT IN ('snapshot', 'event')",
                  "listener": "host IS NULL OR host = '' OR protocol IS NULL OR local_port NOT BETWEEN 0 AND 65535",
                  "dns": "host IS NULL OR host = '' OR query IS NULL OR query = ''",
                  "health": "false"}[kind]
        bad = self.con.execute(f"SELECT count(*) FROM ({body}) WHERE __cast_failed OR {checks}").fetchone()
        if bad and bad[0]:
            raise _NotBulk(f"{bad[0]} row(s) need the row-wise reader")

    def _ip_fixes(self, relation: str, columns: list[str]) -> None:
        """IP text in canonical form, computed once per distinct value (most are canonical already)."""
        fixes: dict[str, str | None] = {}
        if columns:
            union = " UNION ".join(f"SELECT DISTINCT {c} AS ip FROM {relation} s" for c in columns)
            for (value,) in self.con.execute(f"SELECT ip FROM ({union}) WHERE ip IS NOT NULL").fetchall():
                try:
                    fixed = canonical_ip(value)
                except SchemaError as exc:
                    raise _NotBulk(str(exc)) from None
                if fixed != value:
                    fixes[value] = fixed or None
        self.con.execute("CREATE OR REPLACE TEMP TABLE ip_fix AS SELECT unnest(?::VARCHAR[]) AS raw, "
                         "unnest(?::VARCHAR[]) AS fixed", [list(fixes), list(fixes.values())])

    def _identities(self, relation: str, path: str, name: str, os_expr: str) -> None:
        """process_identity from (path, name, os), once per distinct combination (schema.process_identity)."""
        combos = self.con.execute(f"SELECT DISTINCT {path}, {name}, {os_expr} FROM {relation} s").fetchall()
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE identity_of AS SELECT unnest(?::VARCHAR[]) AS path, "
            "unnest(?::VARCHAR[]) AS name, unnest(?::VARCHAR[]) AS os, unnest(?::VARCHAR[]) AS identity",
            [[c[0] for c in combos], [c[1] for c in combos], [c[2] for c in combos],
             [process_identity(c[0], c[1], c[2]) for c in combos]])


class _NotBulk(Exception):
    """The file is valid for the row-wise reader to judge, not for this path."""


def load(path: Path, store: Store, fmt: str) -> dict[str, int] | None:
    """Load ``path`` (parquet, duckdb or jsonl) into ``store`` set-wise: rows per kind, or None to fall back to
    the row-wise reader (JSONL only; a broken Parquet or DuckDB file is an InputError naming it)."""
    loader = _Loader(store, default_source={"jsonl": "jsonl"}.get(fmt, fmt))
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        counts = _load(loader, path, fmt)
    except _NotBulk:
        con.execute("ROLLBACK")
        con.execute("DROP TABLE IF EXISTS bulk_raw")
        if fmt == "jsonl":
            return None
        raise InputError(f"{path}: rows that do not fit the schema") from None
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        con.execute("DROP TABLE IF EXISTS bulk_raw")
        if fmt == "jsonl":
            return None
        raise InputError(f"{path}: cannot read as {fmt}: {str(exc).splitlines()[0]}") from None
    con.execute("COMMIT")
    con.execute("DROP TABLE IF EXISTS bulk_raw")
    return counts


def _load(loader: _Loader, path: Path, fmt: str) -> dict[str, int]:
    con = loader.con
    counts = dict.fromkeys(KINDS, 0)
    if fmt == "duckdb":
        con.execute("ATTACH ? AS bulk_src (READ_ONLY)", [str(path)])
        try:
            tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                                                "'bulk_src'").fetchall()}
            for kind, (table, _) in KINDS.items():
                if table in tables:
                    counts[kind] = loader.load(kind, f"bulk_src.main.{table}")
        finally:
            con.execute("DETACH bulk_src")
        if not any(counts.values()) and not tables & {t for t, _ in KINDS.values()}:
            raise InputError(f"{path}: a DuckDB file without connhunt tables")
        return counts
    if fmt == "parquet":
        con.execute(f"CREATE OR REPLACE TEMP VIEW bulk_src AS SELECT * FROM read_parquet('{_quote(path)}')")
    else:
        # One pass over the text into columns; the checks and the insert then read columns, not JSON again.
        # The declared columns of every kind, so a kind that first appears deep in the file is not missed by
        # read_json's sampling, and a value of the wrong type fails here (and goes to the located reader).
        con.execute(f"CREATE OR REPLACE TEMP TABLE bulk_raw AS SELECT * FROM read_json('{_quote(path)}', "
                    f"format = 'newline_delimited', maximum_object_size = 67108864, columns = {_JSON_COLUMNS})")
        con.execute("CREATE OR REPLACE TEMP VIEW bulk_src AS SELECT * FROM bulk_raw")
    present = loader.types("bulk_src")
    if "kind" in present:
        kinds = [r[0] for r in con.execute("SELECT DISTINCT coalesce(kind, 'connection') FROM bulk_src").fetchall()]
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise _NotBulk(f"unknown kind(s) {sorted(unknown)}")
        for kind in kinds:
            con.execute("CREATE OR REPLACE TEMP VIEW bulk_kind AS SELECT * FROM bulk_src "
                    f"WHERE coalesce(kind, 'connection') = '{kind}'")
            counts[kind] = loader.load(kind, "bulk_kind")
    else:
        kind = next((k for column, k in _KIND_BY_COLUMN if column in present), None)
        if kind is None:
            raise _NotBulk("no column tells which kind of record this is")
        if fmt == "parquet" and _in_shape(loader, kind, present):
            # already the schema's exact columns and spellings (connhunt export, another engine's output):
            # read in place, so ten million rows cost no copy and no memory of their own
            loader.store.attach_parquet(KINDS[kind][0], path)
            row = con.execute("SELECT count(*) FROM bulk_src").fetchone()
            counts[kind] = int(row[0]) if row else 0
        else:
            counts[kind] = loader.load(kind, "bulk_src")
    return counts


def _json_columns() -> str:
    """A read_json ``columns`` struct: every declared column of every kind, plus ``kind``; times with their zone."""
    merged: dict[str, str] = {"kind": "VARCHAR"}
    for columns in TABLE_COLUMNS.values():
        for name, sql_type in columns:
            merged.setdefault(name, "TIMESTAMPTZ" if sql_type == "TIMESTAMP" else sql_type)
    return "{" + ", ".join(f"'{name}': '{sql_type}'" for name, sql_type in merged.items()) + "}"


_JSON_COLUMNS = _json_columns()
_SHAPE_CHECKS = {
    "connection": f"""host IS NULL OR host = '' OR host_id IS NULL OR process_identity IS NULL
        OR protocol IS NULL OR protocol NOT IN ('tcp', 'udp', 'raw') OR family NOT IN ('ipv4', 'ipv6')
        OR direction IS NULL OR direction NOT IN {tuple(DIRECTIONS)} OR seen_by NOT IN ('snapshot', 'event')
        OR remote_ip IS NULL OR (protocol <> 'raw' AND remote_port IS NULL)
        OR remote_port NOT BETWEEN 0 AND 65535 OR local_port NOT BETWEEN 0 AND 65535
        OR state IS NULL OR observations IS NULL OR attributed IS NULL""",
    "listener": "host IS NULL OR host = '' OR process_identity IS NULL OR protocol NOT IN ('tcp', 'udp', 'raw') "
                "OR family NOT IN ('ipv4', 'ipv6') OR local_port NOT BETWEEN 0 AND 65535",
    "dns": "host IS NULL OR host = '' OR process_identity IS NULL OR query IS NULL OR query = '' "
           "OR query <> rtrim(lower(trim(query)), '.')",
    "health": "false",
}


def _in_shape(loader: _Loader, kind: str, present: dict[str, str]) -> bool:
    """The file has exactly the table's declared columns and types, and every value is spelled the way the
    normalisers spell it (one scan of the row rules, one of the distinct spellings)."""
    table, _ = KINDS[kind]
    if present != dict(TABLE_COLUMNS[table]):
        return False
    bad = loader.con.execute(f"SELECT count(*) FROM bulk_src WHERE {_SHAPE_CHECKS[kind]}").fetchone()
    if bad and bad[0]:
        return False
    ip_columns = {"connection": ("remote_ip", "local_ip"), "listener": ("local_ip",), "dns": ("server_ip",),
                  "health": ()}[kind]
    # spellings tested once per distinct value, all in one more scan: address text (IPv4 by its spelling, IPv6
    # by canonical_ip) and letter case. As filters over lists: DuckDB would push a WHERE below the DISTINCT
    # onto every row.
    lists = [f"list_filter(list(DISTINCT {c}), lambda v: contains(v, ':') OR NOT regexp_full_match(v, "
             f"'{IPV4_TEXT}'))" for c in ip_columns]
    if kind == "connection":
        lists += ["list_filter(list(DISTINCT state), lambda v: v <> upper(v))",
                  "list_filter(list(DISTINCT exe_sha256), lambda v: v <> lower(v))",
                  "list_filter(list(DISTINCT os), lambda v: v <> lower(v))"]
    if not lists:
        return True
    row = loader.con.execute(f"SELECT {', '.join(lists)} FROM bulk_src").fetchone() or ()
    odd_case = row[len(ip_columns):]
    if any(odd_case):
        return False
    for values in row[:len(ip_columns)]:
        for value in values or []:
            if ":" not in value:
                return False
            try:
                if canonical_ip(value) != value:
                    return False
            except SchemaError:
                return False
    return True


def export(store: Store, directory: Path) -> dict[str, Path]:
    """Write every non-empty table of ``store`` as ``directory/<table>.parquet``; returns what was written."""
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for table, _ in KINDS.values():
        if store.count(table):
            target = directory / f"{table}.parquet"
            store.con.execute(f"COPY (SELECT * FROM {table}) TO '{_quote(target)}' (FORMAT parquet, "
                              "COMPRESSION zstd)")
            written[table] = target
    return written


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def describe(counts: dict[str, int]) -> dict[str, Any]:
    return {k: v for k, v in counts.items() if v}
