"""The `stacktrail` command."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from stacktrail import __version__
from stacktrail.cli.common import run_loop, settings_or_exit
from stacktrail.cli.jobs import register as register_jobs
from stacktrail.cli.keys import register as register_keys
from stacktrail.cli.read import register as register_read
from stacktrail.cli.validate import register as register_validate

app = typer.Typer(
    name="stacktrail",
    help=(
        "Per-project audit trails for OpenStack: consumes CADF audit events from RabbitMQ, "
        "indexes them into Elasticsearch/OpenSearch and delivers each project's events into "
        "the project's own Swift container.\n\n"
        "Settings come from STACKTRAIL_* environment variables and the optional TOML file "
        "named by STACKTRAIL_CONFIG; see `stacktrail settings`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
log = logging.getLogger("stacktrail")


@app.command()
def run(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Run only these parts (repeatable): pipeline, api, scheduler. Default: all.",
        ),
    ] = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Local mode: serve the web UI without sign-in (every visitor is a cloud "
            "admin; same as STACKTRAIL_AUTH_MODE=noauth), on a loopback address only.",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=32,
            help="Pipeline processes on the queue: this one and N-1 children (one busy core "
            "each; same as STACKTRAIL_WORKERS). Default: 1.",
        ),
    ] = None,
) -> None:
    """Run the service until SIGTERM or Ctrl-C.

    Runs the ingest pipeline (RabbitMQ -> search + archive), the config API and web UI,
    and the scheduler, in one process; with --workers N, N-1 more pipeline processes
    beside it, each with a spool of its own.

    On SIGTERM it stops consuming, finishes and acks what is in flight within the grace
    period (STACKTRAIL_SHUTDOWN_GRACE), and exits 0; anything not yet durable stays in
    RabbitMQ or the local spool for the next start.
    """
    from stacktrail.app import Role
    from stacktrail.app import run as run_app

    overrides: dict[str, object] = {"auth_mode": "noauth"} if local else {}
    if workers is not None:
        overrides["workers"] = workers
    settings = settings_or_exit(**overrides)
    try:
        roles = {Role(part) for part in only} if only else set(Role)
    except ValueError:
        typer.echo("stacktrail: --only takes pipeline, api or scheduler", err=True)
        raise typer.Exit(2) from None
    log.info("stacktrail %s starting: %s", __version__, ", ".join(sorted(roles)))
    try:
        run_loop(run_app(settings, roles, explicit=bool(only)), settings)
    except Exception as exc:
        log.error("stacktrail stopped on an error: %s", exc, exc_info=settings.log_level == "DEBUG")
        raise typer.Exit(1) from None
    log.info("stacktrail stopped")


db_app = typer.Typer(help="The config database (SQLite or PostgreSQL).", no_args_is_help=True)
archive_app = typer.Typer(help="The archive spool and its deliveries.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(archive_app, name="archive")
policy_app = typer.Typer(help="The role rules (oslo.policy).", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
register_jobs(app)
register_keys(app)
register_validate(app)
register_read(app)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the config database (STACKTRAIL_DATABASE_URL) to this version."""
    from stacktrail.db import engine as db

    settings = settings_or_exit()
    try:
        asyncio.run(db.upgrade(settings.database_url, settings=settings))
    except Exception as exc:
        typer.echo(f"stacktrail: database upgrade failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"database {db.display_url(settings.database_url)} is at revision {db.head_revision()}"
    )


@archive_app.command("flush")
def archive_flush(
    timeout: Annotated[
        float, typer.Option(help="Give up after this many seconds; the rest stays spooled.")
    ] = 300.0,
) -> None:
    """Seal every spool segment and deliver it now (e.g. before maintenance).

    When a stacktrail service is running on this spool, it is asked (SIGUSR1) to flush.
    """
    import time

    from stacktrail.app import flush_archive

    settings = settings_or_exit()
    try:
        result = asyncio.run(flush_archive(settings, time.monotonic() + timeout))
    except Exception as exc:
        typer.echo(f"stacktrail: archive flush failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(result)


@app.command("settings")
def showsettings_or_exit() -> None:
    """Print the effective settings (secrets hidden) and exit; exit 2 if they are invalid."""
    from stacktrail.config import display_value

    settings = settings_or_exit()
    for name, value in settings.model_dump(mode="json").items():
        typer.echo(f"STACKTRAIL_{name.upper()}={display_value(name, value)}")


@policy_app.command("sample")
def policy_sample(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default: stdout.")
    ] = None,
) -> None:
    """Print every default rule as a commented YAML policy file, to copy into
    STACKTRAIL_POLICY_FILE and change."""
    from oslo_config import cfg
    from oslo_policy import generator

    args = ["--namespace", "stacktrail"]
    if output is not None:
        args += ["--output-file", str(output)]
    generator.generate_sample(args, conf=cfg.ConfigOpts())


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app(prog_name="stacktrail")


if __name__ == "__main__":
    main()
    sys.exit(0)
