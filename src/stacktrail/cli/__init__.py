"""The `stacktrail` command: one module per group of commands, `main` is the entry point."""

from stacktrail.cli.main import main

__all__ = ["main"]
