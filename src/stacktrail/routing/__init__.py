"""Routing: which projects' trails an audit event goes to (pure code, no I/O)."""

from stacktrail.routing.ids import is_valid_project_id
from stacktrail.routing.router import Router, owner_projects

__all__ = ["Router", "is_valid_project_id", "owner_projects"]
