"""Benchmark: the collector's CPU and memory while connections open and close on loopback, beside ``ss -E``.

For each rate (100 and 1,000 connections a second by default) and each collector, in rotating order, a load of
short loopback connections runs for a bounded time (20 s by default) while the collector runs, then the collector
is stopped and its CPU time (user + system) and peak RSS are read from wait4(). Collectors:

- ``agent_local events``: ``python -m agent_local`` as it runs by default on Linux as root (1 s ticks, kernel
  socket events: sock_diag destroy notices, held-socket dumps, process connector);
- ``agent_local polling``: the same with ``--no-events``, today's polling collector;
- ``ss -E``: iproute2 printing every destroyed TCP socket (``ss -E -t -n -H``), output to a file.

Also counted: how many of the load's connections each one recorded (client ends, by local port).
The load: a server process accepts, sends one byte and closes; a client process connects at the given rate,
reads to the end and closes. Everything is bounded in count and time.

Usage: python bench/collect/churn.py [--rates 100 1000] [--seconds 20] [--out bench/collect/churn.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

LOAD = r"""
import socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
if mode == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(4096); s.settimeout(1.0)
    print("ready", flush=True)
    deadline = time.monotonic() + float(sys.argv[3])
    while time.monotonic() < deadline:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        c.sendall(b"x"); c.close()
else:
    rate, seconds = float(sys.argv[3]), float(sys.argv[4])
    start = time.monotonic(); n = 0
    total = int(rate * seconds)
    while n < total and time.monotonic() - start < seconds + 5:
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
        c = socket.create_connection(("127.0.0.1", port))
        c.recv(1); c.close(); n += 1
    print(f"{n} {time.monotonic() - start:.2f}", flush=True)
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait4(proc: subprocess.Popen, timeout: float) -> tuple[float, int]:
    """(CPU seconds user + system, peak RSS KiB) of a child once it ends (killed after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, 0 if time.monotonic() > deadline else os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime, usage.ru_maxrss
        if time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.05)


def run_case(name: str, rate: float, seconds: float, workdir: Path) -> dict:
    port = _free_port()
    out = workdir / f"{name.replace(' ', '_')}-{rate:g}.out"
    if name == "ss -E":
        argv = ["ss", "-E", "-t", "-n", "-H"]
    else:
        argv = [sys.executable, "-m", "agent_local", "--duration", str(seconds + 6), "--interval", "1", "--quiet",
                "-o", str(out)] + (["--no-events"] if name == "agent_local polling" else [])
    sink = open(out, "w") if name == "ss -E" else subprocess.DEVNULL  # noqa: SIM115 - closed below
    started = time.monotonic()
    collector = subprocess.Popen(argv, stdout=sink, stderr=subprocess.DEVNULL, cwd=REPO,
                                 env={**os.environ, "PYTHONPATH": str(REPO)})
    server = subprocess.Popen([sys.executable, "-c", LOAD, "server", str(port), str(seconds + 10)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        time.sleep(1.5)  # the collector is up and subscribed
        client = subprocess.run([sys.executable, "-c", LOAD, "client", str(port), str(rate), str(seconds)],
                                capture_output=True, text=True, timeout=seconds + 30, check=True)
        made, took = client.stdout.split()
        if name == "ss -E":
            time.sleep(0.5)
            collector.send_signal(signal.SIGTERM)
        # agent_local ends by itself after its duration (writing what it holds); bounded either way
        cpu, rss = _wait4(collector, 60)
        wall = time.monotonic() - started
    finally:
        for proc in (server, collector):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        if sink is not subprocess.DEVNULL:
            sink.close()
    recorded, attributed = _recorded(name, out, port)
    return {"collector": name, "rate": rate, "connections_made": int(made), "load_seconds": float(took),
            "cpu_s": round(cpu, 3), "wall_s": round(wall, 1),
            "cpu_percent_of_one_core": round(100 * cpu / wall, 1),
            "peak_rss_mib": round(rss / 1024, 1), "client_ends_recorded": recorded,
            "client_ends_attributed": attributed}


def _recorded(name: str, out: Path, port: int) -> tuple[int, int]:
    """(client ends recorded, of them with their process)."""
    text = out.read_text(errors="replace") if out.exists() else ""
    if name == "ss -E":
        # "State Recv-Q Send-Q Local:Port Peer:Port": client ends have the server port as peer; no process column
        return sum(1 for line in text.splitlines() if line.split()[4:5] == [f"127.0.0.1:{port}"]), 0
    count = attributed = 0
    for line in text.splitlines():
        record = json.loads(line)
        if record["kind"] == "connection" and record["remote_port"] == port and record["local_ip"] == "127.0.0.1":
            count += 1
            attributed += bool(record["attributed"])
    return count, attributed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[100, 1000])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=HERE / "churn.json")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (kernel socket events)", file=sys.stderr)
        return 2
    names = ["agent_local events", "agent_local polling", "ss -E"]
    results = []
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="connhunt-churn-") as tmp:
        if os.environ.get("CHURN_KEEP"):
            tmp = os.environ["CHURN_KEEP"]
        for i, rate in enumerate(args.rates):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                result = run_case(name, rate, args.seconds, Path(tmp))
                print(json.dumps(result), flush=True)
                results.append(result)
    summary = {"seconds": args.seconds, "results": results,
               "load_average_before_after": [load_before, list(os.getloadavg())],
               "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                           "python": platform.python_version(),
                           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
