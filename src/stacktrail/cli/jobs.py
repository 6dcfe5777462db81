"""`stacktrail export` and `stacktrail retention` (registered by stacktrail/cli.py).

Exit codes: 0 done (an empty time frame included: nothing is written and a message
says so), 1 failed while running (search or store unreachable; an export then resumes
when the same command is run again), 2 unusable arguments or settings (inverted frame,
a project with no index, neither or both of --out and --to-swift), 130 interrupted
(Ctrl-C or SIGTERM; resumable like 1).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer

from stacktrail.archive.expiry import ArchiveExpiry
from stacktrail.archive.export import Exporter, ExportResult, ExportSpec
from stacktrail.archive.layout import InvalidName, check_container, normalise_prefix
from stacktrail.archive.stores import ObjectStore, open_store
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.cli.common import settings_or_exit
from stacktrail.cli.progress import terminal_progress
from stacktrail.config import Settings
from stacktrail.db import engine as db
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.errors import ClientError
from stacktrail.domain.export import ExportCheckpoint
from stacktrail.domain.timeframe import Timeframe, TimeframeError, iso
from stacktrail.domain.trail import ArchiveFormat, ArchiveStore, Trail, default_trail
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import SearchLayout
from stacktrail.search.reader import EventReader, NoIndexError, ReadMode
from stacktrail.search.retention import (
    Action,
    StoreRetention,
    apply_search_retention,
    plan_search_retention,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

CHECKPOINT_PREFIX = ".stacktrail-export-"


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def search_client(settings: Settings) -> SearchClient:
    if not settings.search_enabled:
        raise CliError("no search server: set STACKTRAIL_SEARCH_URL", 2)
    return SearchClient.from_settings(settings)


async def _read_trail(settings: Settings, project_id: str) -> Trail:
    """The project's trail from the config store; the settings' defaults if unusable."""
    try:
        await db.check_current(settings.database_url)
    except db.StoreError as exc:
        log.warning("config store not usable (%s): using the settings' defaults", exc)
        return default_trail(project_id, settings)
    store = TrailStore(db.create_engine(settings.database_url), settings)
    try:
        stored = await store.get_trail(project_id)
        return stored.trail()
    finally:
        await store.close()


# --- checkpoint files


@dataclass(frozen=True, slots=True)
class CheckpointFile:
    """The state of one export command, as a JSON file written atomically."""

    path: Path

    @classmethod
    def for_command(cls, directory: Path, *parts: str) -> CheckpointFile:
        """Named after the command's arguments as typed, so a relative frame (`-7d`)
        resumes with the times of its first run."""
        digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
        return cls(directory / f"{CHECKPOINT_PREFIX}{digest}.json")

    def load(self) -> tuple[Timeframe, ExportCheckpoint] | None:
        try:
            data: dict[str, Any] = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError) as exc:
            raise CliError(f"unreadable checkpoint {self.path}: {exc} (use --restart)", 2) from exc
        frame = Timeframe(datetime.fromisoformat(data["from"]), datetime.fromisoformat(data["to"]))
        return frame, ExportCheckpoint.from_json(data["checkpoint"])

    def save(self, frame: Timeframe, checkpoint: ExportCheckpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = orjson.dumps(
            {
                "from": frame.start.isoformat(),
                "to": frame.end.isoformat(),
                "checkpoint": checkpoint.to_json(),
            }
        )
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


# --- export


@dataclass(frozen=True, slots=True)
class Destination:
    store: ObjectStore
    container: str
    prefix: str
    checkpoint_dir: Path
    describe: str


def _destination(
    settings: Settings,
    out: Path | None,
    to_swift: str | None,
    checkpoint_dir: Path | None,
    make_swift: Callable[[Settings], ObjectStore] | None,
) -> Destination:
    if (out is None) == (to_swift is None):
        raise CliError("give exactly one of --out DIR and --to-swift CONTAINER[/PREFIX]", 2)
    if out is not None:
        directory = out.expanduser().resolve()
        if not directory.name:
            raise CliError(f"--out {out}: choose a directory below /", 2)
        directory.mkdir(parents=True, exist_ok=True)
        return Destination(
            LocalDirStore(directory.parent),
            directory.name,
            "",
            checkpoint_dir or directory,
            str(directory),
        )
    assert to_swift is not None
    container, _, prefix = to_swift.partition("/")
    try:
        check_container(container)
        prefix = normalise_prefix(prefix)
    except InvalidName as exc:
        raise CliError(f"--to-swift {to_swift}: {exc}", 2) from None
    if make_swift is None:
        if not settings.keystone_url:
            raise CliError("--to-swift needs Keystone: set STACKTRAIL_KEYSTONE_URL", 2)
        from stacktrail.archive.stores.swift import SwiftStore
        from stacktrail.keystone import KeystoneClient

        store: ObjectStore = SwiftStore(KeystoneClient(settings))
    else:
        store = make_swift(settings)
    return Destination(
        store,
        container,
        prefix,
        checkpoint_dir or Path("var/exports"),
        f"swift:{container}" + (f"/{prefix}" if prefix else ""),
    )


async def export(
    settings: Settings,
    *,
    project: str,
    time_from: str,
    time_to: str,
    fmt: ArchiveFormat | None,
    out: Path | None = None,
    to_swift: str | None = None,
    region: str | None = None,
    restart: bool = False,
    checkpoint_dir: Path | None = None,
    mode: ReadMode = ReadMode.AUTO,
    page_size: int = 2000,
    max_records: int = 100_000,
    make_swift: Callable[[Settings], ObjectStore] | None = None,
) -> ExportResult:
    """The export command's work (CliError carries the exit code)."""
    dest = _destination(settings, out, to_swift, checkpoint_dir, make_swift)
    client = search_client(settings)
    try:
        trail = await _read_trail(settings, project)
        chosen = fmt or trail.archive.format
        file = CheckpointFile.for_command(
            dest.checkpoint_dir, project, time_from, time_to, chosen.value, dest.describe
        )
        loaded = None if restart else file.load()
        if loaded is not None:
            frame, checkpoint = loaded
            typer.echo(
                f"resuming the export of {project} ({iso(frame.start)} .. {iso(frame.end)}) "
                f"after {checkpoint.events:,} events and {len(checkpoint.files)} files",
                err=True,
            )
        else:
            try:
                frame = Timeframe.parse(time_from, time_to)
            except TimeframeError as exc:
                raise CliError(str(exc), 2) from None
            checkpoint = None
        try:
            spec = ExportSpec(
                project_id=project,
                frame=frame,
                format=chosen,
                container=dest.container,
                prefix=dest.prefix,
                regions=(region or (trail.archive.regions or ("RegionOne",))[0],),
                retention_days=trail.retention_days,
                write_mode=trail.archive.write_mode,
            )
        except (InvalidName, ValueError) as exc:
            raise CliError(str(exc), 2) from None
        if checkpoint is not None and checkpoint.export_id != spec.export_id:
            checkpoint = None

        async def save(cp: ExportCheckpoint) -> None:
            await asyncio.to_thread(file.save, frame, cp)

        progress = terminal_progress(f"export {project}")
        exporter = Exporter(
            client,
            dest.store,
            spec,
            template=SearchLayout.from_settings(settings),
            checkpoint=checkpoint,
            save=save,
            progress=progress,
            reader=EventReader(client, page_size=page_size, mode=mode),
            max_records=max_records,
        )
        try:
            result = await exporter.run()
        except NoIndexError as exc:
            raise CliError(str(exc), 2) from None
        finally:
            close = getattr(progress, "close", None)
            if close is not None:
                close()
        file.remove()
        return result
    finally:
        await client.close()
        await dest.store.aclose()


