"""Direction and listeners with real loopback sockets: a client's end is outbound, the accepted end inbound, and each
listening socket is a listener record of its own across the ticks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import datetime

import psutil
import pytest
from agent_helpers import CHILD_ENV, HOLD_CONNECTION, Listener, one_connection, readline, wait_until

import agent_local
from agent_local import LISTENER_FIELDS, snapshot
from agent_local.direction import INBOUND, OUTBOUND, UNKNOWN, Listening
from agent_local.netfiles import SocketRow


def _row(protocol: str, local: tuple[str, int], remote: tuple[str, int], state: str) -> SocketRow:
    family = "ipv6" if ":" in local[0] else "ipv4"
    return SocketRow(protocol, local[0], local[1], remote[0], remote[1], family, state, 1, 0)


def test_direction_from_the_listeners_of_the_tick():
    listening = Listening([
        _row("tcp", ("0.0.0.0", 22), ("0.0.0.0", 0), "LISTEN"),
        _row("tcp", ("127.0.0.1", 8080), ("0.0.0.0", 0), "LISTEN"),
        _row("tcp", ("::", 443), ("::", 0), "LISTEN"),
        _row("udp", ("0.0.0.0", 443), ("0.0.0.0", 0), "NONE"),
    ])
    cases = [
        # a wildcard listener matches every local address, of either family for ::
        (_row("tcp", ("10.0.0.5", 22), ("198.51.100.23", 40112), "ESTABLISHED"), INBOUND),
        (_row("tcp", ("10.0.0.5", 443), ("198.51.100.23", 40113), "ESTABLISHED"), INBOUND),
        (_row("tcp", ("2001:db8::5", 443), ("2001:db8::9", 40114), "ESTABLISHED"), INBOUND),
        # a listener on one address does not make the same port on another address inbound
        (_row("tcp", ("10.0.0.5", 8080), ("198.51.100.23", 40115), "ESTABLISHED"), OUTBOUND),
        (_row("tcp", ("127.0.0.1", 8080), ("127.0.0.1", 40116), "CLOSE_WAIT"), INBOUND),
        (_row("tcp", ("10.0.0.5", 40117), ("198.51.100.23", 443), "ESTABLISHED"), OUTBOUND),
        # the handshake states say it themselves
        (_row("tcp", ("10.0.0.5", 40118), ("198.51.100.23", 22), "SYN_SENT"), OUTBOUND),
        (_row("tcp", ("10.0.0.5", 9999), ("198.51.100.23", 40119), "SYN_RECV"), INBOUND),
        # UDP: outbound unless the local port is one a socket serves unconnected (QUIC on 443)
        (_row("udp", ("10.0.0.5", 443), ("198.51.100.23", 40120), "NONE"), INBOUND),
        (_row("udp", ("10.0.0.5", 40121), ("198.51.100.53", 53), "NONE"), OUTBOUND),
        # the same port on another protocol is another service
        (_row("tcp", ("10.0.0.5", 40122), ("198.51.100.23", 53), "ESTABLISHED"), OUTBOUND),
        (_row("raw", ("10.0.0.5", 0), ("0.0.0.0", 0), "PROTO_1"), UNKNOWN),
    ]
    assert [(row, listening.direction(row)) for row, _ in cases] == cases


def _t(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _expected_process(pid: int) -> dict:
    proc = psutil.Process(pid)
    return {"pid": pid, "ppid": proc.ppid(), "process_name": proc.name(), "process_path": proc.exe(),
            "username": proc.username(), "attributed": True}


@pytest.mark.parametrize("backend", ["procfs", "psutil"])
def test_client_end_outbound_accepted_end_inbound_and_the_listener(children, backend):
    lst = Listener("0.0.0.0")  # a wildcard listener: the connection's local address is 127.0.0.1
    try:
        child = children.python(HOLD_CONNECTION, str(lst.port))
        port = int(readline(child))
        assert wait_until(lambda: len(lst.accepted) == 1)
        records = snapshot(backend=backend)
    finally:
        lst.close()
    client = one_connection(records, port, lst.port)
    server = one_connection(records, lst.port, port)
    assert (client["pid"], client["direction"], client["seen_by"], client["attribution"]) == (
        child.pid, OUTBOUND, "snapshot", "pid")
    assert (server["pid"], server["direction"], server["seen_by"], server["attribution"]) == (
        os.getpid(), INBOUND, "snapshot", "pid")
    [listener] = [r for r in records if r["kind"] == "listener" and r["local_port"] == lst.port]
    assert set(listener) == {"kind", *LISTENER_FIELDS}
    me = _expected_process(os.getpid())
    assert {k: listener[k] for k in (*me, "protocol", "family", "local_ip", "observations", "source")} == {
        **me, "protocol": "tcp", "family": "ipv4", "local_ip": "0.0.0.0", "observations": 1,
        "source": "agent_local"}
    assert listener["first_seen"] == listener["last_seen"]


def test_udp_bound_socket_is_a_listener_and_its_clients_go_outbound():
    # A UDP service with one unconnected socket, and a per-client connected socket on the same port (as QUIC and
    # DNS servers do): the client's socket goes outbound, the server's connected one inbound.
    def udp(*options: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for option in options:
            sock.setsockopt(socket.SOL_SOCKET, option, 1)
        return sock

    server = udp(socket.SO_REUSEPORT)
    server.bind(("127.0.0.1", 0))
    service_port = server.getsockname()[1]
    client = udp()
    per_client = udp(socket.SO_REUSEPORT)
    try:
        client.connect(("127.0.0.1", service_port))
        client_port = client.getsockname()[1]
        per_client.bind(("127.0.0.1", service_port))
        per_client.connect(("127.0.0.1", client_port))
        records = snapshot()
    finally:
        for sock in (client, per_client, server):
            sock.close()
    [listener] = [r for r in records if r["kind"] == "listener" and r["local_port"] == service_port]
    assert (listener["protocol"], listener["local_ip"], listener["pid"]) == ("udp", "127.0.0.1", os.getpid())
    out = one_connection(records, client_port, service_port)
    assert (out["protocol"], out["direction"], out["state"]) == ("udp", OUTBOUND, "NONE")
    inbound = one_connection(records, service_port, client_port)
    assert (inbound["protocol"], inbound["direction"]) == ("udp", INBOUND)


def test_a_listener_is_one_record_across_the_ticks_and_can_be_turned_off(listener):
    ticks: list[float] = []
    records = list(agent_local.collect(1.0, 0.2, on_tick=lambda elapsed, _n: ticks.append(elapsed)))
    [ours] = [r for r in records if r["kind"] == "listener" and r["local_port"] == listener.port]
    assert ours["observations"] == len(ticks) >= 3
    assert _t(ours["last_seen"]) - _t(ours["first_seen"]) >= 0.5
    assert ours["pid"] == os.getpid()
    off = list(agent_local.collect(0.3, 0.1, listeners=False))
    assert [r for r in off if r["kind"] == "listener"] == []


def test_cli_no_listening_and_the_deprecated_include_listening(listener, tmp_path):
    import json

    def run(*args: str) -> list[dict]:
        out = tmp_path / "out.jsonl"
        done = subprocess.run([sys.executable, "-m", "agent_local", "--duration", "0", "--quiet", "-o", str(out),
                               *args], capture_output=True, text=True, timeout=60, env=CHILD_ENV)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in out.read_text().splitlines()]

    def ours(records: list[dict]) -> list[dict]:
        return [r for r in records if r["kind"] == "listener" and r["local_port"] == listener.port]

    assert len(ours(run())) == 1
    assert len(ours(run("--include-listening"))) == 1  # accepted, changes nothing: listeners are on by default
    assert ours(run("--no-listening")) == []


# Jitter: ticks are due a uniform +/-25 % of the interval after the previous was due, so the gaps vary and average
# the interval (a late tick shortens the next gap, hence the slack on each gap).
def test_ticks_are_jittered():
    ticks: list[float] = []
    list(agent_local.collect(2.0, 0.1, on_tick=lambda elapsed, _n: ticks.append(elapsed), events=False))
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(gaps) >= 12
    assert all(0.03 <= gap <= 0.2 for gap in gaps), gaps
    assert 0.085 <= sum(gaps) / len(gaps) <= 0.115, gaps
    assert max(gaps) - min(gaps) > 0.03, gaps  # not a fixed period
