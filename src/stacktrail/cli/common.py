"""What every `stacktrail` subcommand does first: load settings, or exit 2 saying why."""

from __future__ import annotations

from typing import Any

import typer

from stacktrail.config import Settings, SettingsError, load_settings
from stacktrail.telemetry.logging import setup_logging


def settings_or_exit(**overrides: Any) -> Settings:
    """Validated settings with logging set up; invalid settings end the command (exit 2)."""
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        typer.echo(f"stacktrail: {exc}", err=True)
        raise typer.Exit(2) from None
    setup_logging(settings.log_level, settings.log_format)
    return settings
