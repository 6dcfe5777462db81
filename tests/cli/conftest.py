"""This folder's tests share a config store of their own (they count what is in it)."""

from tests.support.config_store import store

__all__ = ["store"]
