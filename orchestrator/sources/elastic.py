"""Reads Elastic Defend / Elastic Endpoint network and DNS events (ECS documents) into schema rows.

Documents come as NDJSON (one ``_source`` per line, as Kibana and ``elasticdump`` export them, or one hit
``{"_index", "_id", "_source"}`` per line), a JSON array of them, or Elasticsearch search/scroll API responses
(``{"_scroll_id", "hits": {"hits": [{"_source": {...}}]}}``), one per line or one pretty-printed document. Fields
are ECS (elastic/endpoint-package, custom_documentation/network/*): ``event.category: network``,
``event.action`` connection_attempted (this host connecting out) / connection_accepted (a client reaching one of
its listeners) / lookup_result (DNS), ``network.direction`` egress/ingress (outgoing/incoming in older agents),
``source.*``/``destination.*`` (ECS: the source is the side that initiated), ``process.*``, ``host.*``,
``user.*``, ``dns.question.name``, ``dns.resolved_ip``. Keys may be nested objects or flattened dotted names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.schema import SchemaError, normalise_connection, normalise_dns
from orchestrator.sources.base import Health, OnSkip, Record, windows_basename
from orchestrator.sources.export import field, first_record, read_export
from orchestrator.sources.sysmon import ip_answers

SOURCE = "elastic"
NAME = "elastic"  # --input-format
_OUTBOUND = {"egress", "outgoing", "outbound"}
_INBOUND = {"ingress", "incoming", "inbound"}
# The start of a connection is read; its end (disconnect_received, connection_closed) is the same connection again.
_STARTS = {"connection_attempted": "outbound", "connection_accepted": "inbound"}
_ENDS = {"disconnect_received", "connection_closed", "disconnect"}
_DNS_ACTIONS = {"lookup_result", "lookup_requested", "dns_query", "dns_request"}


def sniff(first: Any) -> bool:
    doc = _first_doc(first)
    return isinstance(doc, Mapping) and field(doc, "event.category") is not None and (
        field(doc, "ecs.version") is not None or field(doc, "agent.type") is not None
        or field(doc, "event.module") is not None)


def _first_doc(first: Any) -> Any:
    return _source(first_record(first, unwrap))


def unwrap(value: Any) -> list[Any] | None:
    """The hits of a search/scroll response; None when ``value`` is one document (or one hit)."""
    if not isinstance(value, Mapping):
        return None
    hits = value.get("hits")
    if isinstance(hits, Mapping) and "hits" in hits:
        if not isinstance(hits["hits"], list):
            raise SchemaError("'hits.hits' must be a list")
        return hits["hits"]
    return None


def _source(item: Any) -> Any:
    if isinstance(item, Mapping) and isinstance(item.get("_source"), Mapping):
        return item["_source"]
    return item


def read_elastic(path: Path, *, skip_bad: bool = False, on_skip: OnSkip = None) -> Iterator[Record]:
    """Yield (kind, schema row) for each network connection and DNS lookup of an Elastic export."""
    return read_export(path, source=SOURCE, unwrap=unwrap, convert=convert, skip_bad=skip_bad, on_skip=on_skip)


def convert(item: Any, health: Health) -> Iterable[Record]:
    doc = _source(item)
    if not isinstance(doc, Mapping):
        raise SchemaError(f"expected a document object, got {type(doc).__name__}")
    host = _str(field(doc, "host.name")) or _str(field(doc, "host.hostname"))
    if not host:
        raise SchemaError("no host.name: the document names no host")
    categories = _list(field(doc, "event.category"))
    action = (_str(field(doc, "event.action")) or "").lower()
    if "network" not in categories and not field(doc, "dns.question.name"):
        health.note(host, "elastic_other_events", "events outside event.category network not read")
        return []
    if field(doc, "dns.question.name") or action in _DNS_ACTIONS:
        if action == "lookup_requested":
            health.note(host, "elastic_dns_requests", "DNS lookup_requested events not read (lookup_result carries "
                                                      "the same question with its answers)")
            return []
        return [_dns(doc, host)]
    if action in _ENDS:
        health.note(host, "elastic_connection_ends", "connection end events not read (the start was read)")
        return []
    return [_connection(doc, host, action)]


def _str(value: Any) -> str | None:
    if isinstance(value, list):  # ECS allows an array for any field; the first value names it
        value = value[0] if value else None
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        raise SchemaError("expected a value, got an object")
    return str(value)


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [str(v).lower() for v in values if not isinstance(v, (Mapping, list))]


def _process(doc: Mapping[str, Any], host: str) -> dict[str, Any]:
    executable = _str(field(doc, "process.executable"))
    user, domain = _str(field(doc, "user.name")), _str(field(doc, "user.domain"))
    os_type = (_str(field(doc, "host.os.type")) or _str(field(doc, "host.os.family")) or "").lower() or None
    parent = _str(field(doc, "process.parent.executable"))
    return {
        "host": host, "host_id": _str(field(doc, "host.id")) or host, "source": SOURCE, "os": os_type,
        "collected_at": _str(field(doc, "@timestamp")), "first_seen": _str(field(doc, "@timestamp")),
        "pid": _str(field(doc, "process.pid")), "ppid": _str(field(doc, "process.parent.pid")),
        "process_name": _str(field(doc, "process.name")) or windows_basename(executable),
        "process_path": executable, "command_line": _str(field(doc, "process.command_line")),
        "username": f"{domain}\\{user}" if domain and user and os_type == "windows" else user,
        "process_start": _str(field(doc, "process.start")), "parent_path": parent,
        "parent_name": _str(field(doc, "process.parent.name")) or windows_basename(parent),
        "exe_sha256": _str(field(doc, "process.hash.sha256")),
    }


def _connection(doc: Mapping[str, Any], host: str, action: str) -> Record:
    direction_text = (_str(field(doc, "network.direction")) or "").lower()
    if direction_text in _OUTBOUND:
        direction = "outbound"
    elif direction_text in _INBOUND:
        direction = "inbound"
    else:
        direction = _STARTS.get(action, "unknown")
    source = (_str(field(doc, "source.ip")), _str(field(doc, "source.port")))
    destination = (_str(field(doc, "destination.ip")), _str(field(doc, "destination.port")))
    # ECS's source initiated the connection: for an accepted one the client is the source and this host the
    # destination, so local and remote swap.
    local, remote = (destination, source) if direction == "inbound" else (source, destination)
    transport = _str(field(doc, "network.transport")) or _str(field(doc, "network.protocol"))
    outcome = (_str(field(doc, "event.outcome")) or "").lower()
    protocol = (transport or "").lower()
    state = "NONE"
    if protocol == "tcp":
        # event.outcome says whether the handshake completed; a failed attempt is half-open (SYN_SENT)
        state = {"success": "ESTABLISHED", "failure": "SYN_SENT"}.get(outcome, "NONE")
    record = {**_process(doc, host), "protocol": transport, "local_ip": local[0], "local_port": local[1],
              "remote_ip": remote[0], "remote_port": remote[1], "direction": direction, "state": state,
              "remote_hostname": _str(field(doc, "destination.domain")) if direction != "inbound" else None,
              "seen_by": "event"}
    return "connection", normalise_connection(record)


def _dns(doc: Mapping[str, Any], host: str) -> Record:
    process = _process(doc, host)
    answers = field(doc, "dns.resolved_ip")
    if answers is None:
        answers = [a.get("data") for a in _as_list(field(doc, "dns.answers")) if isinstance(a, Mapping)]
    server = _str(field(doc, "destination.ip")) if _str(field(doc, "destination.port")) == "53" else None
    record = {**{k: process[k] for k in ("host", "host_id", "source", "collected_at", "pid", "process_name",
                                         "process_path")},
              "query": _str(field(doc, "dns.question.name")), "qtype": _str(field(doc, "dns.question.type")),
              "answers": ip_answers(_as_list(answers)), "response_code": _str(field(doc, "dns.response_code")),
              "server_ip": server, "timestamp": process["first_seen"]}
    return "dns", normalise_dns(record)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
