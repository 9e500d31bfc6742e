"""One pass over /proc: which process holds which socket inode, and the per-process facts /proc can tell.

The pass opens each /proc/<pid>/fd once as a directory fd and reads its links relative to it (``readlink`` with
``dir_fd``), so a socket costs one syscall; the process facts (stat, exe, cmdline, status) are read only for the
processes that hold a socket the caller wants, never for every process.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

PROC = "/proc"
_SOCKET_PREFIX = "socket:["
_O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
_NO_ACCESS = (errno.EACCES, errno.EPERM)
_STDIO_FDS = ("0", "1", "2")


@dataclass
class OwnerScan:
    """What one pass over /proc found."""

    owners: dict[int, int] = field(default_factory=dict)  # socket inode -> pid (the lowest pid holding it)
    stats: dict[int, tuple[str, int, int]] = field(default_factory=dict)  # pid -> read_stat() of each owner
    processes: int = 0  # processes looked at
    denied: int = 0  # processes whose fd table we may not read (another user's, without root)
    # (pid, fd name, inode) of remembered fds trusted without a readlink before the socket tables were known;
    # OwnerScanner.confirm re-reads those whose socket is gone
    trusted: list[tuple[int, str, int]] = field(default_factory=list)
    # socket inodes that are fd 0, 1 or 2 of some process: a shell whose stdio is a network socket (reverse shell),
    # whether it opened the socket itself or inherited it from the parent that holds it
    stdio: set[int] = field(default_factory=set)


def pids(root: str = PROC) -> list[int]:
    """Process ids in ascending order (so a socket shared after fork is credited to the parent that made it)."""
    return sorted(int(name) for name in os.listdir(root) if name.isdigit())


class OwnerScanner:
    """Finds socket owners tick after tick, remembering each process's socket fds between ticks.

    A steady process with thousands of connections then costs one listdir per tick instead of a readlink per fd.
    A remembered fd -> socket X is trusted (not read again) only while X is still in the socket table and was held
    by exactly one fd last tick. A fd can only be silently reused for another socket Y while X lives on elsewhere
    (dup, fork, fd passing); that other holder is a new fd or a new process, which is always read, so X shows up
    twice and the remembered fd is read again on the next tick: a stale entry lasts at most one tick. Every
    ``full_every`` scans everything is read anyway, for holders this user cannot see. Cached fds are dropped when
    the pid's start time changes (pid reuse).
    """

    def __init__(self, root: str = PROC, full_every: int = 30) -> None:
        self.root = root
        self.full_every = full_every
        # pid -> (start ticks, {fd name: socket inode}); only socket fds are remembered
        self._fds: dict[int, tuple[int, dict[str, int]]] = {}
        self._held_once: set[int] = set()  # inodes held by exactly one fd at the last scan
        self._scans = 0

    def scan(self, wanted: Collection[int] | None, alive: Collection[int] | None = (), *,
             full: bool = False) -> OwnerScan:
        """Map the wanted socket inodes (all when None) to the pid holding them, with each owner's stat line.

        ``alive`` is every inode in the socket tables now (a remembered fd is trusted only if its socket is in
        it); None when the tables are still being read, in which case the trusted fds are listed in the result
        for ``confirm``. ``full`` reads every fd regardless. A socket held by several processes (inherited across
        fork) is credited to the lowest pid, usually the one that created it: the reverse shell rather than each
        command it runs.
        """
        full = full or self._scans % self.full_every == 0
        self._scans += 1
        scan = OwnerScan()
        owners = scan.owners
        readlink = os.readlink
        prefix = _SOCKET_PREFIX
        root = self.root
        previous = self._fds
        held_once = self._held_once
        trusted = scan.trusted
        check_alive = alive is not None
        remembered: dict[int, tuple[int, dict[str, int]]] = {}
        seen: set[int] = set()
        shared: set[int] = set()
        for pid in pids(root):
            scan.processes += 1
            stat = None
            known: dict[str, int] = {}
            cached = None if full else previous.get(pid)
            if cached is not None:
                stat = read_stat(pid, root)
                if stat is not None and stat[2] == cached[0]:
                    known = cached[1]
            try:
                dir_fd = os.open(f"{root}/{pid}/fd", _O_DIR)
            except OSError as exc:
                if exc.errno in _NO_ACCESS:
                    scan.denied += 1
                continue  # ENOENT: exited since listdir
            sockets: dict[str, int] = {}
            try:
                try:
                    names = os.listdir(dir_fd)
                except OSError as exc:
                    if exc.errno in _NO_ACCESS:
                        scan.denied += 1
                    continue
                if not known:
                    # Nothing remembered: read every fd (the hot loop of a first snapshot, kept minimal).
                    for name in names:
                        try:
                            link = readlink(name, dir_fd=dir_fd)
                        except OSError:
                            continue  # closed between listdir and readlink
                        if link.startswith(prefix):
                            sockets[name] = int(link[8:-1])
                else:
                    for name in names:
                        inode = known.get(name)
                        if inode is not None and inode in held_once and not check_alive:
                            trusted.append((pid, name, inode))
                        elif inode is None or inode not in held_once or inode not in alive:  # type: ignore[operator]
                            try:
                                link = readlink(name, dir_fd=dir_fd)
                            except OSError:
                                continue
                            if not link.startswith(prefix):
                                continue
                            inode = int(link[8:-1])
                        sockets[name] = inode
            finally:
                os.close(dir_fd)
            if not sockets:
                continue
            for name in _STDIO_FDS:
                inode = sockets.get(name)
                if inode is not None:
                    scan.stdio.add(inode)
            # Set algebra in C rather than a Python step per socket: which are shared, which are new owners.
            held = set(sockets.values())
            if len(held) != len(sockets):
                shared.update(_duplicates(sockets.values()))  # the same socket at two fds of one process
            shared |= seen & held
            seen |= held
            mine = held - owners.keys()
            if wanted is not None:
                mine.intersection_update(wanted)
            owners.update(dict.fromkeys(mine, pid))
            # Read the stat in the same pass, while it is most likely still the same process.
            stat = stat or read_stat(pid, root)
            if stat is not None:
                if mine:
                    scan.stats[pid] = stat
                remembered[pid] = (stat[2], sockets)
        self._fds = remembered
        self._held_once = seen - shared
        return scan

    def confirm(self, scan: OwnerScan, alive: Collection[int]) -> None:
        """Re-read the fds ``scan`` trusted whose socket is no longer in the tables: the fd may hold a new one."""
        changed = False
        for pid, name, inode in scan.trusted:
            if inode in alive:
                continue
            changed = True
            remembered = self._fds.get(pid)
            try:
                link = os.readlink(f"{self.root}/{pid}/fd/{name}")
            except OSError:
                link = ""
            if not link.startswith(_SOCKET_PREFIX):
                if remembered is not None:
                    remembered[1].pop(name, None)
                continue
            new_inode = int(link[8:-1])
            if remembered is not None:
                remembered[1][name] = new_inode
            if name in _STDIO_FDS:
                scan.stdio.add(new_inode)
            holder = scan.owners.get(new_inode)
            if holder is None or pid < holder:
                scan.owners[new_inode] = pid
                if pid not in scan.stats:
                    stat = read_stat(pid, self.root)
                    if stat is not None:
                        scan.stats[pid] = stat
        scan.trusted = []
        if changed:
            # Recount holders so that sharing revealed by the re-read is not trusted next tick.
            seen: set[int] = set()
            shared: set[int] = set()
            for _, sockets in self._fds.values():
                for inode in sockets.values():
                    (shared if inode in seen else seen).add(inode)
            self._held_once = seen - shared


def _duplicates(values: Iterable[int]) -> set[int]:
    once: set[int] = set()
    twice: set[int] = set()
    for value in values:
        (twice if value in once else once).add(value)
    return twice


def scan_socket_owners(wanted: Collection[int] | None, root: str = PROC) -> OwnerScan:
    """One full pass with nothing remembered (see OwnerScanner.scan)."""
    return OwnerScanner(root).scan(wanted, full=True)


def find_socket_owner(inode: int, root: str = PROC) -> int | None:
    """The pid holding one socket inode, newest processes first (a fresh query's sender is usually new)."""
    target = f"{_SOCKET_PREFIX}{inode}]"
    for pid in reversed(pids(root)):
        try:
            dir_fd = os.open(f"{root}/{pid}/fd", _O_DIR)
        except OSError:
            continue
        try:
            for name in os.listdir(dir_fd):
                try:
                    if os.readlink(name, dir_fd=dir_fd) == target:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
        finally:
            os.close(dir_fd)
    return None


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb", buffering=0) as handle:
            return handle.read(1 << 20)
    except OSError:
        return None


def read_stat(pid: int, root: str = PROC) -> tuple[str, int, int] | None:
    """(comm, ppid, start time in clock ticks since boot) from /proc/<pid>/stat, or None if it has gone."""
    data = _read(f"{root}/{pid}/stat")
    if not data:
        return None
    # comm may itself hold spaces and parentheses: it runs from the first "(" to the last ")".
    open_paren = data.find(b"(")
    close_paren = data.rfind(b")")
    if open_paren < 0 or close_paren < 0:
        return None
    comm = text(data[open_paren + 1:close_paren])
    rest = data[close_paren + 2:].split()
    try:
        return comm, int(rest[1]), int(rest[19])  # fields 4 (ppid) and 22 (starttime) of proc(5)
    except (IndexError, ValueError):
        return None


def text(raw: bytes) -> str:
    """Text from bytes the kernel hands over as is: invalid UTF-8 becomes visible \\xNN escapes, never lone
    surrogates, so every record stays valid UTF-8 JSON while keeping what the bytes were."""
    return raw.decode("utf-8", "backslashreplace")


def read_exe(pid: int, root: str = PROC) -> str | None:
    """The executable's path (with " (deleted)" if it was unlinked), None for kernel threads or when denied."""
    try:
        return text(os.readlink(f"{root}/{pid}/exe".encode()))
    except OSError:
        return None


def read_cmdline(pid: int, root: str = PROC) -> list[str] | None:
    data = _read(f"{root}/{pid}/cmdline")
    if data is None:
        return None
    if not data:
        return []  # kernel threads and zombies
    decoded = text(data).rstrip("\0")
    args = decoded.split("\0")
    if len(args) == 1 and " " in args[0]:
        # A process that rewrote its title (setproctitle) leaves one space-separated string, NUL-terminated or
        # not; split it as psutil does.
        return args[0].split(" ")
    return args


def read_uid(pid: int, root: str = PROC) -> int | None:
    """The real uid from /proc/<pid>/status (the user who started it, as ps shows)."""
    data = _read(f"{root}/{pid}/status")
    if data is None:
        return None
    start = data.find(b"\nUid:")
    if start < 0:
        return None
    try:
        return int(data[start + 5:data.index(b"\n", start + 1)].split()[0])
    except (ValueError, IndexError):
        return None


def boot_time(root: str = PROC) -> float | None:
    data = _read(f"{root}/stat")
    if data is None:
        return None
    start = data.find(b"\nbtime ")
    if start < 0:
        return None
    return float(data[start + 7:data.index(b"\n", start + 1)])


def clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100
