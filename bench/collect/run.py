"""Benchmark: one enriched agent_local snapshot at 20,000 established sockets versus ``ss -tanp``.

Holds 10,000 loopback connections open (10,000 client + 10,000 server ends, see socket_farm.py), then times, in
alternating order on the same machine, the median of several runs of:

- ``ss -tanp`` (netlink socket dump + its own /proc pass for the process column), output to /dev/null;
- agent_local cold: ``agent_local.snapshot()`` from nothing (fresh caches, exes hashed), records built;
- agent_local warm: one more tick of a running collector (process facts and hashes cached), records built;
- naive psutil: ``psutil.net_connections()`` plus ``psutil.Process`` enrichment per pid, records built.

Usage: python bench/collect/run.py [--connections 10000] [--runs 7] [--out bench/collect/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root, for agent_local
sys.path.insert(0, str(HERE))

import psutil  # noqa: E402
from socket_farm import start_farm  # noqa: E402

from agent_local import snapshot  # noqa: E402
from agent_local.collector import gc_paused  # noqa: E402
from agent_local.hostinfo import host_info  # noqa: E402
from agent_local.sampler import Sampler  # noqa: E402
from agent_local.snapshot import make_snapshotter  # noqa: E402


def run_ss() -> int:
    subprocess.run(["ss", "-tanp"], stdout=subprocess.DEVNULL, check=True)
    return 0


def agent_cold() -> int:
    return len(snapshot())


def agent_warm_factory() -> Callable[[], int]:
    snapper = make_snapshotter()
    info = host_info()
    snapper.take()  # warm the caches, as any tick after the first of a running collector has them

    def warm() -> int:
        # What agent_local.collect does each tick (with the garbage collector paused the same way).
        sampler = Sampler(info)
        with gc_paused():
            sampler.observe(snapper.take())
            return len(sampler.finish(time.time()))

    return warm


def naive_psutil() -> int:
    """What a straightforward psutil collector does: the connection table, then Process facts per pid."""
    facts: dict[int, dict] = {}
    records = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN or not conn.raddr:
            continue
        if conn.pid and conn.pid not in facts:
            try:
                proc = psutil.Process(conn.pid)
                info = proc.as_dict(["ppid", "name", "exe", "cmdline", "username", "create_time"])
                parent = proc.parent()
                info["parent"] = (parent.name(), parent.exe()) if parent else (None, None)
            except psutil.Error:
                info = {}
            facts[conn.pid] = info
        records.append({"laddr": conn.laddr, "raddr": conn.raddr, "status": conn.status,
                        **facts.get(conn.pid or -1, {})})
    return len(records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000, help="loopback connections (x2 sockets)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()

    load_before = list(os.getloadavg())
    with start_farm(args.connections) as farm:
        established = sum(1 for c in psutil.net_connections(kind="tcp")
                          if c.status == psutil.CONN_ESTABLISHED and farm.port in (c.laddr.port, c.raddr.port))
        total_sockets = len(psutil.net_connections(kind="tcp"))
        cases: dict[str, Callable[[], int]] = {
            "ss -tanp": run_ss,
            "agent_local cold": agent_cold,
            "agent_local warm": agent_warm_factory(),
            "naive psutil": naive_psutil,
        }
        timings: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for run in range(args.runs):
            # Rotate the order each run so no case always runs first (cold page cache) or last.
            order = names[run % len(names):] + names[:run % len(names)]
            for name in order:
                children = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu_started = time.process_time()
                started = time.perf_counter()
                cases[name]()
                timings[name].append((time.perf_counter() - started) * 1000)
                # CPU time (ours, plus ss's as a child) is steadier than wall time on a shared machine.
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                child_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
                cpu[name].append((time.process_time() - cpu_started + child_cpu) * 1000)

    medians = {name: statistics.median(values) for name, values in timings.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    ss = medians["ss -tanp"]
    ss_cpu = cpu_medians["ss -tanp"]
    result = {
        "established_sockets_on_farm_port": established,
        "sockets_in_table": total_sockets,
        "runs": args.runs,
        "median_ms": {name: round(value, 1) for name, value in medians.items()},
        "ratio_vs_ss": {name: round(value / ss, 2) for name, value in medians.items()},
        "min_ms": {name: round(min(values), 1) for name, values in timings.items()},
        "median_cpu_ms": {name: round(value, 1) for name, value in cpu_medians.items()},
        "cpu_ratio_vs_ss": {name: round(value / ss_cpu, 2) for name, value in cpu_medians.items()},
        "all_ms": {name: [round(v, 1) for v in values] for name, values in timings.items()},
        # Other work on the machine inflates wall times; the load average says how busy it was.
        "load_average_before_after": [load_before, list(os.getloadavg())],
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "psutil": psutil.__version__, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    print(f"{established} established sockets on the farm port ({total_sockets} TCP sockets in the table); "
          f"median of {args.runs} runs, alternating order")
    for name, value in medians.items():
        print(f"  {name:18s} wall {value:7.1f} ms (x{value / ss:4.2f} ss, min {min(timings[name]):6.1f})   "
              f"cpu {cpu_medians[name]:7.1f} ms (x{cpu_medians[name] / ss_cpu:4.2f} ss)")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
