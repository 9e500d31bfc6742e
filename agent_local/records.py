"""The three kinds of record agent_local writes (connection, dns, health) and their time format.

The field lists mirror orchestrator/schema.py (CONNECTION_COLUMNS minus ``process_identity``, which the orchestrator
derives, and DNS_COLUMNS likewise); they are spelled out here because agent_local must run with psutil alone, so it
cannot import the orchestrator. A test keeps the two in step.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from agent_local.enrich import user_name

if TYPE_CHECKING:
    from agent_local.hostinfo import HostInfo
    from agent_local.snapshot import Observation

SOURCE = "agent_local"

CONNECTION_FIELDS: tuple[str, ...] = (
    "host", "host_id", "os", "collected_at", "source", "pid", "ppid", "process_name", "process_path",
    "command_line", "username", "process_start", "parent_name", "parent_path", "exe_sha256", "protocol", "family",
    "local_ip", "local_port", "remote_ip", "remote_port", "state", "first_seen", "last_seen", "observations",
    "remote_hostname", "attributed",
)
DNS_FIELDS: tuple[str, ...] = (
    "host", "host_id", "collected_at", "source", "pid", "process_name", "process_path", "query", "qtype", "answers",
    "response_code", "server_ip", "timestamp",
)
HEALTH_FIELDS: tuple[str, ...] = ("host", "source", "collected_at", "check", "count", "message")


def iso(epoch: float | None) -> str | None:
    """ISO 8601 UTC with microseconds and a ``Z``, the one time spelling in agent_local's output."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def health_record(host: str, collected_at: float, check: str, count: int, message: str) -> dict[str, Any]:
    return {"kind": "health", "host": host, "source": SOURCE, "collected_at": iso(collected_at), "check": check,
            "count": count, "message": message}


def connection_record(host: HostInfo, obs: Observation, first_seen: float, last_seen: float, observations: int,
                      collected_at: float) -> dict[str, Any]:
    """One connection record: the socket, its owner's facts, and when and how often it was seen."""
    sock = obs.sock
    facts = obs.facts
    if facts is not None:
        pid, ppid, name, path, cmd = facts.pid, facts.ppid, facts.name, facts.exe, facts.command_line
        user, start, parent_name, parent_path = facts.username, iso(facts.start_time), facts.parent_name, \
            facts.parent_path
        sha = facts.exe_sha256
    else:
        pid = ppid = name = path = cmd = start = parent_name = parent_path = sha = None
        # The socket table still says which user owns the socket, even when its process is out of sight.
        user = user_name(sock.uid) if sock.inode and sock.uid >= 0 else None
    return {
        "kind": "connection", "host": host.host, "host_id": host.host_id, "os": host.os,
        "collected_at": iso(collected_at), "source": SOURCE, "pid": pid, "ppid": ppid, "process_name": name,
        "process_path": path, "command_line": cmd, "username": user, "process_start": start,
        "parent_name": parent_name, "parent_path": parent_path, "exe_sha256": sha, "protocol": sock.protocol,
        "family": sock.family, "local_ip": sock.local_ip, "local_port": sock.local_port, "remote_ip": sock.remote_ip,
        "remote_port": sock.remote_port, "state": sock.state, "first_seen": iso(first_seen),
        "last_seen": iso(last_seen), "observations": observations, "remote_hostname": None,
        "attributed": facts is not None,
    }
