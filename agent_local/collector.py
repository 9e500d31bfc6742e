"""The sampling loop: a snapshot per tick for the duration, yielding each record as soon as it is final.

``collect`` is what both the CLI and the orchestrator (``connhunt triage`` / ``connhunt collect``) call. It never
prints; what it could not see comes out as health records at the end, after every connection and DNS record.
"""

from __future__ import annotations

import gc
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from agent_local.direction import Listening
from agent_local.hashing import DEFAULT_MAX_HASH_BYTES
from agent_local.health import HealthLedger, is_root
from agent_local.hostinfo import host_info
from agent_local.records import connection_records, listener_records
from agent_local.sampler import Sampler
from agent_local.snapshot import Snapshotter, make_snapshotter

if TYPE_CHECKING:
    from agent_local.events import EventWatcher

OnTick = Callable[[float, int], None]


class CollectionError(RuntimeError):
    """Collection could not run at all (the very first snapshot failed); the CLI exits 3."""


def collect(duration: float = 60.0, interval: float = 1.0, host: str | None = None, dns: bool = False,
            on_tick: OnTick | None = None, stop: threading.Event | None = None, *,
            listeners: bool = True, events: bool = True, max_hash_bytes: int = DEFAULT_MAX_HASH_BYTES,
            host_id: str | None = None, backend: str | None = None, dns_ports: tuple[int, ...] = (53,),
            event_poll: float = 0.01, include_listening: bool = False) -> Iterator[dict[str, Any]]:
    """Sample the host's sockets about every ``interval`` seconds for ``duration`` seconds; yield finished records.

    Records are dicts with ``kind`` "connection", "listener", "dns" or "health" (see agent_local/__init__.py). A
    connection or listener is yielded on the first tick it is gone, the rest when sampling ends; health records
    come last. ``listeners=False`` writes no listener records (they still decide direction). ``events`` adds the
    kernel's socket events on Linux as root (agent_local.events), so connections shorter than a tick are seen;
    where they are refused a health record says collection fell back to polling. Ticks are jittered by up to
    +/-25 % of ``interval`` so that no periodic behaviour can phase-lock with them. Setting ``stop`` ends sampling
    early and still yields everything collected. ``on_tick(elapsed_s, connections)`` is called after each tick
    with the number of connections that tick saw. Raises CollectionError if the first snapshot fails, and
    DnspythonMissing (from agent_local.dns_capture) if ``dns`` is set without dnspython. ``include_listening`` is
    a deprecated no-op (listeners are records of their own by default).
    """
    del include_listening
    if duration < 0 or not interval > 0 or math.isinf(interval):
        raise ValueError("duration must be >= 0 and interval > 0")
    info = host_info(host, host_id)
    stop = stop or threading.Event()
    ledger = HealthLedger()
    capture = None
    if dns:
        from agent_local.dns_capture import DnsCapture

        capture = DnsCapture(info, ports=dns_ports)  # raises DnspythonMissing before anything starts
    snapper = make_snapshotter(max_hash_bytes=max_hash_bytes, track_udp=dns, backend=backend)
    sampler = Sampler(info, listeners=listeners)
    watcher = None
    # Bounded whatever the clock does: at most one tick per shortest jittered interval, plus the first.
    max_ticks = int(duration / (interval * (1 - _JITTER))) + 2
    try:
        if events:
            watcher, reason = _start_events(snapper, event_poll)
            if reason is not None:
                ledger.note("socket_events", 0, f"Polling only, every {interval:g} s: {reason}; connections "
                                                "that open and close between two ticks were not seen.")
            else:
                sampler.linger = 1
                watcher.inbound = lambda row: sampler.listening.direction(row) == "inbound"
        if capture is not None:
            reason = capture.start()
            if reason is not None:
                ledger.note("dns_capture", 0, reason)
                capture = None
        start = due = time.monotonic()
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
            if watcher is not None:
                # After observe: an event for a connection this tick saw alive is then the tick's to widen.
                yield from _event_records(watcher, sampler)
            if capture is not None:
                yield from capture.drain()
            elapsed = time.monotonic() - start
            if on_tick is not None:
                on_tick(elapsed, len(snap.observations) if snap is not None else 0)
            # The next tick a random fraction of the interval away from when this one was due; a slow tick that
            # overran it runs the next at once instead of bunching up.
            due = max(due + interval * random.uniform(1 - _JITTER, 1 + _JITTER), time.monotonic())
            if due - start > duration + 1e-9:
                break
            wait = due - time.monotonic()
            if wait > 0 and stop.wait(wait):
                break
        if watcher is not None:
            watcher.stop()
            yield from _event_records(watcher, sampler, final=True)
            ledger.note("socket_events", *watcher.health_message())
            watcher = None
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
        # Reached early only when the consumer stops iterating or an error escapes: never leave a thread behind.
        if capture is not None:
            capture.stop()
        if watcher is not None:
            watcher.stop()


_JITTER = 0.25  # ticks fall uniformly within +/-25 % of the interval


def _start_events(snapper: Snapshotter, poll: float) -> tuple[EventWatcher | None, str | None]:
    """The kernel event watcher, or None and why not (not Linux /proc, not root, refused by the kernel)."""
    if snapper.backend != "procfs":
        return None, "kernel socket events need Linux with /proc"
    if not is_root():
        return None, "kernel socket events need root (CAP_NET_ADMIN)"
    from agent_local.events import EventWatcher

    watcher = EventWatcher(snapper.hasher, poll=poll, facts=getattr(snapper, "facts", None))
    reason = watcher.start()
    return (None, reason) if reason is not None else (watcher, None)


def _event_records(watcher: EventWatcher, sampler: Sampler, *, final: bool = False) -> list[dict[str, Any]]:
    ended = watcher.drain(lambda e: sampler.claim_event(e.obs[0][:5], e.first_seen, e.last_seen), sampler.service,
                          final=final)
    return sampler.event_records(ended, time.time()) if ended else []


def snapshot(host: str | None = None, *, listeners: bool = True, max_hash_bytes: int = DEFAULT_MAX_HASH_BYTES,
             host_id: str | None = None, backend: str | None = None) -> list[dict[str, Any]]:
    """The connection (and, with ``listeners``, listener) records of one system-wide snapshot, taken now
    (observations 1, first_seen = last_seen)."""
    info = host_info(host, host_id)
    snapper = make_snapshotter(max_hash_bytes=max_hash_bytes, backend=backend)
    with gc_paused():
        snap = snapper.take()
        # One tick needs no sampling table: each socket is its own entry, seen once.
        seen, now = snap.taken_at, time.time()
        listening = Listening(obs[0] for obs in snap.listening)
        direction, ports = listening.direction, listening.ports
        # The common case inline, as Sampler.observe has it: a TCP connection from a port no listener has.
        records = connection_records(info, [
            [seen, seen, 1, obs, 0, "outbound" if row[0] == "tcp" and ("tcp", row[2]) not in ports
             and row[6] != "SYN_RECV" else direction(row)]
            for obs in snap.observations for row in (obs[0],)], now)
        if listeners:
            records += listener_records(info, ([seen, seen, 1, obs] for obs in snap.listening), now)
        # Freed while the collector is still paused: the records (dicts of strings and numbers) are not tracked
        # by it, but the rows and observations are, and re-enabling it with them alive cost a ~5 ms collection.
        del snap
        return records


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
