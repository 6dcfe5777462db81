"""The pipeline's cycle collector: start-up frozen, rare young collections, restored after."""

from __future__ import annotations

import asyncio
import gc

import pytest
from pydantic import ValidationError

from stacktrail.config import Settings
from stacktrail.domain.directory import DefaultTrails
from stacktrail.ingest.consumer import AmqpSource
from stacktrail.ingest.dispatcher import Pipeline
from stacktrail.ingest.garbage import tuned_collector
from stacktrail.ingest.route import Router


def test_inside_start_up_is_frozen_and_young_collections_are_rare_then_as_before() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with tuned_collector(50_000):
        assert gc.get_threshold() == (50_000, before[1], before[2])
        assert gc.get_freeze_count() > frozen
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_zero_leaves_the_interpreter_default() -> None:
    before = gc.get_threshold()
    with tuned_collector(0):
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0


def test_the_threshold_is_a_bounded_setting() -> None:
    assert Settings().pipeline_gc_threshold == 50_000
    assert Settings(pipeline_gc_threshold=0).pipeline_gc_threshold == 0
    for bad in (-1, 10_000_001):
        with pytest.raises(ValidationError):
            Settings(pipeline_gc_threshold=bad)


async def test_the_running_pipeline_tunes_the_collector_and_restores_it() -> None:
    settings = Settings()
    before = gc.get_threshold()
    pipeline = Pipeline(
        AmqpSource(settings),
        Router(DefaultTrails(settings)),
        [],
        gc_threshold=settings.pipeline_gc_threshold,
    )
    task = asyncio.create_task(pipeline.run())
    await asyncio.sleep(0.05)
    assert gc.get_threshold()[0] == settings.pipeline_gc_threshold
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gc.get_threshold() == before
