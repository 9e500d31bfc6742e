"""Reads abuse.ch Feodo Tracker's botnet C2 blocklist CSV (``ipblocklist.csv``).

Layout (https://feodotracker.abuse.ch/blocklist/): a ``#`` banner, then the header row
``"first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"`` and one quoted row per C2 server.
The plain ``ipblocklist.txt`` is a one-address-per-line list and is read by ``orchestrator.intel.plain``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from orchestrator.intel.abusech import csv_rows
from orchestrator.intel.model import IocRow, Notes, address_kind, ioc_row
from orchestrator.schema import SchemaError

HEADER = ("first_seen_utc", "dst_ip")
FORMAT = "feodo-csv"


def read_feodo_csv(path: Path, notes: Notes) -> Iterator[IocRow]:
    for number, row in csv_rows(path, HEADER):
        try:
            ip = row.get("dst_ip") or ""
            port = row.get("dst_port")
            status = row.get("c2_status")
            yield ioc_row(address_kind(ip), ip, port=int(port) if port and port.isascii() and port.isdigit() else None,
                          source_file=str(path), source_format=FORMAT, source_line=number, name=row.get("malware"),
                          description="botnet C2 server", first_seen=row.get("first_seen_utc"),
                          last_seen=row.get("last_online"), tags=[f"c2_status:{status}"] if status else [])
        except SchemaError as exc:
            notes.skip(f"{path}:{number}", str(exc).split(":", 1)[0])
