"""Collection health: what this run could not see, summed over the run and written as health records at the end.

Every check says plainly what is missing and why (not root, owner exited, exe too big to hash, no raw socket view),
so the report can show the gaps instead of implying a clean host.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from typing import Any

from agent_local.enrich import user_name
from agent_local.hashing import ExeHasher
from agent_local.records import health_record
from agent_local.snapshot import CLOSED, EXITED, HIDDEN, Snapshot

_SHOW_PATHS = 5


def is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    if geteuid is not None:
        return geteuid() == 0
    try:  # Windows: an elevated token is what lets psutil see other users' processes
        import ctypes

        return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
    except (ImportError, AttributeError, OSError):
        return False


def not_root_note() -> str:
    """The one-line stderr note a non-root run prints before it starts."""
    return ("agent_local: not running as root: sockets of other users' processes are reported without their "
            "process (attributed=false), and a health record says how many")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "es" if noun.endswith("s") else "s")


def _paths(paths: list[str]) -> str:
    shown = ", ".join(paths[:_SHOW_PATHS])
    return shown + (f" and {len(paths) - _SHOW_PATHS} more" if len(paths) > _SHOW_PATHS else "")


class HealthLedger:
    """Accumulates what went unseen during a run; ``records`` turns it into health records."""

    def __init__(self) -> None:
        self.root = is_root()
        self.max_denied = 0
        self.missing_tables: set[str] = set()
        self.raw_invisible = False
        self.failures: Counter[str] = Counter()
        self.notes: list[tuple[str, int, str]] = []

    def snapshot(self, snap: Snapshot) -> None:
        self.max_denied = max(self.max_denied, snap.processes_denied)
        self.missing_tables.update(snap.missing_tables)
        self.raw_invisible = self.raw_invisible or not snap.raw_visible

    def failure(self, exc: BaseException) -> None:
        self.failures[f"{type(exc).__name__}: {exc}"] += 1

    def note(self, check: str, count: int, message: str) -> None:
        self.notes.append((check, count, message))

    def records(self, host: str, now: float, unattributed: Counter[str], hasher: ExeHasher) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self.root:
            who = user_name(os.geteuid()) if hasattr(os, "geteuid") else "this user"
            out.append(health_record(
                host, now, "not_root", self.max_denied,
                f"Ran as {who}, not root: {_n(self.max_denied, 'process')} of other users could not be inspected, so "
                "their sockets are reported without a process (attributed=false, no pid, command line or exe hash)."))
        total = sum(unattributed.values())
        if total:
            parts = []
            if unattributed[HIDDEN]:
                parts.append(f"{unattributed[HIDDEN]} belonged to processes this user may not inspect")
            if unattributed[EXITED]:
                parts.append(f"{unattributed[EXITED]} belonged to processes that exited before they could be read")
            if unattributed[CLOSED]:
                parts.append(f"{unattributed[CLOSED]} were already closed by their process (TIME_WAIT or orphaned) "
                             "before any tick saw it")
            out.append(health_record(host, now, "unattributed_sockets", total,
                                     f"{_n(total, 'connection')} without a process: " + "; ".join(parts) + "."))
        too_big, unreadable = hasher.skipped()
        if too_big or unreadable:
            parts = []
            if too_big:
                parts.append(f"{len(too_big)} larger than the {hasher.max_bytes} byte cap ({_paths(too_big)})")
            if unreadable:
                parts.append(f"{len(unreadable)} unreadable ({_paths(unreadable)})")
            out.append(health_record(host, now, "hash_skipped", len(too_big) + len(unreadable),
                                     "Executables not hashed (exe_sha256 is null): " + "; ".join(parts) + "."))
        raw_missing = sorted(t for t in self.missing_tables if t.startswith(("raw", "icmp")))
        if self.raw_invisible:
            out.append(health_record(host, now, "raw_sockets", 0,
                                     f"Raw and ICMP sockets cannot be listed on {sys.platform} (psutil does not "
                                     "report them): non-application-protocol traffic (T1095) was not seen."))
        elif raw_missing:
            out.append(health_record(host, now, "raw_sockets", len(raw_missing),
                                     f"Could not read /proc/net/{', /proc/net/'.join(raw_missing)}: raw/ICMP sockets "
                                     "of those kinds were not seen."))
        other_missing = sorted(t for t in self.missing_tables if not t.startswith(("raw", "icmp")))
        if other_missing:
            out.append(health_record(host, now, "socket_tables", len(other_missing),
                                     f"Could not read /proc/net/{', /proc/net/'.join(other_missing)}: those sockets "
                                     "were not seen."))
        for message, count in self.failures.items():
            out.append(health_record(host, now, "snapshot_failed", count,
                                     f"{count} snapshots failed and their sockets were not seen: {message}"))
        for check, count, message in self.notes:
            out.append(health_record(host, now, check, count, message))
        return out
