"""SHA-256 of executables, computed once per (path, size, mtime) and capped in size.

A collector that re-hashed every exe on every tick would spend its time reading binaries; the key changes when
the file is replaced, so a cached digest stays honest. Large files are skipped (and counted) rather than stalling
a tick, and unreadable ones are skipped without failing the snapshot.
"""

from __future__ import annotations

import hashlib
import os
import threading

DEFAULT_MAX_HASH_BYTES = 64 * 1024 * 1024
_CHUNK = 1 << 20


class ExeHasher:
    """Hashes executables with a cache; remembers what it skipped so a health record can say so."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_HASH_BYTES) -> None:
        self.max_bytes = max_bytes
        self._cache: dict[tuple[str, int, int], str | None] = {}
        self.too_big: set[str] = set()
        self.unreadable: set[str] = set()
        # The DNS capture thread and the sampler may both ask; hashing the same file twice is the only risk,
        # but the skip sets must not be resized mid-iteration by a health report.
        self._lock = threading.Lock()

    def sha256(self, open_path: str, path: str) -> str | None:
        """Digest of the file at ``open_path``, cached under ``path`` (the name the record shows).

        ``open_path`` may differ from ``path``: /proc/<pid>/exe still opens an exe that was deleted or lives in
        another mount namespace.
        """
        try:
            st = os.stat(open_path)
        except OSError:
            with self._lock:
                self.unreadable.add(path)
            return None
        key = (path, st.st_size, st.st_mtime_ns)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        if self.max_bytes >= 0 and st.st_size > self.max_bytes:
            digest = None
            with self._lock:
                self.too_big.add(path)
        else:
            digest = self._digest(open_path)
            if digest is None:
                with self._lock:
                    self.unreadable.add(path)
        with self._lock:
            self._cache[key] = digest
        return digest

    def _digest(self, open_path: str) -> str | None:
        hasher = hashlib.sha256()
        budget = self.max_bytes if self.max_bytes >= 0 else None
        try:
            with open(open_path, "rb", buffering=0) as handle:
                while True:
                    chunk = handle.read(_CHUNK)
                    if not chunk:
                        break
                    hasher.update(chunk)
                    if budget is not None:
                        budget -= len(chunk)
                        if budget < 0:
                            return None  # grew past the cap while we read it
        except OSError:
            return None
        return hasher.hexdigest()

    def skipped(self) -> tuple[list[str], list[str]]:
        """(too big, unreadable) paths, sorted, for the health record."""
        with self._lock:
            return sorted(self.too_big), sorted(self.unreadable)
