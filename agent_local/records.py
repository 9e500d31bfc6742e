"""The kinds of record agent_local writes (connection, listener, dns, health) and their time format.

The field lists mirror orchestrator/schema.py (CONNECTION_COLUMNS minus ``process_identity``, which the orchestrator
derives, and DNS_COLUMNS likewise); they are spelled out here because agent_local must run with psutil alone, so it
cannot import the orchestrator. A test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from agent_local.enrich import ProcessFacts, user_name

if TYPE_CHECKING:
    from agent_local.hostinfo import HostInfo

SOURCE = "agent_local"

CONNECTION_FIELDS: tuple[str, ...] = (
    "host", "host_id", "os", "collected_at", "source", "pid", "ppid", "process_name", "process_path",
    "command_line", "username", "process_start", "parent_name", "parent_path", "exe_sha256", "protocol", "family",
    "local_ip", "local_port", "remote_ip", "remote_port", "state", "first_seen", "last_seen", "observations",
    "remote_hostname", "attributed", "direction", "seen_by", "attribution", "stdio",
)
LISTENER_FIELDS: tuple[str, ...] = (
    "host", "host_id", "os", "collected_at", "source", "pid", "ppid", "process_name", "process_path",
    "command_line", "username", "process_start", "parent_name", "parent_path", "exe_sha256", "protocol", "family",
    "local_ip", "local_port", "first_seen", "last_seen", "observations", "attributed",
)
DNS_FIELDS: tuple[str, ...] = (
    "host", "host_id", "collected_at", "source", "pid", "process_name", "process_path", "query", "qtype", "answers",
    "response_code", "server_ip", "timestamp",
)
HEALTH_FIELDS: tuple[str, ...] = ("host", "source", "collected_at", "check", "count", "message")


_iso_cache: dict[float, str] = {}


def iso(epoch: float | None) -> str | None:
    """ISO 8601 UTC with microseconds and a ``Z``, the one time spelling in agent_local's output.

    Memoised: every record of a tick shares the same first_seen/last_seen/collected_at, and strftime would
    otherwise dominate writing tens of thousands of records.
    """
    if epoch is None:
        return None
    text = _iso_cache.get(epoch)
    if text is None:
        if len(_iso_cache) >= 4096:
            _iso_cache.clear()
        text = datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        _iso_cache[epoch] = text
    return text


def health_record(host: str, collected_at: float, check: str, count: int, message: str) -> dict[str, Any]:
    return {"kind": "health", "host": host, "source": SOURCE, "collected_at": iso(collected_at), "check": check,
            "count": count, "message": message}


_UNATTRIBUTED_PART: dict[str, Any] = {
    "pid": None, "ppid": None, "process_name": None, "process_path": None, "command_line": None, "username": None,
    "process_start": None, "parent_name": None, "parent_path": None, "exe_sha256": None,
}
# id(facts) -> (facts, its process fields): built once per process, not once per socket. The facts object is kept
# in the value so its id cannot be reused while the entry lives.
_process_parts: dict[int, tuple[ProcessFacts, dict[str, Any]]] = {}


def _process_part(facts: ProcessFacts) -> dict[str, Any]:
    cached = _process_parts.get(id(facts))
    if cached is not None and cached[0] is facts:
        return cached[1]
    part = {
        "pid": facts.pid, "ppid": facts.ppid, "process_name": facts.name, "process_path": facts.exe,
        "command_line": facts.command_line, "username": facts.username, "process_start": iso(facts.start_time),
        "parent_name": facts.parent_name, "parent_path": facts.parent_path, "exe_sha256": facts.exe_sha256,
    }
    if len(_process_parts) >= 4096:
        _process_parts.clear()
    _process_parts[id(facts)] = (facts, part)
    return part


def _head(facts: ProcessFacts | None, inode: int, uid: int, base: dict[str, Any], tail: dict[str, Any],
          heads: dict[int, dict[str, Any]], by_user: dict[int, dict[str, Any]],
          unattributed: dict[str, Any]) -> dict[str, Any]:
    """The fields a record shares with the others of its process (or of its user) in a batch, built once each:
    ``base`` + the process's fields + ``tail``; ``unattributed`` where no process and no user is known."""
    if facts is not None:
        head = heads.get(id(facts))
        if head is None:
            head = heads[id(facts)] = {**base, **_process_part(facts), **tail}
        return head
    if inode and uid >= 0:
        # The socket table still says which user owns the socket, even when its process is out of sight.
        head = by_user.get(uid)
        if head is None:
            head = by_user[uid] = {**unattributed, "username": user_name(uid)}
        return head
    return unattributed


