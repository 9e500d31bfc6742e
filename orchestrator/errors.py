"""One exception base for connhunt; each error carries where it came from and prints as one line.

Helpers raise; only the CLI turns an error into an exit status (see ``ExitCode``, the one table of exit codes that
--help and the README show).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # finished; findings (if any) printed
    FINDINGS = 1  # findings at or above --fail-on
    BAD_INPUT = 2  # bad usage or bad input
    COLLECTION_FAILED = 3  # collection failed: server unreachable, credentials refused, hunt unknown/expired
    INTERRUPTED = 130  # Ctrl-C or SIGTERM (128 + SIGINT); triage/collect still save and score what they had
    OUTPUT_CLOSED = 141  # the reader of stdout went away (`| head`): 128 + SIGPIPE, as a shell reports it

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "ok (findings, if any, printed)",
    ExitCode.FINDINGS: "a finding at or above --fail-on",
    ExitCode.BAD_INPUT: "bad usage or bad input",
    ExitCode.COLLECTION_FAILED: "collection failed",
    ExitCode.INTERRUPTED: "interrupted (triage and collect still save what they collected)",
    ExitCode.OUTPUT_CLOSED: "stdout was closed by its reader",
}


def exit_codes_help() -> str:
    """The exit-code table as one sentence for --help."""
    return "Exit codes: " + "; ".join(f"{int(code)} {code.meaning}" for code in ExitCode) + "."


class ConnhuntError(Exception):
    """Base of every error connhunt reports to the user as one line."""

    exit_code: ExitCode = ExitCode.BAD_INPUT


class InputError(ConnhuntError):
    """Bad input: the message starts with ``file:line``."""

    exit_code = ExitCode.BAD_INPUT


class UsageError(ConnhuntError):
    """Options that cannot work together or cannot work at all, found before any work starts."""

    exit_code = ExitCode.BAD_INPUT


class CollectionError(ConnhuntError):
    """Collection could not be done (permissions, server, hunt)."""

    exit_code = ExitCode.COLLECTION_FAILED
