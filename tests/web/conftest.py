"""Fixtures of the web tests (defined in tests/support/web.py)."""

from tests.support.web import (
    browser,
    page,
    ui,
    ui_settings,
)

__all__ = ["browser", "page", "ui", "ui_settings"]
