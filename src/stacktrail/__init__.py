"""stacktrail: per-project audit trails for OpenStack."""

__version__ = "0.1.0"
