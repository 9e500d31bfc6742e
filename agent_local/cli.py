"""``python -m agent_local``: sample this host's connections for a while and write them as JSONL.

Only parses arguments, wires signals and writes lines; the collecting is agent_local.collector's.
Exit codes: 0 ok, 2 bad usage, 3 collection failed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import IO

from agent_local.collector import CollectionError, collect
from agent_local.hashing import DEFAULT_MAX_HASH_BYTES
from agent_local.health import is_root, not_root_note

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FAILED = 3

_EPILOG = """\
output: one JSON object per line, "kind" connection, listener, dns or health (what could not be seen).
exit codes: 0 ok, 2 bad usage, 3 collection failed.
SIGINT/SIGTERM end sampling early; everything collected so far is still written."""


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be zero or a positive number of seconds, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agent_local", description="Sample this host's network connections with their processes.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=_non_negative, default=60.0, help="seconds to sample (default 60)")
    parser.add_argument("--interval", type=_positive, default=1.0, help="seconds between snapshots (default 1)")
    parser.add_argument("-o", "--output", default="-", help="JSONL file to write, - for stdout (default)")
    parser.add_argument("--host", help="host name to put in records (default: this machine's)")
    parser.add_argument("--host-id", help="host id (default: /etc/machine-id, or the --host name if given)")
    parser.add_argument("--no-listening", action="store_true",
                        help="write no listener records (listening sockets still tell inbound from outbound)")
    parser.add_argument("--include-listening", action="store_true", help=argparse.SUPPRESS)  # deprecated no-op
    parser.add_argument("--no-events", action="store_true",
                        help="poll only: no kernel socket events (on Linux as root they catch connections "
                             "shorter than a tick)")
    parser.add_argument("--dns", action="store_true",
                        help="also capture DNS queries and answers with their process (Linux, root, dnspython)")
    parser.add_argument("--quiet", action="store_true", help="no notes on stderr, only errors")
    parser.add_argument("--max-hash-bytes", type=int, default=DEFAULT_MAX_HASH_BYTES,
                        help=f"skip hashing executables larger than this (default {DEFAULT_MAX_HASH_BYTES}; "
                             "0 hashes none, -1 no cap)")
    return parser


def _open_output(path: str) -> IO[str]:
    if path == "-":
        return sys.stdout
    return open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed in main's finally


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    if args.dns:
        from agent_local.dns_capture import DnspythonMissing, require_dnspython

        try:
            require_dnspython()
        except DnspythonMissing as exc:
            print(f"agent_local: {exc}", file=sys.stderr)
            return EXIT_USAGE
    note = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    if not is_root():
        note(not_root_note())

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        out = _open_output(args.output)
    except OSError as exc:
        print(f"agent_local: cannot write {args.output}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    counts: Counter[str] = Counter()
    started = time.monotonic()
    try:
        records = collect(args.duration, args.interval, host=args.host, dns=args.dns,
                          on_tick=lambda *_: out.flush(), stop=stop, listeners=not args.no_listening,
                          events=not args.no_events,
                          max_hash_bytes=args.max_hash_bytes, host_id=args.host_id)
        for record in records:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
            counts[record["kind"]] += 1
            if record["kind"] == "health" and record["check"] == "dns_capture":
                note(f"agent_local: {record['message']}")
        out.flush()
    except CollectionError as exc:
        print(f"agent_local: collection failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        print("agent_local: output closed early; collection stopped", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if out is not sys.stdout:
            out.close()
    note(_summary(counts, args.output, time.monotonic() - started, stop.is_set()))
    return EXIT_OK


def _summary(counts: Counter[str], output: str, seconds: float, stopped: bool) -> str:
    where = "stdout" if output == "-" else output
    how = " (stopped early by a signal)" if stopped else ""
    return (f"agent_local: wrote {counts['connection']} connection, {counts['listener']} listener, {counts['dns']} "
            f"dns and {counts['health']} health records to {where} in {seconds:.1f} s{how}")


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()


__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]
