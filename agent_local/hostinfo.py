"""Who this collector is: host name, a stable host id and the OS family, as the records spell them."""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass

_MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


@dataclass(frozen=True)
class HostInfo:
    host: str
    host_id: str
    os: str  # "linux", "windows" or "darwin" (else sys.platform as is)


def os_name() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform.startswith("win"):
        return "windows"
    return sys.platform  # "darwin" on macOS; other BSDs keep their own name


def machine_id() -> str | None:
    for path in _MACHINE_ID_FILES:
        try:
            with open(path, encoding="ascii", errors="replace") as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if text:
            return text
    return None


def host_info(host: str | None = None, host_id: str | None = None) -> HostInfo:
    """The host as given (the lab runs one collector per network namespace, each its own "host"), else this one.

    An explicit ``host`` without ``host_id`` uses the host name as id too: namespaces share /etc/machine-id, so the
    machine id would merge hosts that the caller asked to keep apart.
    """
    name = host or socket.gethostname()
    ident = host_id or (name if host else (machine_id() or name))
    return HostInfo(host=name, host_id=ident, os=os_name())
