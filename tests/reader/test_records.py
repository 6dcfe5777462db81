"""The reader returns exactly the published ids of a time frame: across day folders, in
every archive format, late objects and at-least-once duplicates included (a folder)."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.cli.main import app
from stacktrail.domain.ledger import MemoryLedger
from stacktrail.domain.trail import ArchiveFormat
from stacktrail_reader.records import ArchiveReader, Filters, parse_object
from stacktrail_reader.sources import FolderSource
from tests.support.digests import REGION, Deliverer

START = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
async def archive(tmp_path: Path) -> tuple[Path, str, Deliverer, list[str]]:
    """Three days of objects in all formats, a late object and a duplicate delivery."""
    container = "audit"
    project = uuid.uuid4().hex
    deliverer = Deliverer(LocalDirStore(tmp_path), MemoryLedger(), container)  # type: ignore[arg-type]
    formats = list(ArchiveFormat)
    for day in range(3):
        for hour in range(0, 24, 6):
            at = START + timedelta(days=day, hours=hour, minutes=30)
            fmt = formats[(day + hour) % len(formats)]
            times = [at - timedelta(minutes=m) for m in (20, 10, 1)]
            await deliverer.deliver(project, at, times, fmt=fmt)
    ids = list(deliverer.published[project])
    # late: events of day 0 delivered on day 2, into day 0's folder
    late_at = START + timedelta(days=2, hours=3)
    await deliverer.deliver(
        project, late_at, [START + timedelta(hours=23, minutes=59)], fmt=ArchiveFormat.CSV
    )
    # the same events once more (a re-delivery after a crash), in another object
    day_one = [e for e in deliverer.events[project] if e["eventTime"].startswith("2026-03-02")]
    await deliverer.deliver(
        project, late_at, [START + timedelta(days=1, hours=1)], repeat=day_one[:5]
    )
    return tmp_path / container, project, deliverer, ids


async def test_reader_returns_each_published_id_once(
    archive: tuple[Path, str, Deliverer, list[str]],
) -> None:
    folder, project, deliverer, _ids = archive
    seen: list[str] = []
    objects: list[tuple[str, int]] = []
    reader = ArchiveReader(
        FolderSource(folder), project, REGION, on_object=lambda k, n: objects.append((k, n))
    )
    for record in reader.records(START - timedelta(hours=1), START + timedelta(days=3)):
        seen.append(record["id"])
    assert len(seen) == len(set(seen))  # duplicates dropped
    assert set(seen) == set(deliverer.published[project])
    assert len(objects) == 14
    assert {k.rsplit(".", 2)[-2] for k, _n in objects} == {"json", "ndjson", "csv"}


async def test_a_frame_keeps_only_its_events_late_ones_included(
    archive: tuple[Path, str, Deliverer, list[str]],
) -> None:
    folder, project, _deliverer, _ids = archive
    reader = ArchiveReader(FolderSource(folder), project, REGION)
    frame = (START + timedelta(hours=12), START + timedelta(days=1))
    times = [datetime.fromisoformat(r["eventTime"]) for r in reader.records(*frame)]
    assert times
    assert all(frame[0] <= t < frame[1] for t in times)
    assert START + timedelta(hours=23, minutes=59) in times  # the late object


async def test_filters_and_errors_go_to_callbacks(
    archive: tuple[Path, str, Deliverer, list[str]],
) -> None:
    folder, project, _deliverer, _ids = archive
    broken = next(folder.rglob("*.ndjson.gz"))
    broken.write_bytes(b"not gzip")
    errors: list[str] = []
    reader = ArchiveReader(
        FolderSource(folder), project, REGION, on_error=lambda k, _e: errors.append(k)
    )
    records = list(
        reader.records(START, START + timedelta(days=3), Filters.parse(["outcome=failure"]))
    )
    assert records == []  # the corpus events all succeed
    assert errors == [broken.relative_to(folder).as_posix()]
    everything = list(
        reader.records(START, START + timedelta(days=3), Filters.parse(["outcome=success"]))
    )
    assert everything
    with pytest.raises(ValueError, match="NAME=VALUE"):
        Filters.parse(["colour=red"])


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
async def test_read_command_streams_each_id_once(
    archive: tuple[Path, str, Deliverer, list[str]], fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, project, deliverer, _ids = archive
    monkeypatch.setenv("STACKTRAIL_ARCHIVE_REGIONS", REGION)
    args = ["read", "--project", project, "--from", "2026-02-28T23:00:00Z", "--to", "2026-03-04"]
    result = CliRunner().invoke(app, [*args, "--dir", str(folder), "--format", fmt])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    if fmt == "ndjson":
        ids = [json.loads(line)["id"] for line in lines]
    else:
        assert lines[0].startswith("id,eventTime,action")
        ids = [line.split(",", 1)[0] for line in lines[1:]]
    assert sorted(ids) == sorted(set(deliverer.published[project]))


@given(
    st.lists(
        st.fixed_dictionaries({"id": st.uuids().map(str), "n": st.integers(-(2**63), 2**63 - 1)}),
        max_size=20,
    )
)
def test_ndjson_and_json_objects_parse_back(events: list[dict[str, object]]) -> None:
    lines = b"".join(orjson.dumps(e) + b"\n" for e in events)
    assert list(parse_object("x.ndjson.gz", gzip.compress(lines))) == events
    body = orjson.dumps({"Records": events})
    assert list(parse_object("x.json.gz", gzip.compress(body))) == events
