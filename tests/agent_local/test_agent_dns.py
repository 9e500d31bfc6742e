"""--dns: a query a child sends to a nameserver on UDP/53 is captured, answered, and tied to the child's pid."""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time

import pytest
from agent_helpers import readline, requires_root

import agent_local

dns = pytest.importorskip("dns.message")

# Sends one A query from its own socket (kept open afterwards, as a resolver's would be for a moment), says "sent".
QUERY = """
import socket, sys, dns.message, dns.query
server, name = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
answer = dns.query.udp(dns.message.make_query(name, "A"), server, port=53, timeout=5, sock=s)
print("sent", answer.answer[0][0].to_text() if answer.answer else "-", flush=True)
sys.stdin.read()
"""

TCP_QUERY = """
import socket, sys, dns.message, dns.query
server, name = sys.argv[1], sys.argv[2]
s = socket.create_connection((server, 53))
answer = dns.query.tcp(dns.message.make_query(name, "TXT"), server, port=53, timeout=5, sock=s)
print("sent", flush=True)
sys.stdin.read()
"""


class Nameserver:
    """A tiny authoritative server on <random 127.x.y.z>:53 (UDP and TCP) answering every A query with 192.0.2.7."""

    def __init__(self) -> None:
        self.ip = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.udp.bind((self.ip, 53))
            self.tcp.bind((self.ip, 53))
        except OSError as exc:
            self.close()
            pytest.skip(f"cannot bind {self.ip}:53: {exc}")
        self.tcp.listen(8)
        self.udp.settimeout(0.1)
        self.tcp.settimeout(0.1)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._serve_tcp, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _answer(self, wire: bytes) -> bytes:
        import dns.rrset

        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        question = query.question[0]
        if dns.rdatatype.to_text(question.rdtype) == "A":
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", "192.0.2.7"))
        else:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "TXT", '"hello"'))
        return response.to_wire()

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.udp.sendto(self._answer(wire), peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                try:
                    size = int.from_bytes(conn.recv(2), "big")
                    wire = b""
                    for _ in range(64):  # bounded
                        if len(wire) >= size:
                            break
                        wire += conn.recv(size - len(wire))
                    reply = self._answer(wire)
                    conn.sendall(len(reply).to_bytes(2, "big") + reply)
                except OSError:
                    pass

    def close(self) -> None:
        if hasattr(self, "_stop"):
            self._stop.set()
            for thread in self._threads:
                thread.join(5)
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def nameserver():
    server = Nameserver()
    try:
        yield server
    finally:
        server.close()


class Collecting:
    """agent_local.collect(dns=True) running in a thread until stopped."""

    def __init__(self, **kwargs) -> None:
        self.stop = threading.Event()
        self.ticked = threading.Event()
        self.records: list[dict] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, kwargs=kwargs, daemon=True)
        self._thread.start()

    def _run(self, **kwargs) -> None:
        try:
            for record in agent_local.collect(60, 0.2, dns=True, stop=self.stop,
                                              on_tick=lambda *_: self.ticked.set(), **kwargs):
                self.records.append(record)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            self.error = exc
            self.ticked.set()

    def finish(self) -> list[dict]:
        self.stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.records


@requires_root
def test_dns_query_attributed_to_the_sending_pid(children, nameserver):
    name = f"beacon-{os.getpid()}.connhunt.test"
    run = Collecting()
    try:
        assert run.ticked.wait(15)
        child = children.python(QUERY, nameserver.ip, name)
        assert readline(child) == "sent 192.0.2.7"
    finally:
        records = run.finish()
    found = [r for r in records if r["kind"] == "dns" and r["query"] == name]
    assert len(found) == 1, [r for r in records if r["kind"] != "connection"]
    record = found[0]
    assert record["pid"] == child.pid
    assert record["process_path"] == os.path.realpath(child.args[0])
    assert (record["qtype"], record["answers"], record["response_code"]) == ("A", ["192.0.2.7"], "NOERROR")
    assert record["server_ip"] == nameserver.ip
    assert set(record) == {"kind", *agent_local.DNS_FIELDS}
    from orchestrator.schema import normalise_dns

    assert normalise_dns(record)["query"] == name.lower()


