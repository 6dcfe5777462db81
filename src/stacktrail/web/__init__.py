"""The web UI: sign in with Keystone, a project's trail and its delivery status, and the
operator's view of every trail; served by the API's own application."""

from stacktrail.web.mount import mount_ui

__all__ = ["mount_ui"]
