"""Running the export jobs the API queued (`db/export_jobs.py`): the leader takes the oldest
unfinished job, runs it with its checkpoint saved in the row after every object, and marks it
`done` or `failed`; transient failures are retried with backoff, permanent ones fail the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from stacktrail.archive.export import Exporter, ExportSpec, OnWritten
from stacktrail.archive.layout import InvalidName
from stacktrail.archive.stores.base import ObjectStore
from stacktrail.db.export_jobs import DONE, FAILED, MAX_ATTEMPTS, RUNNING, ExportJob, ExportJobs
from stacktrail.domain.errors import ClientError
from stacktrail.domain.export import ExportCheckpoint
from stacktrail.search.client import SearchClient
from stacktrail.search.reader import EventReader, Naming

log = logging.getLogger(__name__)


def spec_of(job: ExportJob) -> ExportSpec:
    """What the exporter needs of a stored job."""
    return ExportSpec(
        project_id=job.project_id,
        frame=job.frame,
        format=job.format,
        container=job.container,
        prefix=job.prefix,
        regions=job.regions,
        retention_days=job.retention_days,
        write_mode=job.write_mode,
    )


async def run_export_job(
    jobs: ExportJobs,
    job: ExportJob,
    client: SearchClient,
    store: ObjectStore,
    *,
    template: Naming,
    reader: EventReader | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_written: OnWritten | None = None,
) -> str:
    """Run (or resume) one job to its end or its next retry; returns the new status."""
    await jobs.start(job, now())

    async def save(cp: ExportCheckpoint) -> None:
        await jobs.save(job.id, cp)

    try:
        exporter = Exporter(
            client,
            store,
            spec_of(job),
            template=template,
            checkpoint=job.checkpoint,
            save=save,
            reader=reader,
            on_written=on_written,  # the ledger: the objects join the archive digests
        )
        result = await exporter.run()
    except (ClientError, InvalidName, ValueError) as exc:
        transient = isinstance(exc, ClientError) and exc.transient
        if transient and job.attempts + 1 < MAX_ATTEMPTS:
            log.warning("export %s of project %s: will retry: %s", job.id, job.project_id, exc)
            await jobs.finish(job.id, RUNNING, str(exc), now())
            return RUNNING
        log.error("export %s of project %s failed: %s", job.id, job.project_id, exc)
        await jobs.finish(job.id, FAILED, str(exc), now())
        return FAILED
    message = None
    if result.empty:
        message = "no events in the time frame"
    await jobs.finish(job.id, DONE, None, now())
    log.info(
        "export %s of project %s done: %d events in %d files%s",
        job.id,
        job.project_id,
        result.checkpoint.events,
        len(result.checkpoint.files),
        f" ({message})" if message else "",
    )
    return DONE