@requires_root
def test_dns_over_tcp_captured(children, nameserver):
    name = f"tcp-{os.getpid()}.connhunt.test"
    run = Collecting()
    try:
        assert run.ticked.wait(15)
        child = children.python(TCP_QUERY, nameserver.ip, name)
        assert readline(child) == "sent"
    finally:
        records = run.finish()
    [record] = [r for r in records if r["kind"] == "dns" and r["query"] == name]
    assert (record["qtype"], record["answers"]) == ("TXT", ['"hello"'])
    assert record["pid"] == child.pid


NS_SERVER = """
import socket, sys, dns.message, dns.rrset
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
s.settimeout(20)
print("ready", flush=True)
try:
    while True:
        wire, peer = s.recvfrom(4096)
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.9"))
        s.sendto(response.to_wire(), peer)
except socket.timeout:
    pass
"""

NS_CLIENT = """
import socket, sys, time, dns.message, dns.query
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
dns.query.udp(dns.message.make_query(sys.argv[3], "A"), sys.argv[2], port=53, timeout=5, sock=s)
print("sent", flush=True)
time.sleep(2)
"""


@pytest.mark.netns
@requires_root
def test_dns_over_a_veth_between_namespaces(children, tmp_path):
    """The lab's shape: collector and client in one namespace, the nameserver in another, across a veth pair."""
    import shutil
    import subprocess
    import sys

    from agent_helpers import CHILD_ENV, REPO

    if shutil.which("ip") is None:
        pytest.skip("needs iproute2")
    tag = f"{os.getpid() % 100000}"
    ns_a, ns_b, veth_a, veth_b = f"cha{tag}", f"chb{tag}", f"cha{tag}v", f"chb{tag}v"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)

    try:
        ip("netns", "add", ns_a)
        ip("netns", "add", ns_b)
        ip("link", "add", veth_a, "type", "veth", "peer", "name", veth_b)
        ip("link", "set", veth_a, "netns", ns_a)
        ip("link", "set", veth_b, "netns", ns_b)
        ip("-n", ns_a, "addr", "add", "10.77.0.1/24", "dev", veth_a)
        ip("-n", ns_b, "addr", "add", "10.77.0.2/24", "dev", veth_b)
        for ns, dev in ((ns_a, veth_a), (ns_b, veth_b), (ns_a, "lo"), (ns_b, "lo")):
            ip("-n", ns, "link", "set", dev, "up")
        in_a, in_b = ("ip", "netns", "exec", ns_a), ("ip", "netns", "exec", ns_b)
        server = children.python(NS_SERVER, "10.77.0.2", prefix=in_b)
        assert readline(server) == "ready"
        out = tmp_path / "a.jsonl"
        collector = subprocess.Popen([*in_a, sys.executable, "-m", "agent_local", "--dns", "--duration", "4",
                                      "--interval", "0.5", "--host", "ns-a", "-o", str(out), "--quiet"],
                                     cwd=REPO, env=CHILD_ENV)
        children.procs.append(collector)  # type: ignore[arg-type]
        time.sleep(1.0)  # let the capture socket open
        client = children.python(NS_CLIENT, "10.77.0.1", "10.77.0.2", "veth.connhunt.test", prefix=in_a)
        assert readline(client) == "sent"
        assert collector.wait(timeout=30) == 0
        records = [json.loads(line) for line in out.read_text().splitlines()]
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
    [record] = [r for r in records if r["kind"] == "dns"]
    assert (record["query"], record["answers"], record["server_ip"]) == ("veth.connhunt.test", ["192.0.2.9"],
                                                                         "10.77.0.2")
    assert record["pid"] == client.pid and record["host"] == "ns-a"