def run_interruptible(job: Coroutine[Any, Any, T]) -> T:
    """Run `job`; SIGINT (Ctrl-C) or SIGTERM cancels it, so its `finally` blocks close
    clients and keep the checkpoint, and then raise KeyboardInterrupt (exit 130)."""

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        interrupted = False

        def interrupt() -> None:
            nonlocal interrupted
            interrupted = True
            task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupt)
        try:
            return await job
        except asyncio.CancelledError:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    return asyncio.run(main())


def _summary(project: str, frame: Timeframe, where: str, result: ExportResult) -> str:
    cp = result.checkpoint
    span = f"{iso(frame.start)} .. {iso(frame.end)}"
    if result.empty:
        return f"no events for project {project} in {span}: nothing written"
    days = ", ".join(f"{day}: {count:,}" for day, count in sorted(cp.day_counts.items()))
    return (
        f"exported {cp.events:,} events of project {project} ({span}) in {len(cp.files)} "
        f"files ({cp.bytes:,} bytes) to {where} [{days}]"
    )


def export_command(
    project: Annotated[str, typer.Option("--project", "-p", help="Keystone project id.")],
    time_from: Annotated[
        str,
        typer.Option("--from", help="Start (inclusive): ISO 8601, -7d, -12h, -30m or now."),
    ],
    time_to: Annotated[
        str, typer.Option("--to", help="End (exclusive): ISO 8601, -7d, -12h, -30m or now.")
    ] = "now",
    fmt: Annotated[
        ArchiveFormat | None,
        typer.Option("--format", help="json, ndjson or csv (default: the trail's format)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the files under this directory.")
    ] = None,
    to_swift: Annotated[
        str | None,
        typer.Option(
            "--to-swift",
            help="Write into this container (optionally /PREFIX) of the project's Swift account.",
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="Region in the object names and for Swift (default: the trail's first region).",
        ),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore the checkpoint of an earlier run.")
    ] = False,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint-dir",
            help="Where the resume checkpoint is kept (default: the --out directory, or "
            "./var/exports for --to-swift).",
        ),
    ] = None,
) -> None:
    """Export a project's events of a time frame from search into archive files.

    Files follow the archive layout, one or more per UTC event day
    (`<prefix>/<project>/<region>/YYYY/MM/DD/...`), in the chosen format. Running the
    same command again after an interruption resumes after the last file written; once
    finished, running it again writes the same names again. An empty time frame writes
    nothing and says so (exit 0).
    """
    settings = settings_or_exit()
    try:
        result = run_interruptible(
            export(
                settings,
                project=project,
                time_from=time_from,
                time_to=time_to,
                fmt=fmt,
                out=out,
                to_swift=to_swift,
                region=region,
                restart=restart,
                checkpoint_dir=checkpoint_dir,
            )
        )
    except CliError as exc:
        typer.echo(f"stacktrail export: {exc}", err=True)
        raise typer.Exit(exc.code) from None
    except KeyboardInterrupt:
        typer.echo("stacktrail export: interrupted; run the same command again to resume", err=True)
        raise typer.Exit(130) from None
    except (ClientError, OSError) as exc:
        typer.echo(
            f"stacktrail export: failed: {exc}\nrun the same command again to resume",
            err=True,
        )
        raise typer.Exit(1) from None
    where = str(out) if out is not None else f"swift:{to_swift}"
    typer.echo(_summary(project, result.frame, where, result))


