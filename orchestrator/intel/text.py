"""Line reading shared by the text intel formats: numbered lines, the leading comment banner, quoted CSV fields."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from orchestrator.errors import InputError
from orchestrator.sources.base import open_input


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text without the line break) for every line; a line that is not UTF-8 is an InputError."""
    with open_input(path, "an intel file") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}:{number}: not UTF-8 text (byte {exc.start})") from None
            yield number, text.rstrip("\r\n")


def comment_text(line: str) -> str | None:
    """The text of a ``#`` comment line without the marker, or None when the line is not a comment."""
    stripped = line.lstrip()
    return stripped[1:].strip() if stripped.startswith("#") else None


def csv_fields(line: str, where: str) -> list[str]:
    """The fields of one CSV line as abuse.ch writes them: quoted, separated by ``,`` or ``", "``."""
    if line.count('"') % 2:
        raise InputError(f"{where}: unbalanced quotes (truncated line?)")
    try:
        return next(csv.reader([line], skipinitialspace=True, strict=True))
    except (csv.Error, StopIteration) as exc:
        raise InputError(f"{where}: malformed CSV: {exc}") from None
