"""The CSV layout abuse.ch exports share: a ``#`` banner, a quoted header row (commented out in ThreatFox's export,
plain in Feodo Tracker's), then one quoted row per indicator; ``"None"`` stands for no value.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from orchestrator.errors import InputError
from orchestrator.intel.text import comment_text, csv_fields, numbered_lines


def is_header(line: str, first_columns: tuple[str, ...]) -> bool:
    """Whether ``line`` (commented or not) is the header row that starts with ``first_columns``."""
    text = comment_text(line)
    text = line.strip() if text is None else text
    prefix = ",".join(f'"{column}"' for column in first_columns)
    return text.replace(", ", ",").startswith(prefix)


def csv_rows(path: Path, first_columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str | None]]]:
    """(line number, {column: value or None}) for each data row after the header row that ``first_columns`` opens."""
    columns: list[str] | None = None
    for number, line in numbered_lines(path):
        where = f"{path}:{number}"
        if columns is None:
            if is_header(line, first_columns):
                header = comment_text(line)
                columns = csv_fields(line.strip() if header is None else header, where)
            elif line.strip() and comment_text(line) is None:
                raise InputError(f"{where}: a data row before the header row ({', '.join(first_columns)}, ...)")
            continue
        if not line.strip() or comment_text(line) is not None:
            continue
        fields = csv_fields(line, where)
        if len(fields) != len(columns):
            raise InputError(f"{where}: {len(fields)} field(s) where the header has {len(columns)} (truncated line?)")
        yield number, {name: (None if value in ("", "None") else value) for name, value in zip(columns, fields)}
    if columns is None:
        raise InputError(f"{path}: no header row ({', '.join(first_columns)}, ...)")
