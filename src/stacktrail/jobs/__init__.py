"""Scheduled and on-demand work: the scheduler with its leader lock, timeframe exports
from search, search-sourced delivery, retention in search and in the archive.

What other packages use:
- the composition root: `run_scheduler(settings, store, search, object_store, stop_event)`
  (jobs/scheduler.py);
- the command: `register(app)` or `export_command` / `retention_command` (jobs/cli.py);
- the API: `router` (jobs/routes.py), and for a trail's status
  `retention_update_status(engine, project_id)` and `delivery_state(engine, project_id)`.
"""

from __future__ import annotations

from stacktrail.jobs.archive_retention import RetentionUpdate, retention_update_status
from stacktrail.jobs.scheduler import SchedulerConfig, leader_info, run_scheduler
from stacktrail.jobs.search_delivery import DeliveryState, delivery_state

__all__ = [
    "DeliveryState",
    "RetentionUpdate",
    "SchedulerConfig",
    "delivery_state",
    "leader_info",
    "retention_update_status",
    "run_scheduler",
]
