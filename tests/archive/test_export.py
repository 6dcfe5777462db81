"""Timeframe exports from the real search server (osmem) into files and Swift."""

from __future__ import annotations

import csv
import gzip
import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from stacktrail.archive.export import Exporter, ExportSpec
from stacktrail.archive.layout import CSV_COLUMNS, delete_at
from stacktrail.archive.stores.base import Bucket
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.cli import jobs as jobs_cli
from stacktrail.config import Settings
from stacktrail.domain.export import ExportCheckpoint
from stacktrail.domain.timeframe import Timeframe
from stacktrail.domain.trail import ArchiveFormat
from stacktrail.search.client import SearchClient
from stacktrail.search.reader import EventReader, ReadMode
from tests.support.corpus import DAY0, Corpus
from tests.support.jobs import jobs_settings
from tests.support.paths import REPO_ROOT
from tests.support.stores import ProjectAdmin

ROOT = REPO_ROOT
FRAME = Timeframe(DAY0, DAY0 + timedelta(days=3))
EXT = {"json": ".json.gz", "ndjson": ".ndjson.gz", "csv": ".csv.gz"}


def read_object(name: str, data: bytes) -> list[dict[str, Any]]:
    """Events of one archive object (CSV rows as dicts)."""
    raw = gzip.decompress(data)
    if name.endswith(".json.gz"):
        records: list[dict[str, Any]] = orjson.loads(raw)["Records"]
        return records
    if name.endswith(".ndjson.gz"):
        return [orjson.loads(line) for line in raw.splitlines() if line]
    reader = csv.DictReader(io.StringIO(raw.decode()))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def read_tree(root: Path) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for path in sorted(root.rglob("*.gz")):
        found[path.relative_to(root).as_posix()] = read_object(path.name, path.read_bytes())
    return found


def day_of(key: str) -> str:
    return "-".join(key.split("/")[-4:-1])