# The socket and sampling fields of a connection record, after the host and process ones. Each record is a copy of
# a template that already holds every key (one per process per batch): copying a dict with no deleted keys is one
# C-level clone, and filling in values of keys it has never resizes it: half the time of merging {**head, ...}.
_CONNECTION_TAIL: dict[str, Any] = dict.fromkeys((
    "protocol", "family", "local_ip", "local_port", "remote_ip", "remote_port", "state", "first_seen", "last_seen",
    "observations", "remote_hostname", "attributed", "direction", "seen_by", "attribution", "stdio",
))


def connection_records(host: HostInfo, entries: Iterable[Sequence[Any]], collected_at: float) -> list[dict[str, Any]]:
    """Connection records, one per entry ``[first_seen, last_seen, observations, Observation, tick, direction]``:
    the socket, its owner's facts, which way it goes, and when, how often and how it was seen.

    Built in one loop for a whole tick because a tick can finalise tens of thousands of connections at once:
    the host and process fields are shared and each distinct time is formatted once.
    """
    base = {"kind": "connection", "host": host.host, "host_id": host.host_id, "os": host.os,
            "collected_at": iso(collected_at), "source": SOURCE}
    times: dict[float, str | None] = {}
    templates: dict[int, dict[str, Any]] = {}  # id(facts) -> template
    by_user: dict[int, dict[str, Any]] = {}  # uid -> template of a socket whose process is out of sight
    attributed_tail = {**_CONNECTION_TAIL, "attributed": True}
    unattributed = {**base, **_UNATTRIBUTED_PART, **_CONNECTION_TAIL, "attributed": False}
    out: list[dict[str, Any]] = []
    append = out.append
    for entry in entries:
        first_seen, last_seen, obs = entry[0], entry[1], entry[3]
        facts = obs[1]
        protocol, local_ip, local_port, remote_ip, remote_port, family, state, inode, uid = obs[0]
        template = _head(facts, inode, uid, base, attributed_tail, templates, by_user, unattributed)
        first = times.get(first_seen)
        if first is None:
            first = times[first_seen] = iso(first_seen)
        last = times.get(last_seen)
        if last is None:
            last = times[last_seen] = iso(last_seen)
        record = template.copy()
        record["protocol"] = protocol
        record["family"] = family
        record["local_ip"] = local_ip
        record["local_port"] = local_port
        record["remote_ip"] = remote_ip
        record["remote_port"] = remote_port
        record["state"] = state
        record["first_seen"] = first
        record["last_seen"] = last
        record["observations"] = entry[2]
        record["direction"] = entry[5]
        record["seen_by"] = obs[5]
        record["attribution"] = obs[4]
        record["stdio"] = obs[3]
        append(record)
    return out


def listener_records(host: HostInfo, entries: Iterable[Sequence[Any]], collected_at: float) -> list[dict[str, Any]]:
    """Listener records (exactly LISTENER_FIELDS), one per entry ``[first_seen, last_seen, observations,
    Observation, ...]``: who listens on which protocol, address and port, and since when."""
    base = {"kind": "listener", "host": host.host, "host_id": host.host_id, "os": host.os,
            "collected_at": iso(collected_at), "source": SOURCE}
    heads: dict[int, dict[str, Any]] = {}
    by_user: dict[int, dict[str, Any]] = {}
    unattributed_head = {**base, **_UNATTRIBUTED_PART}
    out: list[dict[str, Any]] = []
    for entry in entries:
        obs = entry[3]
        sock, facts = obs[0], obs[1]
        out.append({**_head(facts, sock.inode, sock.uid, base, {}, heads, by_user, unattributed_head),
                    "protocol": sock.protocol, "family": sock.family, "local_ip": sock.local_ip,
                    "local_port": sock.local_port, "first_seen": iso(entry[0]), "last_seen": iso(entry[1]),
                    "observations": entry[2], "attributed": facts is not None})
    return out
