"""Fixtures of the api tests (defined in tests/support/api.py)."""

from tests.support.api import (
    app,
    client,
    emitted,
    keystone,
    keystone_app,
    keystone_client,
    keystone_settings,
    users,
)

__all__ = [
    "app",
    "client",
    "emitted",
    "keystone",
    "keystone_app",
    "keystone_client",
    "keystone_settings",
    "users",
]
