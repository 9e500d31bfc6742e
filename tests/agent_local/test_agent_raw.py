"""Raw and ICMP sockets (T1095) are reported, with their IP protocol, though psutil cannot list them."""

from __future__ import annotations

import os
import socket

import pytest
from agent_helpers import readline, requires_root

import agent_local

HOLD_RAW_ICMP = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
print("ready", flush=True)
sys.stdin.read()
"""

HOLD_RAW_ICMPV6 = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
print("ready", flush=True)
sys.stdin.read()
"""

HOLD_PING_SOCKET = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
print("ready", flush=True)
sys.stdin.read()
"""


def _raw_of(records: list[dict], pid: int) -> list[dict]:
    return [r for r in records if r["kind"] == "connection" and r["pid"] == pid and r["protocol"] == "raw"]


@requires_root
def test_raw_icmp_socket_reported(children):
    child = children.python(HOLD_RAW_ICMP)
    assert readline(child) == "ready"
    [record] = _raw_of(agent_local.snapshot(), child.pid)
    assert record["state"] == "PROTO_1"
    assert (record["family"], record["remote_ip"], record["remote_port"]) == ("ipv4", "0.0.0.0", 0)
    assert record["attributed"] and record["process_path"] == os.path.realpath(child.args[0])


@requires_root
def test_raw_icmpv6_socket_reported(children):
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6).close()
    except OSError:
        pytest.skip("no IPv6 raw sockets here")
    child = children.python(HOLD_RAW_ICMPV6)
    assert readline(child) == "ready"
    [record] = _raw_of(agent_local.snapshot(), child.pid)
    assert (record["state"], record["family"], record["remote_ip"]) == ("PROTO_58", "ipv6", "::")


def test_unprivileged_ping_socket_reported(children):
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP).close()
    except OSError:
        pytest.skip("ping sockets not allowed for this group (net.ipv4.ping_group_range)")
    child = children.python(HOLD_PING_SOCKET)
    assert readline(child) == "ready"
    [record] = _raw_of(agent_local.snapshot(), child.pid)
    assert record["state"] == "PROTO_1"


@requires_root
def test_raw_socket_survives_sampling(children):
    child = children.python(HOLD_RAW_ICMP)
    assert readline(child) == "ready"
    records = list(agent_local.collect(0.6, 0.2))
    [record] = _raw_of(records, child.pid)
    assert record["observations"] >= 3
