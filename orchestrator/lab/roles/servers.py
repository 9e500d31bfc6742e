"""The lab's servers: web (keep-alive HTTP), C2, SSH-like, stratum pool, NTP, a reverse-shell handler and a generic
request/reply session (database, implant relay), all in one asyncio process.

Run inside a server namespace with listeners like ``web@203.0.113.10:443/tcp``; exits by itself at --duration.
"""

from __future__ import annotations

import asyncio
import json
import random
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, setup  # noqa: E402

IDLE = 90.0  # seconds a quiet TCP client may stay connected


async def _read(reader: asyncio.StreamReader, limit: int = 65536, timeout: float = IDLE) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(limit), timeout)
    except (asyncio.TimeoutError, ConnectionError):
        return b""


async def web(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Keep-alive: answer each request until the client goes quiet or closes.
    for _ in range(1000):
        request = await _read(reader)
        if not request:
            return
        await asyncio.sleep(random.uniform(0.02, 0.2))
        body = b"x" * random.randint(200, 4000)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()


async def c2(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # A check-in: the implant posts its id, the server "thinks" for a moment and hands back a (no-op) task.
    if await _read(reader, timeout=10):
        await asyncio.sleep(1.0)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\ntask:sleep 5")
        await writer.drain()
        await _read(reader, timeout=5)


async def ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    await writer.drain()
    for _ in range(10_000):
        data = await _read(reader)
        if not data:
            return
        writer.write(b"\x00\x00\x00\x0c\x0a" + bytes(11))  # a keepalive-sized reply
        await writer.drain()


# What the operator types into a caught shell: read-only look-arounds, never anything that changes the machine.
SHELL_COMMANDS = (b"id\n", b"uname -a\n", b"pwd\n", b"echo $$\n", b"ls -d /tmp\n")


async def shell_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A reverse-shell handler (nc -lvnp style): keeps the session and types a command every 6-10 s."""
    for i in range(10_000):
        writer.write(SHELL_COMMANDS[i % len(SHELL_COMMANDS)])
        await writer.drain()
        await _read(reader, timeout=5)
        if reader.at_eof():
            return
        await asyncio.sleep(random.uniform(6, 10))


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One short reply per request on a held connection (a database, an implant's relay)."""
    for _ in range(100_000):
        data = await _read(reader)
        if not data:
            return
        writer.write(b"OK " + str(len(data)).encode() + b"\n")
        await writer.drain()


async def stratum(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A minimal stratum pool: answers subscribe/authorize/login/submit and pushes a new job every 10 s."""

    async def push_jobs() -> None:
        for n in range(10_000):
            await asyncio.sleep(10)
            job = {"id": None, "method": "mining.notify",
                   "params": [f"{n:08x}", "00" * 32, "01000000", "ffffffff", [], "20000000", "1d00ffff",
                              f"{int(time.time()):08x}", True]}
            writer.write(json.dumps(job).encode() + b"\n")
            await writer.drain()

    pusher = asyncio.ensure_future(push_jobs())
    try:
        for _ in range(100_000):
            line = await asyncio.wait_for(reader.readline(), IDLE)
            if not line:
                return
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            method, mid = msg.get("method"), msg.get("id")
            if method == "mining.subscribe":
                result: object = [[["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4]
            elif method == "login":
                result = {"id": "1", "job": {"blob": "00" * 76, "job_id": "1", "target": "b88d0600"},
                          "status": "OK"}
            else:
                result = True
            writer.write(json.dumps({"id": mid, "result": result, "error": None}).encode() + b"\n")
            await writer.drain()
    except (asyncio.TimeoutError, ConnectionError):
        return
    finally:
        pusher.cancel()


class Ntp(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 48:
            now = int(time.time()) + 2208988800
            # Server mode, stratum 2; the client's transmit time comes back as the originate time.
            reply = (struct.pack("!BBbb3I2I", 0x24, 2, 6, -20, 0, 0, 0, now, 0) + data[40:48]
                     + struct.pack("!4I", now, 0, now, 0))
            self.transport.sendto(reply, addr)  # type: ignore[attr-defined]


HANDLERS = {"web": web, "c2": c2, "ssh": ssh, "stratum": stratum, "shell_handler": shell_handler, "session": session}


async def _guarded(handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:  # type: ignore[no-untyped-def]
    try:
        await handler(reader, writer)
    except (ConnectionError, asyncio.TimeoutError, OSError):
        pass
    finally:
        writer.close()


async def serve(listeners: list[str], deadline: float, ready: Path | None) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    for spec in listeners:
        kind, rest = spec.split("@", 1)
        hostport, proto = rest.rsplit("/", 1)
        host, port = hostport.rsplit(":", 1)
        if proto == "udp":
            await loop.create_datagram_endpoint(Ntp, local_addr=(host, int(port)))
        else:
            handler = HANDLERS[kind]
            servers.append(await asyncio.start_server(
                lambda r, w, h=handler: _guarded(h, r, w), host, int(port), reuse_address=True))
    if ready:
        ready.write_text("ready\n")
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    for server in servers:
        server.close()


def main() -> None:
    p = parser("lab servers")
    p.add_argument("--ready", type=Path)
    p.add_argument("listeners", nargs="+")
    args = p.parse_args()
    deadline = setup(args)
    asyncio.run(serve(args.listeners, deadline, args.ready))


if __name__ == "__main__":
    main()
