"""Benign: a scheduled fetch from an internal web server (curl from cron, a dashboard, a colleague's wget), one
short connection each time, at irregular intervals."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, setup, sleep_until, tcp_exchange, ticks  # noqa: E402


def main() -> None:
    p = parser("http fetcher")
    p.add_argument("--url", required=True, help="HOST:PORT/PATH")
    p.add_argument("--every", type=float, nargs=2, default=(8.0, 20.0), metavar=("MIN", "MAX"))
    args = p.parse_args()
    deadline = setup(args)
    hostport, _, path = args.url.partition("/")
    host, port = hostport.rsplit(":", 1)
    if not sleep_until(deadline, random.uniform(1, 6)):
        return
    for _ in ticks(deadline):
        # A download takes a moment: the connection stays open about a second, as curl's would for a page.
        tcp_exchange(host, int(port), f"GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(), hold=1.0)
        if not sleep_until(deadline, random.uniform(*args.every)):
            return


if __name__ == "__main__":
    main()
