"""--dns: a query a child sends to a nameserver on UDP/53 is captured, answered, and tied to the child's pid."""

from __future__ import annotations

import os
import random
import socket
import threading

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
