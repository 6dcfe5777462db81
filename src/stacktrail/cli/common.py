"""What every `stacktrail` subcommand does first: load settings, or exit 2 saying why;
and the event loop the main job runs on."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
import uvloop

from stacktrail.config import EventLoop, Settings, SettingsError, load_settings
from stacktrail.telemetry.logging import setup_logging


def settings_or_exit(**overrides: Any) -> Settings:
    """Validated settings with logging set up; invalid settings end the command (exit 2)."""
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        typer.echo(f"stacktrail: {exc}", err=True)
        raise typer.Exit(2) from None
    setup_logging(settings.log_level, settings.log_format, worker=settings.worker_number)
    return settings


T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T], settings: Settings) -> T:
    """Run `main` on the event loop the settings choose (STACKTRAIL_EVENT_LOOP)."""
    if settings.event_loop is EventLoop.UVLOOP:
        return uvloop.run(main)
    return asyncio.run(main)
