"""Sampling over time: reconnects become records of their own, observations are counted, stop ends it cleanly."""

from __future__ import annotations

import threading
from datetime import datetime

from agent_helpers import HOLD_CONNECTION, one_connection, readline

import agent_local

# Connects, holds for 0.5 s, closes, and again (a beacon with a new ephemeral port each time); prints each port.
BEACON = """
import socket, sys, time
for _ in range(int(sys.argv[2])):
    c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    print(c.getsockname()[1], flush=True)
    time.sleep(0.5)
    c.close()
print("done", flush=True)
sys.stdin.read()
"""


def _t(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_reconnects_are_separate_records_with_their_own_first_seen(children, listener):
    child = children.python(BEACON, str(listener.port), "6")
    first_port = int(readline(child))
    records = list(agent_local.collect(3.6, 0.1))
    ports = [first_port]
    while (line := readline(child)) != "done":
        ports.append(int(line))
    assert len(ports) == 6

    mine = [r for r in records if r["kind"] == "connection" and r["remote_port"] == listener.port
            and r["local_port"] in ports]
    assert all(r["pid"] == child.pid and r["attributed"] for r in mine), mine
    # Each connection once, the ownerless TIME_WAIT each leaves behind folded into it rather than reported again.
    by_port = {r["local_port"]: r for r in mine}
    assert len(by_port) == len(mine) >= 5
    starts = sorted(_t(r["first_seen"]) for r in mine)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(0.2 < gap < 1.2 for gap in gaps), gaps  # 0.5 s apart, give or take a tick on a busy machine
    assert all(r["observations"] >= 2 for r in mine)


def test_observations_counted_over_the_duration(children, listener):
    child = children.python(HOLD_CONNECTION, str(listener.port))
    port = int(readline(child))
    ticks: list[tuple[float, int]] = []
    records = list(agent_local.collect(1.0, 0.2, on_tick=lambda elapsed, n: ticks.append((elapsed, n))))
    record = one_connection(records, port, listener.port)
    assert 3 <= record["observations"] == len(ticks) <= 8  # ticks are jittered +/-25 % around 0.2 s
    assert 0.6 <= _t(record["last_seen"]) - _t(record["first_seen"]) <= 1.3
    assert all(n >= 2 for _, n in ticks)  # our connection, both ends
    assert [e for e, _ in ticks] == sorted(e for e, _ in ticks)


def test_stop_ends_early_and_keeps_what_was_collected(children, listener):
    child = children.python(HOLD_CONNECTION, str(listener.port))
    port = int(readline(child))
    stop = threading.Event()

    def on_tick(elapsed: float, _n: int) -> None:
        if elapsed >= 0.3:
            stop.set()

    records = list(agent_local.collect(30, 0.1, on_tick=on_tick, stop=stop))
    record = one_connection(records, port, listener.port)
    assert record["observations"] >= 3
    assert _t(record["last_seen"]) - _t(record["first_seen"]) < 5


def test_connection_seen_once_is_kept(children, listener):
    child = children.python(HOLD_CONNECTION, str(listener.port))
    port = int(readline(child))
    records = list(agent_local.collect(0, 1))
    record = one_connection(records, port, listener.port)
    assert record["observations"] == 1


def test_closing_the_generator_early_is_safe(children, listener):
    child = children.python(HOLD_CONNECTION, str(listener.port))
    readline(child)
    gen = agent_local.collect(30, 0.1)
    next(gen, None)  # may already be a finished connection or wait for the end; either way close it early
    gen.close()
