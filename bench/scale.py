"""Scale: many trails, many projects, several workers, delivery rate.

    .venv/bin/python bench/scale.py directory [--trails 10000 --active 5000 --distinct]
    .venv/bin/python bench/scale.py rss [--trails 10000 --active 5000]
    .venv/bin/python bench/scale.py workers [--count 60000]
    .venv/bin/python bench/scale.py delivery [--projects 400 --concurrency 1,4,8,16,32]
    .venv/bin/python bench/scale.py stats [--projects 5000 --database-url URL]

`directory` builds a config store (SQLite in a temporary directory, or `--database-url`)
holding `--trails` configured trails (a mix of the overrides projects set: retention,
container, event filters, interval; `--distinct`: no two equal), loads the pipeline's
snapshot (`StoreTrails`) and prints bytes per configured trail and per active project on
the defaults (tracemalloc), a full load's time and peak allocation, an incremental reload
after one change, a reload after a change of the defaults, and how long a change takes to
reach `get` with the reload loop at the default interval.

`rss`: peak RSS of `stacktrail run --only pipeline` (both sinks) with 0 and with
`--trails` configured trails, events of `--active` projects. `workers`: events/s of one and
of two processes on one queue, beside the strong raw consumer. `delivery`: objects/s from
the spool into the dev stack's Swift per upload concurrency, beside raw PUTs. `stats`: the
CPU one flush of the ingest counters (event types, per-project event types, hourly and
daily counts) takes from the pipeline's event loop, with `--projects` active projects,
against PostgreSQL (`--database-url`, default the dev stack's) or SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, update  # noqa: E402

from stacktrail.config import Settings  # noqa: E402
from stacktrail.db import engine as db  # noqa: E402
from stacktrail.db import tables as t  # noqa: E402
from stacktrail.db.ledger import SqlLedger  # noqa: E402
from stacktrail.db.reload import StoreTrails  # noqa: E402
from stacktrail.db.trail_store import TrailStore  # noqa: E402
from stacktrail.domain.audit import Actor  # noqa: E402
from stacktrail.domain.document import TrailOverrides  # noqa: E402


def project(i: int) -> str:
    return uuid.UUID(int=i + 1).hex


def overrides(i: int, distinct: bool = False) -> dict[str, Any]:
    """What projects typically set: mostly one or two members (`distinct`: a container of
    its own each, so no two documents are equal)."""
    if distinct:
        return {"archive": {"container": f"audit-{i}"}, "retention_days": 30 + i % 300}
    kind = i % 5
    if kind == 0:
        return {"retention_days": 30 + i % 300}
    if kind == 1:
        return {"archive": {"container": f"audit-{i % 40}"}}
    if kind == 2:
        return {"events": {"exclude": ["read/*"]}, "retention_days": 180}
    if kind == 3:
        return {"archive": {"interval": "1h"}}
    return {"enabled": True}


async def fill(store: TrailStore, count: int, distinct: bool = False) -> None:
    """Configured trails written straight into the table (the API's path costs a
    transaction and a history row each, which is not what is measured here)."""
    now = datetime.now(UTC)
    rows = [
        {
            "project_id": project(i),
            "config": TrailOverrides.model_validate(overrides(i, distinct)).document(),
            "enabled": True,
            "version": 1,
            "seq": 1,
            "updated_at": now,
            "updated_by_id": "bench",
            "updated_by_name": "bench",
        }
        for i in range(count)
    ]
    async with store.engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            await conn.execute(insert(t.trails), rows[start : start + 1000])
        await conn.execute(update(t.config_version).values(version=1))


def allocated() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def measured_refresh(trails: StoreTrails) -> tuple[float, int]:
    """Seconds and peak bytes allocated (tracemalloc) of one reload of the snapshot."""
    before = allocated()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    await trails.refresh()
    seconds = time.perf_counter() - started
    return seconds, tracemalloc.get_traced_memory()[1] - before


async def directory(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="stacktrail-scale-"))
    url = args.database_url or f"sqlite+aiosqlite:///{work}/config.db"
    settings = Settings(database_url=url, archive_regions=["RegionOne", "RegionTwo"])
    await db.upgrade(url, settings=settings)
    store = TrailStore(db.create_engine(url), settings)
    await fill(store, args.trails, args.distinct)
    actor = Actor(user_id="bench", user_name="bench", project_id=None)

    tracemalloc.start()
    empty = StoreTrails(store, settings)
    base = allocated()
    del empty
    base = allocated()
    trails = StoreTrails(store, settings)
    started = time.perf_counter()
    tracemalloc.reset_peak()
    await trails.load()
    load_s = time.perf_counter() - started
    load_peak = tracemalloc.get_traced_memory()[1] - base
    loaded = allocated()
    per_trail = (loaded - base) / max(args.trails, 1)
    for i in range(args.trails, args.trails + args.active):
        trails.get(project(i))
    active = allocated()
    per_active = (active - loaded) / max(args.active, 1)

    # one change: what an incremental reload costs
    changed = project(7)
    await store.put_trail(changed, TrailOverrides.model_validate({"retention_days": 77}), actor)
    reload_s, reload_peak = await measured_refresh(trails)
    assert trails.get(changed).retention_days == 77
    # a change of the operator defaults: every trail is resolved again
    await store.put_defaults(replace(await store.get_defaults(), default_retention_days=60), actor)
    defaults_s, defaults_peak = await measured_refresh(trails)
    assert trails.get(project(args.trails + 1)).retention_days == 60
    tracemalloc.stop()
    # the same without tracemalloc's overhead
    started = time.perf_counter()
    await StoreTrails(store, settings).load()
    plain_load_s = time.perf_counter() - started

    # a change reaching the running pipeline with the reload loop at the default interval
    arrived = asyncio.Event()
    trails.add_listener(lambda _changed: arrived.set())
    loop = asyncio.create_task(trails.run_reload())
    await asyncio.sleep(0.2)
    written = time.perf_counter()
    await store.put_trail(changed, TrailOverrides.model_validate({"retention_days": 78}), actor)
    while trails.get(changed).retention_days != 78:
        await arrived.wait()
        arrived.clear()
    reached = time.perf_counter() - written
    loop.cancel()
    await store.close()

    kind = "all distinct" if args.distinct else "typical overrides"
    print(
        f"{args.trails} configured trails ({kind}), {args.active} active default projects ({url})"
    )
    print(f"  bytes per configured trail:      {per_trail:8.0f}")
    print(f"  bytes per active default project: {per_active:8.0f}")
    print(
        f"  snapshot total: {(active - base) / 1e6:.1f} MB; full load {load_s * 1000:.0f} ms, "
        f"peak +{load_peak / 1e6:.1f} MB (under tracemalloc; {plain_load_s * 1000:.0f} ms without)"
    )
    print(
        f"  reload after one change: {reload_s * 1000:.1f} ms, peak +{reload_peak / 1e3:.0f} kB;"
        f" a change reached get() in {reached:.2f} s "
        f"(reload interval {settings.reload_interval.total_seconds():g} s)"
    )
    print(
        f"  reload after a change of the defaults: {defaults_s * 1000:.0f} ms, "
        f"peak +{defaults_peak / 1e6:.1f} MB"
    )


async def delivery(args: argparse.Namespace) -> None:
    """Objects/s from the spool into the dev stack's Swift, per upload concurrency."""
    from tests.support.cadf_factory import make_notification
    from tests.support.config_store import create_postgres_database, drop_postgres_database
    from tests.support.devstack import read_env_file

    from stacktrail.db.ledger import SqlLedger
    from stacktrail.ingest.decode import decode_message

    stack = read_env_file(ROOT / "var/dev-stack/env")
    url = await create_postgres_database()
    work = Path(tempfile.mkdtemp(prefix="stacktrail-delivery-"))
    values: dict[str, Any] = {
        k.removeprefix("STACKTRAIL_").lower(): v
        for k, v in stack.items()
        if k.startswith("STACKTRAIL_KEYSTONE_")
    } | {
        "database_url": url,
        "archive_store": "swift",
        "archive_container": f"bench-{uuid.uuid4().hex[:6]}",
    }
    now = datetime.now(UTC)
    events = [
        decode_message(
            make_notification(event_id=str(uuid.uuid4()), initiator_project=p, event_time=now)
        )
        for p in [uuid.uuid4().hex for _ in range(args.projects)]
        for _ in range(args.events)
    ]
    from stacktrail.archive.stores import open_store
    from stacktrail.keystone import KeystoneClient

    levels = [int(c) for c in args.concurrency.split(",")]
    # one store for every round, as a running service keeps it (containers it created
    # are known; its connection pool fits the largest level)
    first = Settings(**values, archive_upload_concurrency=max(levels))
    store = open_store(first, KeystoneClient(first))
    try:
        await db.upgrade(url)
        engine = db.create_engine(url)
        print(
            f"{args.projects} projects x 1 object ({args.events} events each) into the dev "
            "stack's Swift, ledger in PostgreSQL; the warm-up round creates the containers"
        )
        for round_, concurrency in enumerate([max(levels), *levels]):
            settings = Settings(
                **values,
                archive_upload_concurrency=concurrency,
                spool_dir=work / f"spool-{round_}",
            )
            objects, elapsed = await deliver_once(settings, store, SqlLedger(engine), events)
            label = "warm-up       " if round_ == 0 else f"concurrency {concurrency:2d}"
            print(f"  {label}: {objects} objects in {elapsed:5.1f} s = {objects / elapsed:6.1f}/s")
        # what Swift takes without stacktrail's spool and ledger: the same PUTs straight
        for concurrency in (max(levels),):
            objects, elapsed = await raw_puts(store, first, args.projects, concurrency)
            print(
                f"  raw PUTs, {concurrency:2d} in flight: {objects} objects in {elapsed:5.1f} s = "
                f"{objects / elapsed:6.1f}/s (the store alone)"
            )
        await engine.dispose()
    finally:
        await store.aclose()
        await drop_postgres_database(url)


