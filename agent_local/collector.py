"""The sampling loop: a snapshot per tick for the duration, yielding each record as soon as it is final.

``collect`` is what both the CLI and the orchestrator (``connhunt triage`` / ``connhunt collect``) call. It never
prints; what it could not see comes out as health records at the end, after every connection and DNS record.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from agent_local.hashing import DEFAULT_MAX_HASH_BYTES
from agent_local.health import HealthLedger
from agent_local.hostinfo import host_info
from agent_local.records import connection_records
from agent_local.sampler import Sampler
from agent_local.snapshot import make_snapshotter

OnTick = Callable[[float, int], None]


class CollectionError(RuntimeError):
    """Collection could not run at all (the very first snapshot failed); the CLI exits 3."""


def collect(duration: float = 60.0, interval: float = 1.0, host: str | None = None, dns: bool = False,
            on_tick: OnTick | None = None, stop: threading.Event | None = None, *,
            include_listening: bool = False, max_hash_bytes: int = DEFAULT_MAX_HASH_BYTES,
            host_id: str | None = None, backend: str | None = None,
            dns_ports: tuple[int, ...] = (53,)) -> Iterator[dict[str, Any]]:
    """Sample the host's sockets every ``interval`` seconds for ``duration`` seconds; yield finished records.

    Records are dicts with ``kind`` "connection", "dns" or "health" (see agent_local/__init__.py). A connection
    is yielded on the first tick it is gone, the rest when sampling ends; health records come last. Setting
    ``stop`` ends sampling early and still yields everything collected. ``on_tick(elapsed_s, connections)`` is
    called after each tick with the number of connections that tick saw. Raises CollectionError if the first
    snapshot fails, and DnspythonMissing (from agent_local.dns_capture) if ``dns`` is set without dnspython.
    """
    if duration < 0 or not interval > 0 or math.isinf(interval):
        raise ValueError("duration must be >= 0 and interval > 0")
    info = host_info(host, host_id)
    stop = stop or threading.Event()
    ledger = HealthLedger()
    capture = None
    if dns:
        from agent_local.dns_capture import DnsCapture

        capture = DnsCapture(info, ports=dns_ports)  # raises DnspythonMissing before anything starts
    snapper = make_snapshotter(include_listening=include_listening, max_hash_bytes=max_hash_bytes,
                               track_udp=dns, backend=backend)
    sampler = Sampler(info)
    # Bounded whatever the clock does: at most one tick per interval slot, plus the first.
    max_ticks = int(duration / interval) + 1
    try:
        if capture is not None:
            reason = capture.start()
            if reason is not None:
                ledger.note("dns_capture", 0, reason)
                capture = None
        start = time.monotonic()
        ticks = 0
        while ticks < max_ticks and not stop.is_set():
            try:
                with gc_paused():
                    snap = snapper.take()
            except Exception as exc:  # noqa: BLE001 - a failed tick is reported, the next may work
                if ticks == 0:
                    raise CollectionError(f"the first snapshot failed: {type(exc).__name__}: {exc}") from exc
                ledger.failure(exc)
                snap = None
            ticks += 1
            if snap is not None:
                ledger.snapshot(snap)
                if capture is not None and snap.udp_owners is not None:
                    capture.owners.publish(snap.udp_owners)
                with gc_paused():
                    finished = sampler.observe(snap)
                yield from finished
            if capture is not None:
                yield from capture.drain()
            elapsed = time.monotonic() - start
            if on_tick is not None:
                on_tick(elapsed, len(snap.observations) if snap is not None else 0)
            # Next slot on the interval grid; a slow tick skips the slots it overran instead of bunching up.
            next_slot = max(ticks, math.floor(elapsed / interval) + 1)
            if next_slot * interval > duration + 1e-9:
                break
            wait = start + next_slot * interval - time.monotonic()
            if wait > 0 and stop.wait(wait):
                break
        now = time.time()
        yield from sampler.finish(now)
        if capture is not None:
            capture.stop()
            yield from capture.drain(final=True)
            dns_health = capture.health_message()
            if dns_health is not None:
                ledger.note("dns_capture", *dns_health)
            capture = None
        yield from ledger.records(info.host, time.time(), sampler.unattributed, snapper.hasher)
    finally:
        # Reached early only when the consumer stops iterating or an error escapes: never leave the thread behind.
        if capture is not None:
            capture.stop()


def snapshot(host: str | None = None, *, include_listening: bool = False,
             max_hash_bytes: int = DEFAULT_MAX_HASH_BYTES, host_id: str | None = None,
             backend: str | None = None) -> list[dict[str, Any]]:
    """The connection records of one system-wide snapshot, taken now (observations 1, first_seen = last_seen)."""
    info = host_info(host, host_id)
    snapper = make_snapshotter(include_listening=include_listening, max_hash_bytes=max_hash_bytes,
                               backend=backend)
    with gc_paused():
        snap = snapper.take()
        # One tick needs no sampling table: each socket is its own entry, seen once.
        seen = snap.taken_at
        return connection_records(info, ([seen, seen, 1, obs] for obs in snap.observations), time.time())


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one snapshot.

    A snapshot allocates a few objects per socket (tens of thousands of rows, tuples and dicts, none of them in
    reference cycles); with the collector on, that allocation burst triggers repeated full collections that
    re-walk everything alive. Reference counting still frees everything as usual meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
