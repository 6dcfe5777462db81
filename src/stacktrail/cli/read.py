"""`stacktrail read`: a project's archived records for a time frame, to stdout."""

from __future__ import annotations

import csv
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from stacktrail.cli.common import settings_or_exit
from stacktrail.cli.sources import OsCloud, close_source, open_source
from stacktrail.cli.timeargs import parse_time
from stacktrail_reader.clouds import CloudConfigError
from stacktrail_reader.records import ArchiveReader, Filters
from stacktrail_reader.sources import SourceError

CSV_FIELDS = ("id", "eventTime", "action", "outcome", "eventType", "initiator", "target")


class Format(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"


def _cell(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None and name in {"initiator", "target"}:
        value = record.get(f"{name}_id")  # records of csv archives
    if value is None:
        return ""
    if isinstance(value, dict):
        return str(value.get("id", ""))
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def read_command(
    project: Annotated[str, typer.Option("--project", help="Project id.")],
    start: Annotated[str, typer.Option("--from", help="ISO 8601 time (UTC), inclusive.")],
    end: Annotated[str, typer.Option("--to", help="ISO 8601 time (UTC), exclusive.")],
    region: Annotated[
        str | None, typer.Option("--region", help="Default: the first archive region.")
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="A downloaded copy of the container; default: the store."),
    ] = None,
    output: Annotated[Format, typer.Option("--format", help="ndjson or csv.")] = Format.NDJSON,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            help="NAME=VALUE, NAME one of action, outcome, event_type, initiator, "
            "target_type (repeatable; the same NAME twice means either).",
        ),
    ] = None,
    container: Annotated[
        str | None, typer.Option(help="Default: STACKTRAIL_ARCHIVE_CONTAINER.")
    ] = None,
    prefix: Annotated[str | None, typer.Option(help="Default: STACKTRAIL_ARCHIVE_PREFIX.")] = None,
    os_cloud: OsCloud = None,
) -> None:
    """Stream the records with --from <= eventTime < --to, each once (by CADF id).

    Objects that cannot be read are reported on stderr and skipped (exit 1 at the end).
    Without --dir it reads Swift with your own credentials: the clouds.yaml entry
    --os-cloud (or OS_CLOUD), else the OS_* variables (when OS_AUTH_URL is set), else
    the store stacktrail's settings configure.
    """
    settings = settings_or_exit()
    region = region or settings.archive_regions[0]
    prefix = settings.archive_prefix if prefix is None else prefix
    try:
        wanted = Filters.parse(filters or [])
    except ValueError as exc:
        typer.echo(f"stacktrail: --filter: {exc}", err=True)
        raise typer.Exit(2) from None
    first, last = parse_time(start, "--from"), parse_time(end, "--to")
    assert first is not None
    assert last is not None
    errors = 0

    def on_error(key: str, exc: Exception) -> None:
        nonlocal errors
        errors += 1
        typer.echo(f"stacktrail: skipped {key}: {exc}", err=True)

    try:
        source = open_source(
            settings, directory, project, region, container or settings.archive_container, os_cloud
        )
    except (SourceError, CloudConfigError) as exc:
        typer.echo(f"stacktrail: {exc}", err=True)
        raise typer.Exit(2) from None
    reader = ArchiveReader(source, project, region, prefix=prefix, on_error=on_error)
    out = sys.stdout.buffer
    writer = None
    if output is Format.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
    try:
        for record in reader.records(first, last, wanted):
            if writer is not None:
                writer.writerow([_cell(record, name) for name in CSV_FIELDS])
            else:
                out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
    except SourceError as exc:
        typer.echo(f"stacktrail: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        sys.stdout.flush()
        out.flush()
        close_source(source)
    raise typer.Exit(1 if errors else 0)


def register(app: typer.Typer) -> None:
    app.command("read")(read_command)