async def raw_puts(
    store: Any, settings: Settings, count: int, concurrency: int
) -> tuple[int, float]:
    """`count` PUTs of a small gzip body into one project's container, `concurrency` at once."""
    import gzip

    from stacktrail.archive.stores.base import Bucket

    bucket = Bucket(uuid.uuid4().hex, "RegionOne", settings.archive_container)
    await store.ensure_container(bucket)
    body = gzip.compress(b'{"Records": []}' * 200)
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            await store.put(bucket, f"raw/{i}.json.gz", body, {})

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count, time.perf_counter() - started


async def deliver_once(
    settings: Settings, store: Any, ledger: Any, events: list[Any]
) -> tuple[int, float]:
    """Spool the events (one segment per project), then time one flush into the store."""
    from stacktrail.archive.sink import ArchiveSink
    from stacktrail.domain.delivery import Record, Ticket
    from stacktrail.domain.trail import ArchiveConfig, ArchiveFormat, Trail

    sink = ArchiveSink(settings, store, ledger)
    await sink.start()
    spooled = asyncio.Event()
    left = len(events)

    def finished(_ticket: Ticket) -> None:
        nonlocal left
        left -= 1
        if not left:
            spooled.set()

    archive = ArchiveConfig(
        enabled=True,
        container=settings.archive_container,
        prefix="",
        format=ArchiveFormat.JSON,
        interval=timedelta(hours=1),
        regions=("RegionOne",),
    )
    for event in events:
        project_id = str(event.initiator_project_id)
        trail = Trail(project_id=project_id, enabled=True, retention_days=7, archive=archive)
        ticket = Ticket(event.id, finished)
        ticket.add()
        ticket.seal()
        await sink.put(Record(project_id, event, trail, datetime.now(UTC), ticket))
    await spooled.wait()
    started = time.perf_counter()
    summary = await sink.flush()
    elapsed = time.perf_counter() - started
    await sink.stop(1.0)  # the store stays open (the sink does not own it)
    return summary.objects, elapsed