def export_settings(corpus: Corpus, search_url: str, tmp: Path) -> Settings:
    return jobs_settings(search_url, corpus.template, tmp)


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv"])
async def test_export_each_format_into_day_files(
    fmt: str, export_corpus: Corpus, search_url: str, tmp_path: Path, devstack: dict[str, str]
) -> None:
    project = devstack["DEVSTACK_PROJECT_A_ID"]
    settings = export_settings(export_corpus, search_url, tmp_path)
    out = tmp_path / "out"
    result = await jobs_cli.export(
        settings,
        project=project,
        time_from="2025-03-01",
        time_to="2025-03-04T00:00:00Z",
        fmt=ArchiveFormat(fmt),
        out=out,
        max_records=2500,  # several parts per day
    )
    expected = export_corpus.in_frame(project, FRAME.start, FRAME.end)
    expected_days = export_corpus.day_counts(project, FRAME.start, FRAME.end)
    assert result.checkpoint.events == len(expected)
    assert result.checkpoint.day_counts == dict(expected_days)
    assert result.mode == "pit"

    objects = read_tree(out)
    assert objects, "no file written"
    per_day: Counter[str] = Counter()
    for key, records in objects.items():
        assert key.startswith(f"{project}/RegionOne/2025/03/0")
        assert key.endswith(EXT[fmt])
        assert f"_{project}_" not in key
        assert key.split("/")[-1].startswith(f"{project}_RegionOne_")
        assert "_export_" in key
        assert 0 < len(records) <= 2500
        per_day[day_of(key)] += len(records)
        for record in records:  # every event in the file of its own UTC day
            assert record["eventTime"][:10] == day_of(key)
    assert per_day == expected_days
    assert sum(len(r) for r in objects.values()) == len(expected)
    assert len(objects) == sum(-(-n // 2500) for n in expected_days.values())

    ids = [record["id"] for records in objects.values() for record in records]
    assert len(ids) == len(set(ids)), "an event was written twice"
    assert set(ids) == {e["id"] for e in expected}  # `<a>-old` and outside days excluded
    if fmt in ("json", "ndjson"):  # the events round-trip exactly, without search stamps
        by_id = {e["id"]: e for e in expected}
        for records in objects.values():
            for record in records:
                assert record == by_id[record["id"]]
    else:
        for records in objects.values():
            for row in records:
                assert row["project_id"] == project
                assert orjson.loads(row["extra"])["typeURI"].startswith("http://schemas")
    # ordered by (eventTime, id) inside each file
    for records in objects.values():
        times = [(datetime.fromisoformat(r["eventTime"]), r["id"]) for r in records]
        assert times == sorted(times)
    assert not list(out.glob(".stacktrail-export-*")), "checkpoint left after success"


async def test_rerun_writes_the_same_names(
    export_corpus: Corpus, search_url: str, tmp_path: Path, devstack: dict[str, str]
) -> None:
    project = devstack["DEVSTACK_PROJECT_B_ID"]
    settings = export_settings(export_corpus, search_url, tmp_path)
    out = tmp_path / "out"
    kwargs: dict[str, Any] = {
        "project": project,
        "time_from": "2025-03-02T00:00:00Z",
        "time_to": "2025-03-03T00:00:00Z",
        "fmt": ArchiveFormat.NDJSON,
        "out": out,
    }
    await jobs_cli.export(settings, **kwargs)
    first = {p: p.read_bytes() for p in out.rglob("*.gz")}
    await jobs_cli.export(settings, **kwargs)
    second = {p: p.read_bytes() for p in out.rglob("*.gz")}
    assert first == second
    assert len(first) == 1


async def test_interrupted_export_resumes_without_duplicates(
    export_corpus: Corpus, search: SearchClient, tmp_path: Path, devstack: dict[str, str]
) -> None:
    project = devstack["DEVSTACK_PROJECT_A_ID"]
    store = LocalDirStore(tmp_path)
    spec = ExportSpec(
        project_id=project,
        frame=FRAME,
        format=ArchiveFormat.JSON,
        container="out",
        prefix="p",
        regions=("RegionOne",),
        retention_days=30,
    )
    saved: list[dict[str, Any]] = []

    class Crash(Exception):
        pass

    async def save_then_crash(cp: ExportCheckpoint) -> None:
        saved.append(cp.to_json())
        if len(saved) == 3:
            raise Crash

    exporter = Exporter(
        search,
        store,
        spec,
        template=export_corpus.template,
        save=save_then_crash,
        reader=EventReader(search, page_size=700),
        max_records=1500,
    )
    with pytest.raises(Crash):
        await exporter.run()
    written_before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*.gz")}
    # the third object was written, its checkpoint was not saved: resume from the second
    checkpoint = ExportCheckpoint.from_json(saved[1])
    assert len(checkpoint.files) == 2
    assert len(written_before) == 3

    async def save(cp: ExportCheckpoint) -> None:
        saved.append(cp.to_json())

    resumed = Exporter(
        search,
        store,
        spec,
        template=export_corpus.template,
        checkpoint=checkpoint,
        save=save,
        reader=EventReader(search, page_size=700),
        max_records=1500,
    )
    result = await resumed.run()
    expected = export_corpus.in_frame(project, FRAME.start, FRAME.end)
    objects = read_tree(tmp_path / "out")
    ids = [r["id"] for records in objects.values() for r in records]
    assert len(ids) == len(set(ids)) == len(expected)
    assert result.checkpoint.events == len(expected)
    assert len(result.checkpoint.files) == len(objects)

    # an uninterrupted run names and fills the objects identically
    clean = LocalDirStore(tmp_path / "clean")
    await Exporter(search, clean, spec, template=export_corpus.template, max_records=1500).run()
    clean_objects = read_tree(tmp_path / "clean" / "out")
    assert clean_objects == objects


async def test_scroll_fallback_reads_the_same_and_resumes(
    export_corpus: Corpus, search: SearchClient, devstack: dict[str, str]
) -> None:
    from stacktrail.search.reader import event_time_query, project_indices

    project = devstack["DEVSTACK_PROJECT_B_ID"]
    indices = await project_indices(search, export_corpus.template, project, FRAME)
    target = ",".join(i.name for i in indices)
    query = event_time_query(project, FRAME)

    async def read(mode: ReadMode, after: list[Any] | None = None) -> list[Any]:
        reader = EventReader(search, page_size=999, mode=mode)
        hits = []
        async for page in reader.pages(target, query, after):
            hits.extend(page)
        assert reader.used_mode is mode
        return hits

    pit = await read(ReadMode.PIT)
    scroll = await read(ReadMode.SCROLL)
    assert [h.event["id"] for h in pit] == [h.event["id"] for h in scroll]
    assert len(pit) == len(export_corpus.in_frame(project, FRAME.start, FRAME.end))
    middle = len(scroll) // 2
    rest = await read(ReadMode.SCROLL, scroll[middle].sort)
    assert [h.event["id"] for h in rest] == [h.event["id"] for h in scroll[middle + 1 :]]
    rest_pit = await read(ReadMode.PIT, pit[middle].sort)
    assert [h.event["id"] for h in rest_pit] == [h.event["id"] for h in pit[middle + 1 :]]


async def test_export_to_swift(
    export_corpus: Corpus,
    search_url: str,
    tmp_path: Path,
    service_settings: Settings,
    admin_a: ProjectAdmin,
    swift_store: SwiftStore,
) -> None:
    settings = export_settings(export_corpus, search_url, tmp_path).model_copy(
        update={
            k: getattr(service_settings, k)
            for k in (
                "keystone_url",
                "keystone_username",
                "keystone_password",
                "keystone_project_name",
            )
        }
    )
    container = f"st-export-{os.urandom(4).hex()}"
    result = await jobs_cli.export(
        settings,
        project=admin_a.project_id,
        time_from="2025-03-01T00:00:00Z",
        time_to="2025-03-02T00:00:00Z",
        fmt=ArchiveFormat.JSON,
        to_swift=f"{container}/exports/march",
        checkpoint_dir=tmp_path / "state",
    )
    names = admin_a.listing(container)
    assert names == sorted(result.checkpoint.files)
    assert all(
        n.startswith(f"exports/march/{admin_a.project_id}/RegionOne/2025/03/01/") for n in names
    )
    bucket = Bucket(admin_a.project_id, "RegionOne", container)
    stored = await swift_store.get(bucket, names[0])
    records = read_object(names[0], stored.body)
    assert (
        len(records)
        == export_corpus.day_counts(admin_a.project_id, FRAME.start, FRAME.end)["2025-03-01"]
    )
    expires = int(stored.headers["x-delete-at"])
    assert expires >= max(delete_at("2025-03-01", 90), int(time.time()))
    assert stored.headers["x-object-meta-record-count"] == str(len(records))


# --- the command


def command_app() -> typer.Typer:
    app = typer.Typer()
    jobs_cli.register(app)
    return app


def env_for(corpus: Corpus, search_url: str, tmp: Path) -> dict[str, str]:
    return {
        "STACKTRAIL_SEARCH_URL": search_url,
        "STACKTRAIL_SEARCH_INDEX_TEMPLATE": corpus.template,
        "STACKTRAIL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'none.db'}",
        "STACKTRAIL_ARCHIVE_REGIONS": "RegionOne",
    }


@pytest.fixture
def cli_env(
    export_corpus: Corpus, search_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("STACKTRAIL_"):
            monkeypatch.delenv(name)
    env = env_for(export_corpus, search_url, tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_command_usage_errors_exit_2(
    cli_env: dict[str, str], tmp_path: Path, devstack: dict[str, str]
) -> None:
    runner = CliRunner()
    project = devstack["DEVSTACK_PROJECT_A_ID"]
    out = str(tmp_path / "o")
    cases = {
        "inverted": (["--from", "2025-03-03", "--to", "2025-03-01"], "inverted"),
        "unparsable": (["--from", "yesterday-ish", "--to", "now"], "invalid time"),
        "unknown project": (["--from", "-7d"], "no index"),
    }
    for name, (args, message) in cases.items():
        who = "f" * 32 if name == "unknown project" else project
        result = runner.invoke(command_app(), ["export", "--project", who, "--out", out, *args])
        assert result.exit_code == 2, (name, result.output)
        assert message in result.output, (name, result.output)
    both = runner.invoke(
        command_app(),
        ["export", "-p", project, "--from", "-1d", "--out", out, "--to-swift", "c"],
    )
    assert both.exit_code == 2
    assert "exactly one" in both.output


def test_command_empty_frame_says_so(
    cli_env: dict[str, str], tmp_path: Path, devstack: dict[str, str]
) -> None:
    out = tmp_path / "empty"
    result = CliRunner().invoke(
        command_app(),
        [
            "export",
            "-p",
            devstack["DEVSTACK_PROJECT_A_ID"],
            "--from",
            "2025-03-10T00:00:00Z",
            "--to",
            "2025-03-11T00:00:00Z",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "no events for project" in result.output
    assert "nothing written" in result.output
    assert not list(out.rglob("*.gz"))


def test_command_killed_then_rerun_resumes(
    cli_env: dict[str, str], export_corpus: Corpus, tmp_path: Path, devstack: dict[str, str]
) -> None:
    """`stacktrail export` killed (SIGKILL) after its first file, then run again."""
    project = devstack["DEVSTACK_PROJECT_A_ID"]
    out = tmp_path / "killed"
    script = (
        "import typer, sys\n"
        "from stacktrail.cli import jobs as cli\n"
        "app = typer.Typer()\n"
        "cli.register(app)\n"
        "app(sys.argv[1:], prog_name='stacktrail')\n"
    )
    args = [
        sys.executable,
        "-c",
        script,
        "export",
        "-p",
        project,
        "--from",
        "2025-03-01",
        "--to",
        "2025-03-04",
        "--format",
        "ndjson",
        "--out",
        str(out),
    ]
    env = {**os.environ, **cli_env}
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        states = list(out.glob(".stacktrail-export-*.json"))
        if states and orjson.loads(states[0].read_bytes())["checkpoint"]["files"]:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    proc.wait(timeout=60)
    assert killed, "the export finished before it could be interrupted"
    partial = read_tree(out)
    assert 0 < len(partial) < 3

    rerun = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming the export" in rerun.stderr
    objects = read_tree(out)
    ids = [r["id"] for records in objects.values() for r in records]
    expected = export_corpus.in_frame(project, FRAME.start, FRAME.end)
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == {e["id"] for e in expected}
    assert len(objects) == 3
    assert "exported" in rerun.stdout
