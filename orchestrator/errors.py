"""One exception base for connhunt; each error carries where it came from and prints as one line.

Helpers raise; only the CLI turns an error into an exit status (see ``ExitCode``).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # finished; findings (if any) printed
    FINDINGS = 1  # findings at or above --fail-on
    BAD_INPUT = 2  # bad usage or bad input
    COLLECTION_FAILED = 3  # collection failed: server unreachable, credentials refused, hunt unknown/expired


class ConnhuntError(Exception):
    """Base of every error connhunt reports to the user as one line."""

    exit_code: ExitCode = ExitCode.BAD_INPUT


class InputError(ConnhuntError):
    """Bad input: the message starts with ``file:line``."""

    exit_code = ExitCode.BAD_INPUT


class CollectionError(ConnhuntError):
    """Collection could not be done (permissions, server, hunt)."""

    exit_code = ExitCode.COLLECTION_FAILED