def rss(args: argparse.Namespace) -> None:
    """Peak RSS of `stacktrail run --only pipeline` (both sinks: a fast `_bulk` endpoint
    and the file store) with 0 and with `--trails` configured trails, events of
    `--active` projects (half of them configured, half on the defaults)."""
    import shutil
    import subprocess

    from tests.support.cadf_factory import make_notification

    from bench.ingest import fill as fill_queue
    from bench.ingest import make_vhost, run_stacktrail, stacktrail_env, wait_port

    vhost = make_vhost()
    url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    work = Path(tempfile.mkdtemp(prefix="stacktrail-rss-"))
    port = _free_port()
    fast = subprocess.Popen([sys.executable, str(ROOT / "bench/fast_bulk.py"), "--port", str(port)])
    try:
        wait_port(port)
        # active projects: trails - active/2 .. trails + active/2 (configured, then not)
        offset = max(args.trails - args.active // 2, 0)
        # yesterday (UTC): within every retention when the spool delivers them
        start = (datetime.now(UTC) - timedelta(days=1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        bodies = [
            make_notification(
                event_id=str(uuid.uuid4()),
                event_time=start + timedelta(seconds=n),
                initiator_project=project(offset + n % args.active),
            )
            for n in range(args.active * args.events)
        ]
        print(f"{len(bodies)} events of {args.active} projects; uptime: {_uptime()}")
        results = {}
        for trails in (0, args.trails):
            db_url = f"sqlite+aiosqlite:///{work}/config-{trails}.db"
            settings = Settings(database_url=db_url)
            asyncio.run(_prepared_store(db_url, settings, trails))
            queue = f"st-rss-{trails}"
            fill_queue(url, queue, bodies)
            env = stacktrail_env(url, queue, f"http://127.0.0.1:{port}", work) | {
                "STACKTRAIL_DATABASE_URL": db_url,
                "STACKTRAIL_ARCHIVE_ENABLED": "true",
                "STACKTRAIL_ARCHIVE_STORE": "file",
                "STACKTRAIL_ARCHIVE_DIR": str(work / f"archive-{trails}"),
                "STACKTRAIL_ARCHIVE_INTERVAL": "1h",
                "STACKTRAIL_SPOOL_DIR": str(work / f"spool-{trails}"),
                "STACKTRAIL_SHUTDOWN_GRACE": "1s",
                "STACKTRAIL_METRICS_LISTEN": f"127.0.0.1:{_free_port()}",
            }
            rate, peak = run_stacktrail(
                url, queue, env, len(bodies), f"http://127.0.0.1:{port}/_count", work
            )
            results[trails] = peak
            print(
                f"  {trails:6d} configured trails, {args.active} active projects: "
                f"{rate:6.0f} events/s, peak RSS {peak:.0f} MB"
            )
        extra = (results[args.trails] - results[0]) * 1e6 / max(args.trails, 1)
        print(f"  RSS per configured trail: {extra:.0f} bytes")
    finally:
        fast.terminate()
        fast.wait()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)
        shutil.rmtree(work, ignore_errors=True)


def workers(args: argparse.Namespace) -> None:
    """Events/s of 1 and of 2 `stacktrail run --only pipeline` processes on one queue
    (both sinks: a fast `_bulk` endpoint and the file store; `--search-only`: the fast
    endpoint alone), beside the strong raw consumer (pika blocking, prefetch 2000, one
    multiple-ack per 500) in the same run. Each run ends when the processes' own acked
    counters reach the count, as the raw drain ends at its last ack; the cores each
    process, the broker and the endpoint kept busy meanwhile say what limits it."""
    import shutil
    import signal
    import subprocess

    from bench.amqp_clients import drain_pika_batched
    from bench.ingest import (
        acked,
        broker_cpu,
        counter,
        cpu_seconds,
        make_vhost,
        messages,
        peak_rss_mb,
        queue_messages,
        stacktrail_env,
        wait_port,
    )
    from bench.ingest import fill as fill_queue

    vhost = make_vhost()
    url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    work = Path(tempfile.mkdtemp(prefix="stacktrail-workers-"))
    port = _free_port()
    fast = subprocess.Popen([sys.executable, str(ROOT / "bench/fast_bulk.py"), "--port", str(port)])
    count_url = f"http://127.0.0.1:{port}/_count"
    bodies = messages(args.count, args.projects)
    sinks = "search only" if args.search_only else "both sinks"
    print(f"{args.count} events of {args.projects} projects, {sinks}; load {_uptime()}")
    try:
        wait_port(port)
        for round_ in range(1, args.rounds + 1):
            fill_queue(url, f"raw-{round_}", bodies)
            cpu, broker = time.process_time(), broker_cpu()
            started = time.perf_counter()
            raw = drain_pika_batched(url, f"raw-{round_}", args.count, 2000, 500)
            elapsed = time.perf_counter() - started
            cpu, broker = time.process_time() - cpu, broker_cpu() - broker
            print(
                f"  round {round_}: strong raw consumer {raw:.0f} msg/s, cores busy: consumer "
                f"{cpu / elapsed:.2f}, broker {broker / elapsed:.2f}"
            )
            rates = {}
            for n in (1, 2):
                queue = f"st-{n}-{round_}"
                fill_queue(url, queue, bodies)
                before = counter(count_url)
                procs, metrics_urls = [], []
                for i in range(n):
                    listen = f"127.0.0.1:{_free_port()}"
                    env = stacktrail_env(url, queue, f"http://127.0.0.1:{port}", work) | {
                        "STACKTRAIL_ARCHIVE_ENABLED": "false" if args.search_only else "true",
                        "STACKTRAIL_ARCHIVE_STORE": "file",
                        "STACKTRAIL_ARCHIVE_DIR": str(work / "archive"),
                        "STACKTRAIL_ARCHIVE_INTERVAL": "1h",
                        "STACKTRAIL_SPOOL_DIR": str(work / f"spool-{round_}-{n}-{i}"),
                        "STACKTRAIL_SHUTDOWN_GRACE": "1s",
                        "STACKTRAIL_METRICS_LISTEN": listen,
                        "STACKTRAIL_DATABASE_URL": f"sqlite+aiosqlite:///{work}/config.db",
                    }
                    metrics_urls.append(f"http://{listen}/metrics")
                    procs.append(
                        subprocess.Popen(
                            [str(ROOT / ".venv/bin/stacktrail"), "run", "--only", "pipeline"],
                            env=env,
                            cwd=work,
                        )
                    )
                try:
                    while counter(count_url) == before:
                        time.sleep(0.02)
                    first = time.perf_counter()
                    cpu_first = [cpu_seconds(p.pid) for p in procs]
                    broker_first, fast_first = broker_cpu(), cpu_seconds(fast.pid)
                    polls_first = time.process_time()
                    while sum(acked(m) for m in metrics_urls) < args.count:
                        time.sleep(0.05)
                    elapsed = time.perf_counter() - first
                    busy = [
                        (cpu_seconds(p.pid) - c) / elapsed
                        for p, c in zip(procs, cpu_first, strict=True)
                    ]
                    broker = (broker_cpu() - broker_first) / elapsed
                    endpoint = (cpu_seconds(fast.pid) - fast_first) / elapsed
                    polls = (time.process_time() - polls_first) / elapsed
                    rates[n] = args.count / elapsed
                    peaks = [peak_rss_mb(p.pid) for p in procs]
                    while queue_messages(url, queue) > 0:  # the broker holds the acks too
                        time.sleep(0.05)
                finally:
                    for proc in procs:
                        proc.send_signal(signal.SIGTERM)
                    for proc in procs:
                        proc.wait(timeout=120)
                print(
                    f"  round {round_}: {n} process(es): {rates[n]:6.0f} events/s "
                    f"({rates[n] / raw:.2f} of the strong raw consumer); cores busy: "
                    f"stacktrail {', '.join(f'{b:.2f}' for b in busy)}, broker {broker:.2f}, "
                    f"endpoint {endpoint:.2f}, this benchmark's polls {polls:.2f}; "
                    f"{sum(busy) / rates[n] * 1e6:.0f} stacktrail CPU µs per event; "
                    f"peak RSS {', '.join(f'{p:.0f}' for p in peaks)} MB"
                )
            print(f"  round {round_}: 2 processes / 1 process = {rates[2] / rates[1]:.2f}")
    finally:
        fast.terminate()
        fast.wait()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)
        shutil.rmtree(work, ignore_errors=True)


async def _prepared_store(url: str, settings: Settings, trails: int) -> None:
    await db.upgrade(url, settings=settings)
    store = TrailStore(db.create_engine(url), settings)
    await fill(store, trails)
    await store.close()


async def stats(args: argparse.Namespace) -> None:
    """CPU seconds of one `flush_stats` (the loop thread's share: compiling, binding and
    sending the upserts) with every project active, as the pipeline flushes every 10 s."""
    import os

    from stacktrail.ingest.dispatcher import Pipeline

    url = args.database_url or os.environ.get("STACKTRAIL_DATABASE_URL", "")
    if not url:
        work = Path(tempfile.mkdtemp(prefix="stacktrail-scale-"))
        url = f"sqlite+aiosqlite:///{work}/config.db"
    await db.upgrade(url, settings=Settings(database_url=url))
    engine = db.create_engine(url)
    ledger = SqlLedger(engine)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    kinds = ("identity.authenticate", "compute.instance.create", "network.port.update")
    pipeline = Pipeline.__new__(Pipeline)  # only its counters: no source, no sinks
    print(f"{args.projects} active projects, {len(kinds)} event types each, {url.split(':')[0]}")
    for round_ in range(args.rounds):
        pipeline.event_types = Counter({kind: args.projects for kind in kinds})
        pipeline.project_event_types = Counter(
            {(project(i), kind): 3 for i in range(args.projects) for kind in kinds}
        )
        pipeline.ingested = Counter({(project(i), hour): 9 for i in range(args.projects)})
        cpu, wall = time.process_time(), time.perf_counter()
        await pipeline.flush_stats(ledger)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"  flush {round_ + 1}: {cpu * 1e3:.0f} ms CPU ({cpu / args.projects * 1e6:.0f} µs "
            f"per project), {wall * 1e3:.0f} ms wall"
        )
    await engine.dispose()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _uptime() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    d = commands.add_parser("directory", help="trail directory memory and hot reload")
    d.add_argument("--trails", type=int, default=10_000)
    d.add_argument("--active", type=int, default=5_000)
    d.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    d.add_argument("--distinct", action="store_true", help="no two overrides documents equal")
    u = commands.add_parser("delivery", help="objects/s into the dev stack's Swift")
    u.add_argument("--projects", type=int, default=400, help="one object each per round")
    u.add_argument("--events", type=int, default=5, help="events per object")
    u.add_argument("--concurrency", default="1,4,8,16,32", help="upload concurrency levels")
    r = commands.add_parser("rss", help="peak RSS of the pipeline with many trails")
    r.add_argument("--trails", type=int, default=10_000)
    r.add_argument("--active", type=int, default=5_000)
    r.add_argument("--events", type=int, default=10, help="events per active project")
    w = commands.add_parser("workers", help="events/s of 2 processes against 1")
    w.add_argument("--count", type=int, default=60_000)
    w.add_argument("--projects", type=int, default=50)
    w.add_argument("--rounds", type=int, default=2)
    w.add_argument("--search-only", action="store_true", help="the fast _bulk endpoint alone")
    st = commands.add_parser("stats", help="CPU of one flush of the ingest counters")
    st.add_argument("--projects", type=int, default=5_000)
    st.add_argument("--rounds", type=int, default=3)
    st.add_argument("--database-url", default="", help="default: STACKTRAIL_DATABASE_URL")
    args = parser.parse_args()
    if args.command == "stats":
        asyncio.run(stats(args))
    elif args.command == "workers":
        workers(args)
    elif args.command == "directory":
        asyncio.run(directory(args))
    elif args.command == "rss":
        rss(args)
    else:
        asyncio.run(delivery(args))


if __name__ == "__main__":
    main()
