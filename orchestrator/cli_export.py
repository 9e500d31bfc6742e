"""`connhunt export`: the store of any input as Parquet, for other engines and other analysts."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli_common import QuietOpt, err, reports_errors
from orchestrator.errors import InputError
from orchestrator.pipeline import ingest_files
from orchestrator.sources.bulk import export
from orchestrator.store import Store


class ExportFormat(str, Enum):
    parquet = "parquet"


def register(app: typer.Typer) -> None:
    @app.command("export")
    @reports_errors
    def export_files(
        files: Annotated[list[Path], typer.Argument(help="Input in any format `connhunt score` reads.")],
        output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write <table>.parquet into.")],
        fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="Output format.")] = ExportFormat.parquet,
        skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip malformed lines (counted).")] = False,
        quiet: QuietOpt = False,
    ) -> None:
        """Normalise FILES into connhunt's schema and write one Parquet file per table (connections, listeners, dns,
        health). `connhunt score` reads them back, as do DuckDB, Spark or pandas.

        Example: connhunt export hunt-H.1234.duckdb web1.jsonl -o fleet-parquet/
        """
        if output.exists() and not output.is_dir():
            raise InputError(f"{output}: exists and is not a folder")
        store = Store()
        ingest_files(files, store, skip_bad=skip_bad)
        try:
            written = export(store, output)
        except OSError as exc:
            raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
        if not quiet:
            for table, path in written.items():
                err.print(f"{path}: {store.count(table)} {table} rows", highlight=False)
