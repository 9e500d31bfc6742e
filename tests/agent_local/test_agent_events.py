"""Kernel socket events on loopback: connections far shorter than a tick are recorded once each, credited to their
process, with start times from the events; without root the collector says it fell back to polling."""

from __future__ import annotations

import json
import os
from datetime import datetime

import pytest
from agent_helpers import Listener, readline, requires_root, run_as_nobody

import agent_local

# On "go", connects N times, holding each connection ``hold`` seconds, 0.25 s apart; prints each connect time.
SHORT_BEACON = """
import socket, sys, time
port, hold, count = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
for _ in range(count):
    t = time.time()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"x"); time.sleep(hold); s.close()
    print(f"{t:.6f}", flush=True)
    time.sleep(0.25)
"""


def _t(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@requires_root
@pytest.mark.parametrize("hold", [0.005, 0.05])
def test_short_connections_between_ticks_are_recorded_once_with_their_process(children, hold):
    lst = Listener()
    try:
        # Enough connections that at least one is caught alive by a dump (for 5 ms ones about one in four), which
        # is what lets history name the others.
        count = 20
        child = children.python(SHORT_BEACON, str(lst.port), str(hold), str(count))
        assert readline(child) == "ready"
        started: list[float] = []

        def go(elapsed: float, _n: int) -> None:
            if not started:
                child.stdin.write(b"go\n")  # type: ignore[union-attr]
                child.stdin.flush()  # type: ignore[union-attr]
                started.append(elapsed)

        records = list(agent_local.collect(count * 0.3 + 3.0, 2.0, on_tick=go))
        truth = sorted(float(readline(child)) for _ in range(count))
    finally:
        lst.close()
    mine = sorted((r for r in records if r["kind"] == "connection" and r["remote_port"] == lst.port),
                  key=lambda r: r["first_seen"])
    assert len(mine) == count, [(r["local_port"], r["seen_by"], r["attribution"]) for r in mine]
    for record, connected in zip(mine, truth):
        assert abs(_t(record["first_seen"]) - connected) <= 0.05, (record, connected)
        assert _t(record["last_seen"]) - connected >= hold - 0.005
    credited = [r for r in mine if r["pid"] == child.pid and r["attributed"]]
    assert len(credited) >= count - 1, [(r["seen_by"], r["attribution"], r["pid"]) for r in mine]
    assert {r["seen_by"] for r in credited} <= {"event", "snapshot"}
    assert all(r["attribution"] in ("pid", "inode", "history") for r in credited)
    assert all(r["direction"] == "outbound" for r in mine)
    # The accepted ends, in this process: inbound, and credited to the holder of the listening socket at worst.
    served = [r for r in records if r["kind"] == "connection" and r["local_port"] == lst.port]
    assert len(served) == count
    assert {(r["pid"], r["direction"]) for r in served} == {(os.getpid(), "inbound")}
    assert {r["attribution"] for r in served} <= {"pid", "inode", "listener"}
    [health] = [r for r in records if r["kind"] == "health" and r["check"] == "socket_events"]
    assert health["message"].startswith("Kernel socket events on")


def test_without_root_it_says_it_polls_only():
    done = run_as_nobody("--duration", "0.2", "--interval", "0.1", "-o", "-")
    assert done.returncode == 0, done.stderr
    health = [json.loads(line) for line in done.stdout.splitlines()]
    [events] = [r for r in health if r["kind"] == "health" and r["check"] == "socket_events"]
    assert events["message"] == ("Polling only, every 0.1 s: kernel socket events need root (CAP_NET_ADMIN); "
                                 "connections that open and close between two ticks were not seen.")
    assert os.geteuid() == 0  # run_as_nobody skips otherwise
