"""The lab's DNS servers: the fleet resolver (a fixed zone, NXDOMAIN otherwise) or an attacker's nameserver.

The attacker mode answers every name under its domain, as an exfiltration endpoint does, and writes the labels it
received to --sink so a run can show the data really crossed. Runs under the project's interpreter (dnspython).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, setup, ticks  # noqa: E402


def answer(query: dns.message.Message, zone: dict[str, str], catch_domain: str, catch_ip: str) -> dns.message.Message:
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.RA
    question = query.question[0]
    name = question.name.to_text().rstrip(".").lower()
    address = zone.get(name)
    if address is None and catch_domain and (name == catch_domain or name.endswith("." + catch_domain)):
        address = catch_ip
    if address is None:
        reply.set_rcode(dns.rcode.NXDOMAIN)
    elif question.rdtype == dns.rdatatype.A:
        reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", address))
    elif question.rdtype == dns.rdatatype.TXT:
        reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "TXT", '"ok"'))
    return reply


def main() -> None:
    p = parser("lab nameserver")
    p.add_argument("--listen", required=True)
    p.add_argument("--zone", default="{}", help="JSON name -> IPv4")
    p.add_argument("--catch-domain", default="")
    p.add_argument("--catch-ip", default="")
    p.add_argument("--sink", type=Path)
    p.add_argument("--ready", type=Path)
    args = p.parse_args()
    deadline = setup(args)
    zone = {k.lower(): v for k, v in json.loads(args.zone).items()}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.listen, 53))
    sock.settimeout(0.5)
    if args.ready:
        args.ready.write_text("ready\n")
    sink = args.sink.open("a") if args.sink else None
    try:
        for _ in ticks(deadline):
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 - garbage on port 53 is ignored, as a real server would
                continue
            if not query.question:
                continue
            if sink:
                sink.write(f"{time.time():.3f} {peer[0]} {query.question[0].name.to_text()}\n")
                sink.flush()
            sock.sendto(answer(query, zone, args.catch_domain, args.catch_ip).to_wire(), peer)
    finally:
        if sink:
            sink.close()
        sock.close()


if __name__ == "__main__":
    main()