# --- retention


async def retention(
    settings: Settings, *, dry_run: bool, projects: list[str] | None, now: datetime | None = None
) -> tuple[list[str], int]:
    """Plan (and unless `dry_run` apply) search retention, and archive expiry where the
    object store has no expirer of its own; returns lines and deleted documents."""
    sweep_archive = settings.archive_store is not ArchiveStore.SWIFT
    if not settings.search_enabled and not sweep_archive:
        raise CliError(
            "nothing to enforce: no search server (STACKTRAIL_SEARCH_URL), and Swift's "
            "expirer deletes archived objects itself",
            2,
        )
    try:
        await db.check_current(settings.database_url)
    except db.StoreError as exc:
        raise CliError(f"{exc} (retention needs every project's retention)", 2) from None
    store = TrailStore(db.create_engine(settings.database_url), settings)
    try:
        lines: list[str] = []
        deleted = 0
        if settings.search_enabled:
            lines, deleted = await _search_retention(settings, store, dry_run, projects, now)
        if sweep_archive:
            lines += await _archive_expiry(settings, store, dry_run, projects, now)
        return lines, deleted
    finally:
        await store.close()


async def _archive_expiry(
    settings: Settings,
    store: TrailStore,
    dry_run: bool,
    projects: list[str] | None,
    now: datetime | None,
) -> list[str]:
    objects = open_store(settings)
    try:
        summary = await ArchiveExpiry(store, objects).sweep(
            now, dry_run=dry_run, only=set(projects) if projects else None
        )
    finally:
        await objects.aclose()
    where = f"{settings.archive_store.value} archive"
    lines = [
        f"{where}: {'would delete' if dry_run else 'deleted'} {summary.deleted} objects past "
        f"their expiry (projects checked: {summary.projects})"
    ]
    lines += [
        f"{where}: project {p} could not be checked (see the log)" for p in summary.failed_projects
    ]
    return lines


async def _search_retention(
    settings: Settings,
    store: TrailStore,
    dry_run: bool,
    projects: list[str] | None,
    now: datetime | None,
) -> tuple[list[str], int]:
    client = search_client(settings)
    try:
        plan = await plan_search_retention(
            client,
            SearchLayout.from_settings(settings),
            StoreRetention(store),
            now or datetime.now(UTC),
            set(projects) if projects else None,
        )
        lines = [("would " if dry_run else "") + action.describe() for action in plan]
        if not plan:
            lines.append("nothing is past retention")
        deleted = 0 if dry_run else await apply_search_retention(client, plan)
        if not dry_run and plan:
            whole = sum(1 for a in plan if a.action is Action.DELETE)
            lines.append(
                f"deleted {whole} indices, trimmed {len(plan) - whole}, {deleted} documents"
            )
        return lines, deleted
    finally:
        await client.close()


def retention_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be deleted.")
    ] = False,
    project: Annotated[
        list[str] | None, typer.Option("--project", "-p", help="Only these projects.")
    ] = None,
) -> None:
    """Enforce retention now (the scheduler does this every hour).

    Search: delete indices wholly past each project's retention and trim the boundary
    index. Archive (S3 and file stores; Swift's expirer needs no help): delete objects
    past their expiry.
    """
    settings = settings_or_exit()
    try:
        lines, _ = asyncio.run(retention(settings, dry_run=dry_run, projects=project))
    except CliError as exc:
        typer.echo(f"stacktrail retention: {exc}", err=True)
        raise typer.Exit(exc.code) from None
    except ClientError as exc:
        typer.echo(f"stacktrail retention: failed: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in lines:
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add `export` and `retention` to the `stacktrail` command."""
    app.command("export")(export_command)
    app.command("retention")(retention_command)
