"""Archive object names, bodies and headers (pure code)."""

from __future__ import annotations

import csv
import gzip
import io
import socket
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacktrail.archive.layout import (
    CSV_COLUMNS,
    InvalidName,
    build_body,
    check_spec,
    day_of_key,
    delete_at,
    normalise_prefix,
    object_headers,
    object_key,
    worker_name,
)
from stacktrail.config import Settings
from stacktrail.domain.trail import ArchiveFormat
from tests.support.segments import segment_spec
from tests.support.sinks import make_event

PROJECT = "0123456789abcdef0123456789abcdef"
BEFORE_MIDNIGHT = datetime(2024, 5, 17, 23, 55, tzinfo=UTC)
SPEC = segment_spec(PROJECT, "2024-05-17", retention_days=90)


def test_key_layout_without_prefix() -> None:
    key = object_key(SPEC, "RegionOne", "20240518T0015Z", "worker-1", "1715990100000000")
    assert key == (
        f"{PROJECT}/RegionOne/2024/05/17/"
        f"{PROJECT}_RegionOne_20240518T0015Z_worker-1_1715990100000000.json.gz"
    )


@pytest.mark.parametrize(
    ("fmt", "ext"),
    [
        (ArchiveFormat.JSON, "json.gz"),
        (ArchiveFormat.NDJSON, "ndjson.gz"),
        (ArchiveFormat.CSV, "csv.gz"),
    ],
)
def test_key_layout_with_prefix_and_format(fmt: ArchiveFormat, ext: str) -> None:
    spec = replace(SPEC, prefix="/audit/trail/", format=fmt, day="2024-01-02")
    key = object_key(spec, "eu-de-1", "20240103T0000Z", "w", "1")
    assert (
        key
        == f"audit/trail/{PROJECT}/eu-de-1/2024/01/02/{PROJECT}_eu-de-1_20240103T0000Z_w_1.{ext}"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"project_id": "../etc"},
        {"project_id": "a_b"},
        {"project_id": ""},
        {"regions": ("Region_One",)},
        {"regions": ()},
        {"prefix": "a/../b"},
        {"prefix": "a//b"},
        {"prefix": "a b"},
        {"container": "a/b"},
        {"container": ""},
        {"day": "2024-5-17"},
    ],
)
def test_only_validated_names_make_keys(change: dict[str, object]) -> None:
    with pytest.raises(InvalidName):
        check_spec(replace(SPEC, **change))  # type: ignore[arg-type]


def test_prefix_normalisation() -> None:
    assert normalise_prefix("") == ""
    assert normalise_prefix("/") == ""
    assert normalise_prefix("/a/b.c/") == "a/b.c"


def test_delete_at_is_end_of_event_day_plus_retention() -> None:
    expected = datetime(2024, 5, 18, tzinfo=UTC) + timedelta(days=90)
    assert delete_at("2024-05-17", 90) == int(expected.timestamp())
    assert delete_at("2024-12-31", 1) == int(datetime(2025, 1, 2, tzinfo=UTC).timestamp())


def test_worker_name_is_sanitised() -> None:
    assert (
        worker_name(Settings(archive_worker="Archiver_01.Example.COM")) == "archiver-01-example-com"
    )
    generated = worker_name(Settings(archive_worker=""))
    assert generated
    assert set(generated) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


def _events(count: int = 3) -> list[dict[str, object]]:
    return [
        make_event(PROJECT, BEFORE_MIDNIGHT + timedelta(seconds=i), i).body for i in range(count)
    ]


def test_json_body_round_trips_and_is_deterministic() -> None:
    events = _events()
    records = [orjson.dumps(e) for e in events]
    body = build_body(SPEC, records)
    assert orjson.loads(gzip.decompress(body.data)) == {"Records": events}
    assert build_body(SPEC, records).data == body.data  # gzip mtime 0: same bytes again
    assert body.records == 3
    assert body.first_event_time == "2024-05-17T23:55:00.000000Z"
    assert body.last_event_time == "2024-05-17T23:55:02.000000Z"


def test_ndjson_body() -> None:
    events = _events()
    body = build_body(replace(SPEC, format=ArchiveFormat.NDJSON), [orjson.dumps(e) for e in events])
    lines = gzip.decompress(body.data).decode().splitlines()
    assert [orjson.loads(line) for line in lines] == events


def test_csv_body_has_the_documented_columns() -> None:
    events = _events(2)
    body = build_body(replace(SPEC, format=ArchiveFormat.CSV), [orjson.dumps(e) for e in events])
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(body.data).decode())))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    for row, event in zip(rows, events, strict=True):
        initiator = event["initiator"]
        target = event["target"]
        assert isinstance(initiator, dict)
        assert isinstance(target, dict)
        assert row["id"] == event["id"]
        assert row["eventTime"] == event["eventTime"]
        assert row["action"] == event["action"]
        assert row["project_id"] == PROJECT
        assert row["initiator_id"] == initiator["id"]
        assert row["initiator_project_id"] == initiator["project_id"]
        assert row["initiator_host_address"] == initiator["host"]["address"]
        assert row["target_typeURI"] == target["typeURI"]
        assert row["reason_code"] == "200"
        assert row["requestPath"] == event["requestPath"]
        assert row["target_project_id"] == ""
        extra = orjson.loads(row["extra"])
        assert extra["typeURI"] == event["typeURI"]
        assert extra["initiator.credential.token"] == "***"
        assert extra["target.addresses"] == target["addresses"]
        assert "initiator.id" not in extra
        assert "id" not in extra


def test_headers() -> None:
    body = build_body(SPEC, [orjson.dumps(e) for e in _events()])
    headers = object_headers(body, 1_800_000_000)
    assert headers["X-Delete-At"] == "1800000000"
    assert headers["X-Object-Meta-Record-Count"] == "3"
    assert headers["X-Object-Meta-First-Event-Time"] == "2024-05-17T23:55:00.000000Z"
    assert headers["X-Object-Meta-Last-Event-Time"] == "2024-05-17T23:55:02.000000Z"
    assert len(headers["X-Object-Meta-Sha256"]) == 64
    assert headers["Content-Type"] == "application/gzip"


@given(
    day=st.dates(min_value=date(1970, 1, 1), max_value=date(8999, 12, 31)),
    prefix=st.sampled_from(["", "audit", "a/b", "2024/05/17"]),
    fmt=st.sampled_from(list(ArchiveFormat)),
)
def test_the_day_of_a_key_is_read_back_from_the_key_it_built(
    day: date, prefix: str, fmt: ArchiveFormat
) -> None:
    """One layout: `day_of_key` parses what `object_key` writes, whatever the prefix."""
    spec = replace(SPEC, day=day.isoformat(), prefix=prefix, format=fmt)
    key = object_key(spec, "RegionOne", "20240517T2355Z", "worker-1", "0000000001")
    assert day_of_key(key) == day.isoformat()
    assert day_of_key("digests/keys/abc.pub") is None


def test_default_worker_names_differ_per_spool_and_stay_across_restarts(tmp_path: Path) -> None:
    one = worker_name(Settings(spool_dir=tmp_path / "a"))
    assert one == worker_name(Settings(spool_dir=tmp_path / "a"))  # a restart: the same
    assert one != worker_name(Settings(spool_dir=tmp_path / "b"))  # a second worker
    assert one.startswith(worker_name(Settings(archive_worker=socket.gethostname())))
