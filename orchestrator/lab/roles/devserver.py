"""Benign: a developer's ``python3 -m http.server 8000`` serving a build folder to a colleague."""

from __future__ import annotations

import http.server
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, setup  # noqa: E402


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's signature
        pass


def main() -> None:
    p = parser("developer http.server")
    p.add_argument("--port", type=int, default=8000)
    args = p.parse_args()
    deadline = setup(args)
    with tempfile.TemporaryDirectory(prefix="connhunt-lab-build-") as folder:
        (Path(folder) / "index.html").write_text("<html><body>build 1842: ok</body></html>\n")
        handler = partial(QuietHandler, directory=folder)
        with http.server.ThreadingHTTPServer(("0.0.0.0", args.port), handler) as server:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()
            time.sleep(max(0.0, deadline - time.monotonic()))
            server.shutdown()


if __name__ == "__main__":
    main()
