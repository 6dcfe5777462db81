"""A Keystone whose project list never comes delays consumption by OWNER_LIST_WAIT at
most (real RabbitMQ; Keystone's answers stand in as an object, so that the list can hang).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from stacktrail import app
from stacktrail.domain.directory import DefaultTrails
from stacktrail.ingest.owners import Owners
from stacktrail.keystone import ProjectKind
from tests.support.broker import own_queue_settings, publish
from tests.support.cadf_factory import make_notification
from tests.support.pipeline import running, until_consuming
from tests.support.polling import eventually
from tests.support.sinks import Keeps

PROJECT = "dddd1111dddd1111dddd1111dddd1111"
WAIT = 1.0  # seconds: OWNER_LIST_WAIT for this test


class ListNeverComes:
    """Answers questions about one id; its lists of projects never come."""

    def __init__(self) -> None:
        self.listed = asyncio.Event()  # set once the list was asked for

    async def project_kind(self, project_id: str) -> ProjectKind:
        return ProjectKind.PROJECT

    async def project_kinds(self) -> dict[str, ProjectKind]:
        self.listed.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_project_list_that_never_comes_delays_consumption_by_the_wait_at_most(
    amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "OWNER_LIST_WAIT", WAIT)
    settings = own_queue_settings(amqp_url)
    keystone = ListNeverComes()
    owners = Owners(keystone, DefaultTrails(settings), lister=keystone)
    sink = Keeps()
    started = time.monotonic()
    async with running(settings, sinks=[sink], owners=owners):  # type: ignore[list-item]
        await asyncio.wait_for(keystone.listed.wait(), 10)
        await until_consuming(settings)  # the queue is declared once consumption starts
        took = time.monotonic() - started
        await publish(amqp_url, [make_notification(initiator_project=PROJECT)])
        await eventually(lambda: sink.projects == [PROJECT])
    assert WAIT <= took < WAIT + 5  # waited for the list, then went on without it
