"""Signed archive digests: a day of deliveries validates clean, and each kind of tampering
is reported precisely (the file store and a real config store on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stacktrail.archive.digests import DigestWriter
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.cli.main import app
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.signing import SigningKey, load_signing_key
from stacktrail_reader import digest as d
from stacktrail_reader.sources import FolderSource
from stacktrail_reader.validate import Problem, Report, load_keys, validate
from tests.support.digests import REGION, Deliverer, a_day, configure_trail, day_start, new_key

HOUR = timedelta(hours=1)


class Day:
    def __init__(self, root: Path, container: str, projects: list[str], key: SigningKey) -> None:
        self.root = root
        self.container = container
        self.projects = projects
        self.key = key
        self.start = day_start()
        self.end = self.start + 24 * HOUR
        self.folder = root / container

    def report(self, project: str | None = None, **kwargs: object) -> Report:
        project = project or self.projects[0]
        source = FolderSource(self.folder)
        keys = kwargs.pop("keys", None) or load_keys(source)
        # as of just after the day: the chain ends there (later its digests would be due)
        kwargs.setdefault("now", self.end + timedelta(minutes=5))
        return validate(source, project, REGION, keys, **kwargs)  # type: ignore[arg-type]

    def digest_path(self, hour: int, project: str | None = None) -> Path:
        key = d.digest_key(project or self.projects[0], REGION, self.start + hour * HOUR)
        return self.folder / key

    def object_paths(self, hour: int) -> list[Path]:
        document = json.loads(self.digest_path(hour).read_bytes())
        return [self.folder / o["key"] for o in document["objects"]]


@pytest.fixture
async def day(store: TrailStore, tmp_path: Path) -> Day:
    container = f"audit-{uuid.uuid4().hex[:8]}"
    projects = [uuid.uuid4().hex, uuid.uuid4().hex]
    for project in projects:
        await configure_trail(store, project, container)
    objects = LocalDirStore(tmp_path / "archive")
    key = new_key(tmp_path)
    writer = DigestWriter(store, objects, key, interval=HOUR)
    deliverer = Deliverer(objects, SqlLedger(store.engine), container)
    result = Day(tmp_path / "archive", container, projects, key)
    await a_day(deliverer, writer, projects, result.start)
    return result


def problems(report: Report) -> list[tuple[int, Problem, str]]:
    """(hour of the period, problem, key) for every finding."""
    start = day_start()
    return [
        (int((p.start - start) / HOUR), f.problem, f.key)
        for p in report.periods
        for f in p.findings
    ]


async def test_a_day_of_two_projects_validates_clean_with_empty_hours(day: Day) -> None:
    for project in day.projects:
        report = day.report(project)
        assert report.valid, report.findings
        assert [p.start for p in report.periods] == [day.start + h * HOUR for h in range(24)]
        counts = [p.objects for p in report.periods]
        assert counts[3] == counts[4] == 0  # the quiet hours have their digest, empty
        assert counts[10] == 2  # the late object of the day before is in its delivery hour
        assert sum(counts) == 23
    first = json.loads(day.digest_path(0).read_bytes())
    assert first["previous_digest"] is None
    assert first["key_fingerprint"] == day.key.fingerprint
    assert (day.folder / d.public_key_key(day.key.fingerprint)).read_bytes() == day.key.public_pem


async def test_a_deleted_object_is_missing_in_its_period(day: Day) -> None:
    gone = day.object_paths(7)[0]
    gone.unlink()
    assert problems(day.report()) == [
        (7, Problem.MISSING_OBJECT, gone.relative_to(day.folder).as_posix())
    ]


async def test_one_changed_byte_is_a_changed_object(day: Day) -> None:
    path = day.object_paths(9)[0]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert problems(day.report()) == [
        (9, Problem.CHANGED_OBJECT, path.relative_to(day.folder).as_posix())
    ]


async def test_a_foreign_object_is_in_no_digest(day: Day) -> None:
    real = day.object_paths(7)[0]
    stamp = (day.start + 7 * HOUR + timedelta(minutes=30)).strftime("%Y%m%dT%H%MZ")
    foreign = real.parent / f"{day.projects[0]}_{REGION}_{stamp}_worker_forged.ndjson.gz"
    foreign.write_bytes(real.read_bytes())
    assert problems(day.report()) == [
        (7, Problem.FOREIGN_OBJECT, foreign.relative_to(day.folder).as_posix())
    ]


async def test_a_deleted_digest_breaks_the_chain_where_it_was(day: Day) -> None:
    listed = {p.relative_to(day.folder).as_posix() for p in day.object_paths(12)}
    day.digest_path(12).unlink()
    report = day.report()
    missing = d.digest_key(day.projects[0], REGION, day.start + 12 * HOUR)
    assert problems(report) == [
        (12, Problem.BROKEN_CHAIN, missing),
        # what only the deleted digest listed is in no digest now
        *((12, Problem.FOREIGN_OBJECT, key) for key in sorted(listed)),
    ]
    assert len(report.periods) == 24


async def test_a_reordered_chain_is_broken(day: Day) -> None:
    five, six = day.digest_path(5), day.digest_path(6)
    a, b = five.read_bytes(), six.read_bytes()
    five.write_bytes(b)
    six.write_bytes(a)
    found = {(h, p) for h, p, _k in problems(day.report())}
    assert found == {
        (5, Problem.BROKEN_CHAIN),
        (6, Problem.BROKEN_CHAIN),
        (7, Problem.BROKEN_CHAIN),
    }


async def test_an_edited_digest_has_a_bad_signature(day: Day) -> None:
    path = day.digest_path(8)
    document = json.loads(path.read_bytes())
    dropped = document["objects"].pop()
    path.write_text(json.dumps(document))
    found = {(h, p) for h, p, _k in problems(day.report())}
    # the object the digest no longer lists is foreign, and the next digest's link breaks
    assert found == {
        (8, Problem.BAD_SIGNATURE),
        (8, Problem.FOREIGN_OBJECT),
        (9, Problem.BROKEN_CHAIN),
    }
    assert dropped["key"] in {k for _h, _p, k in problems(day.report())}


async def test_only_the_public_key_validates_and_another_key_does_not(
    day: Day, tmp_path: Path
) -> None:
    for pub in (day.folder / "digests" / "keys").iterdir():
        pub.unlink()  # the customer has nothing but the .pub file they were given
    public = d.load_public_key(day.key.public_pem)
    assert day.report(keys={day.key.fingerprint: public}).valid
    other = new_key(tmp_path)
    forged = {day.key.fingerprint: d.load_public_key(other.public_pem)}
    found = {p for _h, p, _k in problems(day.report(keys=forged))}
    assert found == {Problem.BAD_SIGNATURE}


async def test_from_to_limits_the_periods(day: Day) -> None:
    day.object_paths(7)[0].unlink()
    report = day.report(start=day.start + 8 * HOUR, end=day.start + 12 * HOUR)
    assert report.valid
    assert len(report.periods) == 4


def test_a_signing_key_round_trips(tmp_path: Path) -> None:
    key = new_key(tmp_path)
    path = next(p for p in tmp_path.iterdir() if p.suffix == ".key")
    assert load_signing_key(path).fingerprint == key.fingerprint
    assert (path.stat().st_mode & 0o777) == 0o600
    document = {"a": 1, "b": "x"}
    document["signature"] = key.sign(document)
    assert d.verify(document, d.load_public_key(Path(f"{path}.pub").read_bytes()))
    document["a"] = 2
    assert not d.verify(document, d.load_public_key(key.public_pem))


async def test_validate_command_exits_by_the_result(
    day: Day, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACKTRAIL_ARCHIVE_REGIONS", REGION)
    pub = tmp_path / "given.pub"
    pub.write_bytes(day.key.public_pem)
    args = [
        "validate",
        "--project",
        day.projects[1],
        "--dir",
        str(day.folder),
        "--public-key",
        str(pub),
        "--to",  # the chain ends with the day: the digests since are due
        d.iso(day.end),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.count(" valid ") == 24
    day.digest_path(12, day.projects[1]).unlink()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "broken chain" in result.output


async def test_validate_command_fails_when_the_newest_digests_are_missing(
    day: Day, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACKTRAIL_ARCHIVE_REGIONS", REGION)
    project = day.projects[0]
    for hour in range(20, 24):
        day.digest_path(hour).unlink()
    args = ["validate", "--project", project, "--dir", str(day.folder)]
    result = CliRunner().invoke(app, [*args, "--to", d.iso(day.start + 20 * HOUR)])
    assert result.exit_code == 0, result.output  # --to ends before them
    assert result.output.count(" valid ") == 20
    result = CliRunner().invoke(app, [*args, "--to", d.iso(day.start + 21 * HOUR)])
    assert result.exit_code == 1
    first = d.digest_key(project, REGION, day.start + 20 * HOUR)
    assert f"{d.iso(day.start + 20 * HOUR)}  broken chain  {first}: 1 digest(s) missing" in (
        result.output
    )
    result = CliRunner().invoke(app, args)  # up to now: the day's last 4 hours and today's
    assert result.exit_code == 1
    assert "broken chain" in result.output
    assert f"none after {d.iso(day.start + 20 * HOUR)}" in result.output
    result = CliRunner().invoke(app, [*args, "--write-delay", "soon"])
    assert result.exit_code == 2
    assert "--write-delay: invalid duration 'soon'" in result.output


def test_keys_generate_writes_both_files_and_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "signing.key"
    result = CliRunner().invoke(app, ["keys", "generate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    key = load_signing_key(out)
    assert key.fingerprint in result.output
    assert Path(f"{out}.pub").read_bytes() == key.public_pem
    again = CliRunner().invoke(app, ["keys", "generate", "--out", str(out)])
    assert again.exit_code == 1
    assert load_signing_key(out).fingerprint == key.fingerprint


async def test_the_uploader_records_what_the_digest_lists_and_the_scheduler_writes_it(
    own_store: TrailStore, tmp_path: Path
) -> None:
    """Real sink -> uploader -> SQL ledger -> scheduler; then two empty 1-minute periods.
    (A store of its own: the scheduler digests every trail in it.)"""
    store = own_store
    from datetime import UTC, datetime

    from stacktrail.archive.sink import ArchiveSink
    from stacktrail.scheduler import Scheduler
    from tests.support.config_store import make_settings
    from tests.support.sinks import Acks, make_trail, sink_settings
    from tests.support.sinks import make_event as sink_event

    project, container = uuid.uuid4().hex, f"audit-{uuid.uuid4().hex[:8]}"
    await configure_trail(store, project, container)
    from stacktrail.signing import generate_key_files

    key_file = tmp_path / "uploader.key"
    key = generate_key_files(key_file)
    settings = sink_settings(
        tmp_path,
        make_settings(archive_store="file", archive_regions=[REGION]),
        digest_key_file=key_file,
        digest_interval="1m",
    )
    objects = LocalDirStore(tmp_path / "archive")
    sink = ArchiveSink(settings, objects, SqlLedger(store.engine))
    # 10 s into this minute: 3 min 31 s later exactly three minutes are due, whatever
    # second the test starts at
    clock_now = [datetime.now(UTC).replace(second=10, microsecond=0)]
    scheduler = Scheduler(settings, store, None, objects, clock=lambda: clock_now[0])
    assert await scheduler.run_digests() == 0  # the chain starts with this minute
    await sink.start()
    acks = Acks()
    # sealed by the flush, not by the clock (a 1 s interval may split the events under load)
    trail = make_trail(project, container, interval=timedelta(hours=1))
    for n in range(5):
        await sink.put(acks.record(trail, sink_event(project, datetime.now(UTC), n)))
    await acks.wait(5)
    summary = await sink.flush()
    await sink.stop(5)
    assert summary.objects == 1
    clock_now[0] += timedelta(minutes=3, seconds=31)
    assert await scheduler.run_digests() == 3
    folder = tmp_path / "archive" / container
    report = validate(FolderSource(folder), project, REGION, load_keys(FolderSource(folder)))
    assert report.valid, report.findings
    assert [p.objects for p in report.periods].count(0) == 2  # the empty minutes have one too
    [entry] = [
        o
        for p in report.periods
        if p.digest_key
        for o in json.loads((folder / p.digest_key).read_bytes())["objects"]
    ]
    stored = (folder / entry["key"]).read_bytes()
    assert (entry["size"], entry["sha256"], entry["records"]) == (
        len(stored),
        d.sha256_hex(stored),
        5,
    )
    assert entry["first_event_time"] <= entry["last_event_time"]
    assert key.fingerprint in {
        json.loads((folder / p.digest_key).read_bytes())["key_fingerprint"]
        for p in report.periods
        if p.digest_key
    }


async def test_the_reader_verifies_on_the_way_and_skips_what_no_digest_vouches_for(
    day: Day,
) -> None:
    from stacktrail_reader.records import ArchiveReader

    changed = day.object_paths(9)[0]
    data = bytearray(changed.read_bytes())
    data[20] ^= 0x01
    changed.write_bytes(bytes(data))
    errors: list[str] = []
    source = FolderSource(day.folder)
    reader = ArchiveReader(
        source,
        day.projects[0],
        REGION,
        public_keys=load_keys(source),
        on_error=lambda key, _exc: errors.append(key),
    )
    records = list(reader.records(day.start - 24 * HOUR, day.start + 24 * HOUR))
    assert errors == [changed.relative_to(day.folder).as_posix()]
    assert len(records) == 2 * 21 + 1  # 22 objects of two events and a late one, less hour 9


async def test_deleted_newest_digests_fail_once_they_are_due(day: Day) -> None:
    assert day.report(now=day.start + 24 * HOUR + timedelta(minutes=5)).silent_since is None
    for hour in (22, 23):
        day.digest_path(hour).unlink()
    report = day.report(now=day.start + 24 * HOUR + timedelta(minutes=5))
    assert report.silent_since == day.start + 22 * HOUR
    assert not report.valid
    # hour 22 ended more than the write delay (15 minutes) ago, hour 23 not yet
    assert problems(report) == [
        (22, Problem.BROKEN_CHAIN, d.digest_key(day.projects[0], REGION, day.start + 22 * HOUR))
    ]
    assert "1 digest(s) missing at the end of the chain" in report.findings[0].detail
    later = day.report(now=day.start + 24 * HOUR + timedelta(minutes=16))
    assert problems(later) == [(22, Problem.BROKEN_CHAIN, problems(report)[0][2])]
    assert "2 digest(s) missing" in later.findings[0].detail
    assert later.periods[-1].end == day.start + 24 * HOUR
    # a shorter write delay, and a time frame that ends before them
    assert "2 digest(s)" in day.report(write_delay=timedelta(minutes=1)).findings[0].detail
    assert day.report(end=day.start + 22 * HOUR, now=day.start + 48 * HOUR).valid
    # digests that stopped long ago are all due, and counted, not listed one by one
    report = day.report(now=day.start + 24 * HOUR * 365)
    assert len(report.periods) == 22 + 1
    assert f"{365 * 24 - 22 - 1} digest(s) missing" in report.findings[0].detail
