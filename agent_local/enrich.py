"""Process facts for a socket's owner (name, exe, command line, user, start, parent, exe hash), cached.

Facts are keyed by (pid, start time): a pid that is reused by a new process gets new facts, while a long-lived
process is read once for the whole collection. Only the ppid is re-read each tick, because a process whose parent
dies is re-parented and its parent's facts must follow.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from agent_local import procfs
from agent_local.hashing import ExeHasher

# A cached process not used for this long is forgotten, so memory stays bounded on a busy host.
_FORGET_AFTER_S = 600.0
_COMM_LEN = 15  # the kernel truncates comm to 15 characters


@dataclass(frozen=True)
class ProcessFacts:
    pid: int
    ppid: int | None
    name: str | None
    exe: str | None
    command_line: str | None
    username: str | None
    start_time: float | None  # epoch seconds
    parent_name: str | None
    parent_path: str | None
    exe_sha256: str | None


def join_argv(argv: list[str] | None) -> str | None:
    """The command line as one shell-quoted string, so argv boundaries survive a round trip."""
    if argv is None:
        return None
    return shlex.join(argv)


class _UserNames:
    """uid -> user name, looked up once per uid (pwd is absent on Windows, where psutil names users itself)."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}

    def __call__(self, uid: int | None) -> str | None:
        if uid is None:
            return None
        name = self._names.get(uid)
        if name is None:
            try:
                import pwd

                name = pwd.getpwuid(uid).pw_name
            except (ImportError, KeyError):
                name = str(uid)
            self._names[uid] = name
        return name


user_name = _UserNames()


def _full_name(comm: str, exe: str | None, argv: list[str] | None) -> str:
    """comm, un-truncated from the exe or argv[0] when the kernel cut it at 15 characters."""
    if len(comm) < _COMM_LEN:
        return comm
    for candidate in (exe, argv[0] if argv else None):
        if candidate:
            base = candidate.removesuffix(" (deleted)").rsplit("/", 1)[-1]
            if base.startswith(comm):
                return base
    return comm


class LinuxFacts:
    """Facts from /proc, cached per (pid, start ticks)."""

    def __init__(self, hasher: ExeHasher, root: str = procfs.PROC, clock: Callable[[], float] = time.monotonic):
        self.hasher = hasher
        self.root = root
        self._clock = clock
        self._boot = procfs.boot_time(root) or 0.0
        self._ticks = procfs.clock_ticks()
        self._cache: dict[tuple[int, int], tuple[ProcessFacts, float]] = {}
        self._parents: dict[tuple[int, int], tuple[str | None, str | None]] = {}

    def get(self, pid: int, stat: tuple[str, int, int] | None = None) -> ProcessFacts | None:
        """Facts for a live pid; ``stat`` is its read_stat() when the caller already has it."""
        stat = stat or procfs.read_stat(pid, self.root)
        if stat is None:
            return None
        comm, ppid, start_ticks = stat
        now = self._clock()
        key = (pid, start_ticks)
        cached = self._cache.get(key)
        if cached is not None:
            facts = cached[0]
            if facts.ppid != ppid:
                parent_name, parent_path = self._parent(ppid)
                facts = replace(facts, ppid=ppid, parent_name=parent_name, parent_path=parent_path)
            self._cache[key] = (facts, now)
            return facts
        facts = self._read(pid, comm, ppid, start_ticks)
        self._cache[key] = (facts, now)
        return facts

    def reread(self, pid: int) -> ProcessFacts | None:
        """Facts read afresh: after an exec the pid and start time stay the same while exe and command line change,
        so the cached facts of (pid, start) describe the program it was before."""
        stat = procfs.read_stat(pid, self.root)
        if stat is None:
            return None
        facts = self._read(pid, *stat)
        self._cache[(pid, stat[2])] = (facts, self._clock())
        return facts

    def _read(self, pid: int, comm: str, ppid: int, start_ticks: int) -> ProcessFacts:
        root = self.root
        exe = procfs.read_exe(pid, root)
        argv = procfs.read_cmdline(pid, root)
        digest = self.hasher.sha256(f"{root}/{pid}/exe", exe) if exe else None
        parent_name, parent_path = self._parent(ppid)
        return ProcessFacts(
            pid=pid, ppid=ppid, name=_full_name(comm, exe, argv), exe=exe, command_line=join_argv(argv),
            username=user_name(procfs.read_uid(pid, root)),
            start_time=self._boot + start_ticks / self._ticks if self._boot else None,
            parent_name=parent_name, parent_path=parent_path, exe_sha256=digest,
        )

    def _parent(self, ppid: int) -> tuple[str | None, str | None]:
        if ppid <= 0:
            return None, None
        stat = procfs.read_stat(ppid, self.root)
        if stat is None:
            return None, None
        key = (ppid, stat[2])
        known = self._parents.get(key)
        if known is None:
            exe = procfs.read_exe(ppid, self.root)
            known = (_full_name(stat[0], exe, None), exe)
            self._parents[key] = known
        return known

    def forget_stale(self) -> None:
        """Drop processes not asked about recently (their pids may be reused by someone else)."""
        cutoff = self._clock() - _FORGET_AFTER_S
        # list() copies the items in one step: the event thread may add facts meanwhile (agent_local.events).
        for key in [k for k, (_, used) in list(self._cache.items()) if used < cutoff]:
            self._cache.pop(key, None)
        if len(self._parents) > 4 * max(len(self._cache), 256):
            self._parents.clear()


class PsutilFacts:
    """Facts from psutil.Process (macOS, Windows, and Linux when asked), cached per (pid, create time)."""

    def __init__(self, hasher: ExeHasher, clock: Callable[[], float] = time.monotonic) -> None:
        import psutil

        self._psutil = psutil
        self.hasher = hasher
        self._clock = clock
        self._cache: dict[tuple[int, float], tuple[ProcessFacts, float]] = {}

    def get(self, pid: int) -> ProcessFacts | None:
        psutil = self._psutil
        try:
            proc = psutil.Process(pid)
            created = proc.create_time()
        except (psutil.Error, OSError):
            return None
        now = self._clock()
        key = (pid, created)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache[key] = (cached[0], now)
            return cached[0]
        facts = self._read(proc, created)
        self._cache[key] = (facts, now)
        return facts

    def _read(self, proc: object, created: float) -> ProcessFacts:
        psutil = self._psutil
        info = proc.as_dict(["ppid", "name", "exe", "cmdline", "username"])  # type: ignore[attr-defined]
        exe = info.get("exe") or None
        parent_name = parent_path = None
        ppid = info.get("ppid")
        if ppid:
            try:
                parent = psutil.Process(ppid)
                parent_name = parent.name()
                # Separately: a parent owned by another user often shows its name but not its exe.
                parent_path = parent.exe() or None
            except (psutil.Error, OSError):
                pass
        return ProcessFacts(
            pid=proc.pid, ppid=ppid, name=info.get("name"), exe=exe,  # type: ignore[attr-defined]
            command_line=join_argv(info.get("cmdline")), username=info.get("username"), start_time=created,
            parent_name=parent_name, parent_path=parent_path,
            exe_sha256=self.hasher.sha256(exe, exe) if exe else None,
        )

    def forget_stale(self) -> None:
        cutoff = self._clock() - _FORGET_AFTER_S
        for key in [k for k, (_, used) in self._cache.items() if used < cutoff]:
            del self._cache[key]
