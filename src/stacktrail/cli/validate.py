"""`stacktrail validate`: check a project's archive against its signed digests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from stacktrail.cli.common import settings_or_exit
from stacktrail.cli.sources import OsCloud, close_source, open_source
from stacktrail.cli.timeargs import parse_time
from stacktrail.domain.durations import parse_duration
from stacktrail_reader import digest as d
from stacktrail_reader.clouds import CloudConfigError
from stacktrail_reader.sources import Source, SourceError
from stacktrail_reader.validate import Report, load_keys, validate


def _print(report: Report) -> None:
    for period in report.periods:
        start = d.iso(period.start)
        if period.valid:
            typer.echo(f"{start}  valid  ({period.objects} objects)  {period.digest_key}")
            continue
        for finding in period.findings:
            typer.echo(f"{start}  {finding.problem.value}  {finding.key}: {finding.detail}")
    for key in report.pending:
        typer.echo(f"pending  {key}: delivered after the newest digest")
    invalid = sum(not p.valid for p in report.periods)
    typer.echo(
        f"{len(report.periods)} period(s), {invalid} with problems, "
        f"{report.expired} object(s) expired, {len(report.pending)} pending"
    )


def validate_command(
    project: Annotated[str, typer.Option("--project", help="Project id.")],
    region: Annotated[
        str | None, typer.Option("--region", help="Default: the first archive region.")
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="A downloaded copy of the container; default: the store."),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="Trust only these public keys (PEM, repeatable); default: the keys in "
            "the container's digests/keys/.",
        ),
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="ISO 8601 time (UTC).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO 8601 time (UTC).")] = None,
    container: Annotated[
        str | None, typer.Option(help="Default: STACKTRAIL_ARCHIVE_CONTAINER.")
    ] = None,
    prefix: Annotated[str | None, typer.Option(help="Default: STACKTRAIL_ARCHIVE_PREFIX.")] = None,
    write_delay: Annotated[
        str,
        typer.Option(
            "--write-delay",
            help="How long after its period a digest may still be missing at the end of "
            "the chain (e.g. 15m, 1h); later it is a broken chain.",
        ),
    ] = "15m",
    os_cloud: OsCloud = None,
) -> None:
    """Check every digest of a project and region and the objects it lists.

    Reports per period: valid, missing object, changed object, object not in any
    digest, broken chain, bad signature. Digests missing after the newest one are a
    broken chain once their period ended more than --write-delay ago, unless --to
    ends before them. Exit 0 only when everything checks, 1 when something does not,
    2 on bad arguments or an unreadable source.

    Without --dir it reads Swift with your own credentials: the clouds.yaml entry
    --os-cloud (or OS_CLOUD), else the OS_* variables (when OS_AUTH_URL is set), else
    the store stacktrail's settings configure.
    """
    try:
        delay = parse_duration(write_delay)
    except ValueError as exc:
        typer.echo(f"stacktrail: --write-delay: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = settings_or_exit()
    region = region or settings.archive_regions[0]
    prefix = settings.archive_prefix if prefix is None else prefix
    source: Source | None = None
    try:
        source = open_source(
            settings, directory, project, region, container or settings.archive_container, os_cloud
        )
        if public_key:
            keys = {}
            for path in public_key:
                try:
                    public = d.load_public_key(path.read_bytes())
                except (OSError, ValueError) as exc:
                    typer.echo(f"stacktrail: --public-key {path}: {exc}", err=True)
                    raise typer.Exit(2) from None
                keys[d.fingerprint(public)] = public
        else:
            keys = load_keys(source, prefix)
        with Progress(
            "validating",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
            console=Console(stderr=True),
            disable=not sys.stderr.isatty(),
        ) as bar:
            task = bar.add_task("digests", total=None)
            report = validate(
                source,
                project,
                region,
                keys,
                prefix=prefix,
                start=parse_time(start, "--from"),
                end=parse_time(end, "--to"),
                write_delay=delay,
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except (SourceError, CloudConfigError) as exc:
        typer.echo(f"stacktrail: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        if source is not None:
            close_source(source)
    _print(report)
    if not report.periods:
        typer.echo("no digest found", err=True)
    raise typer.Exit(0 if report.valid else 1)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_command)
