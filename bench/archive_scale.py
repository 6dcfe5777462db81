"""Archive at scale: both sinks at few and at many active projects, in one run.

Two parts:

  (1) The spool alone: the commit cost of one batch (`Spool.write`: the time until its
      records are durable) with the batch's records spread over 50 and over 5,000
      active (project, day) segments. This is what the spool's design controls.
      `--compare-rev REV` measures the spool of that git revision beside it.
  (2) End to end, for each number of active projects: the strongest plain raw consumer
      (pika blocking, prefetch 2000, one multiple-ack per 500 messages; drained before
      and after, their mean is the baseline) and `stacktrail run --only pipeline` with
      both sinks: search into a fast local `_bulk` endpoint (bench/fast_bulk.py) and the
      archive spool (file store, 1 h interval, so the spool is measured, not deliveries).
      Prints events/s, the ratio to the raw consumer, the ratio at many projects over
      the ratio at few, spool bytes per event against the message size, and peak RSS;
      with `--compare-rev` also the pipeline of that revision, between the same drains.

    .venv/bin/python bench/archive_scale.py --count 100000 --compare-rev main
"""

from __future__ import annotations

import argparse
import importlib
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pika

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.cadf_factory import make_notification  # noqa: E402

from bench.amqp_clients import drain_pika_batched  # noqa: E402
from bench.ingest import acked, counter, free_port  # noqa: E402
from stacktrail.archive.spool import SegmentSpec  # noqa: E402
from stacktrail.domain.trail import ArchiveFormat, WriteMode  # noqa: E402

FAST_PORT = 29343


# --- (1) the spool alone


def spool_class(rev: str | None) -> type[Any]:
    """The Spool of this tree, or of git revision `rev` (loaded under another name)."""
    if rev is None:
        from stacktrail.archive.spool import Spool

        return Spool
    name = f"spool_{rev.replace('/', '_').replace('-', '_')}"
    package = types.ModuleType(name)
    package.__path__ = []
    sys.modules[name] = package
    for module in ("framing", "segment", "seen", "journal", "spool"):
        path = f"src/stacktrail/archive/spool/{module}.py"
        shown = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if shown.returncode != 0:
            continue  # a module that revision does not have
        source = shown.stdout.replace("stacktrail.archive.spool.", f"{name}.")
        mod = types.ModuleType(f"{name}.{module}")
        sys.modules[mod.__name__] = mod
        exec(compile(source, f"{rev}:{path}", "exec"), mod.__dict__)
    return sys.modules[f"{name}.spool"].Spool  # type: ignore[no-any-return]


def commit_times(
    spool_type: type[Any], projects: int, batch: int, batches: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (of the writing thread: the part a loaded machine inflates
    least) of each `write` of `batch` records of ~1.7 KB over `projects` active segments
    (every segment already open, as in a steady stream)."""
    record = orjson.dumps({"id": "x" * 36, "pad": "p" * 1650})
    specs = [
        SegmentSpec(
            uuid.UUID(int=i + 1).hex,
            "2026-11-01",
            "audit",
            "",
            ArchiveFormat.JSON,
            ("RegionOne",),
            WriteMode.RESELLER,
            30,
            3600.0,
        )
        for i in range(projects)
    ]
    times: list[float] = []
    cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="spool-bench-", dir=ROOT / "var") as where:
        spool = spool_type(Path(where), segment_max_bytes=64 << 20, max_bytes=1 << 40)
        spool.open()
        try:
            spool.write([(spec, record) for spec in specs])  # open every segment
            n = 0
            for _ in range(batches):
                items = []
                for _ in range(batch):
                    items.append((specs[n % projects], record))
                    n += 1
                start, start_cpu = time.perf_counter(), time.thread_time()
                spool.write(items)
                times.append(time.perf_counter() - start)
                cpu.append(time.thread_time() - start_cpu)
        finally:
            spool.close()
    return times, cpu


def spool_part(args: argparse.Namespace, scales: list[int]) -> None:
    kinds: dict[str, type[Any]] = {"this tree": spool_class(None)}
    if args.compare_rev:
        kinds[args.compare_rev] = spool_class(args.compare_rev)
    samples: dict[tuple[str, int], tuple[list[float], list[float]]] = {
        (label, n): ([], []) for label in kinds for n in scales
    }
    rounds = 5  # interleaved, so the machine's load changes hit every case alike
    for _ in range(rounds):
        for label, spool_type in kinds.items():
            for n in scales:
                times, cpu = commit_times(spool_type, n, args.batch, max(args.batches // rounds, 1))
                samples[(label, n)][0].extend(times)
                samples[(label, n)][1].extend(cpu)
    print(
        f"(1) spool commit cost per batch of {args.batch} records of ~1.7 KB, "
        f"{rounds} interleaved rounds (wall median / least, CPU median):"
    )
    for label in kinds:
        cost = {
            n: (
                statistics.median(samples[(label, n)][0]),
                min(samples[(label, n)][0]),
                statistics.median(samples[(label, n)][1]),
            )
            for n in scales
        }
        cells = "   ".join(
            f"{n} projects {cost[n][0] * 1000:5.1f} / {cost[n][1] * 1000:5.1f} / "
            f"{cost[n][2] * 1000:5.1f} ms"
            for n in scales
        )
        few, many = cost[scales[0]], cost[scales[-1]]
        print(
            f"    {label:>9}: {cells}   {scales[-1]}/{scales[0]}: wall {many[0] / few[0]:.2f}x "
            f"least {many[1] / few[1]:.2f}x CPU {many[2] / few[2]:.2f}x"
        )


# --- (2) end to end


def messages(count: int, projects: int) -> list[bytes]:
    # yesterday (UTC): within every retention when the spool delivers them
    start = (datetime.now(UTC) - timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    ids = [uuid.UUID(int=i).hex for i in range(1, projects + 1)]
    return [
        make_notification(
            event_id=str(uuid.uuid4()),
            event_time=start + timedelta(seconds=i * 7 % 80_000),  # one UTC day
            initiator_project=ids[i % projects],
        )
        for i in range(count)
    ]


def rabbitmqctl(*words: str) -> str:
    for _ in range(30):  # a busy node fails a call now and then
        done = subprocess.run(["rabbitmqctl", "-q", *words], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout
        time.sleep(1)
    raise RuntimeError(f"rabbitmqctl {' '.join(words)}: {done.stderr}")


def publish(url: str, queue: str, bodies: list[bytes]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel = conn.channel()
    channel.queue_declare(queue, durable=True)
    persistent = pika.BasicProperties(delivery_mode=2)
    for body in bodies:
        channel.basic_publish("", queue, body, persistent)
    conn.close()


def left_in(vhost: str, queue: str) -> int:
    """Ready and unacked messages of `queue`."""
    for line in rabbitmqctl("list_queues", "-p", vhost, "name", "messages").splitlines():
        name, _, count = line.partition("\t")
        if name == queue:
            return int(count)
    raise RuntimeError(f"no queue {queue} in {vhost}")


def ready_in(url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return int(conn.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        conn.close()


def documents() -> int:
    return counter(f"http://127.0.0.1:{FAST_PORT}/_count")


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def where_time_goes(profile: Path, top: int = 16) -> str:
    """The profile's own time per source area (stacktrail's packages, libraries)."""
    stats = pstats.Stats(str(profile))
    areas: dict[str, float] = {}
    total = 0.0
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        own = row[2]
        total += own
        if "/stacktrail/" in filename:
            area = "stacktrail/" + "/".join(filename.split("/stacktrail/")[-1].split("/")[:2])
        elif "site-packages/" in filename:
            area = filename.split("site-packages/")[-1].split("/")[0]
        elif filename.startswith("~") or filename.startswith("<"):
            area = f"C: {name}"  # waiting in epoll counts here too
        else:
            area = "stdlib/" + Path(filename).stem
        areas[area] = areas.get(area, 0.0) + own
    # compiling modules at start-up (no .pyc with PYTHONDONTWRITEBYTECODE) is no event's
    compiling = areas.pop("C: <built-in method builtins.compile>", 0.0)
    total -= compiling
    rows = sorted(areas.items(), key=lambda kv: -kv[1])[:top]
    lines = [f"        {100 * t / total:5.1f}%  {a}" for a, t in rows]
    return "\n".join([*lines, f"        (start-up compiling left out: {compiling:.1f} s)"])


def run_pipeline(
    url: str,
    vhost: str,
    queue: str,
    count: int,
    workdir: Path,
    source: Path | None = None,
    profile: Path | None = None,
) -> tuple[float, float, int, float]:
    """(events/s from the first document until every message is acked, peak RSS in MB,
    spool bytes on disk once everything is acked, CPU µs per event: what a loaded machine
    distorts least); `source`: a `src` tree to run instead of this one."""
    spool = workdir / f"spool-{queue}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKTRAIL_")}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    env |= {
        "STACKTRAIL_AMQP_URL": url,
        "STACKTRAIL_AMQP_QUEUE": queue,
        "STACKTRAIL_AMQP_DEAD_LETTER_EXCHANGE": f"{queue}.dead",
        "STACKTRAIL_AMQP_BINDINGS": "nova:notifications.#",
        "STACKTRAIL_SEARCH_URL": f"http://127.0.0.1:{FAST_PORT}",
        "STACKTRAIL_SEARCH_INDEX_TEMPLATE": f"scale{queue[-4:]}-{{project_id}}-{{yyyy.MM}}",
        "STACKTRAIL_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/{queue}.db",
        "STACKTRAIL_ARCHIVE_ENABLED": "true",
        "STACKTRAIL_ARCHIVE_STORE": "file",
        "STACKTRAIL_ARCHIVE_DIR": str(workdir / f"archive-{queue}"),
        "STACKTRAIL_ARCHIVE_INTERVAL": "1h",
        "STACKTRAIL_SPOOL_DIR": str(spool),
        "STACKTRAIL_SHUTDOWN_GRACE": "1s",
        "STACKTRAIL_LOG_LEVEL": "WARNING",
        "STACKTRAIL_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
    }
    metrics = f"http://{env['STACKTRAIL_METRICS_LISTEN']}/metrics"
    before = documents()
    command = [str(ROOT / ".venv/bin/stacktrail"), "run", "--only", "pipeline"]
    if profile is not None:  # written when the service exits after SIGTERM
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), *command]
    proc = subprocess.Popen(command, env=env, cwd=workdir)

    def alive() -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"stacktrail exited early ({proc.returncode})")

    try:
        while documents() == before:
            alive()
            time.sleep(0.02)
        first = time.perf_counter()
        cpu_first = cpu_seconds(proc.pid)
        while documents() < before + count:
            alive()
            time.sleep(0.05)
        # the end is the last ack (the archive acks once spooled), as stacktrail counts
        # it: `rabbitmqctl` takes about a second, which the timing must not include
        while acked(metrics) < count:
            alive()
            time.sleep(0.05)
        last = time.perf_counter()
        cpu = (cpu_seconds(proc.pid) - cpu_first) / count * 1e6
        rss = vm_hwm_mb(proc.pid)
        while ready_in(url, queue) or left_in(vhost, queue):  # the broker agrees
            alive()
            time.sleep(0.05)
        spooled = tree_bytes(spool)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    return count / (last - first), rss, spooled, cpu


def pipeline_part(args: argparse.Namespace, scales: list[int]) -> None:
    vhost = f"stacktrail-scale-{uuid.uuid4().hex[:6]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    fast = subprocess.Popen(
        [sys.executable, str(ROOT / "bench/fast_bulk.py"), "--port", str(FAST_PORT)]
    )
    workdir = Path(tempfile.mkdtemp(prefix="archive-scale-", dir=ROOT / "var"))
    results: dict[int, tuple[float, float, float, float, float]] = {}
    old_results: dict[int, float] = {}
    other: Path | None = None
    if args.compare_rev:  # that revision's code, run from an exported tree
        other = workdir / "other"
        other.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.compare_rev, "src"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(other)], input=archive.stdout, check=True)
        other = other / "src"
    try:
        for _ in range(100):
            try:
                documents()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        print(f"(2) end to end, {args.count} events per run, both sinks:")
        if args.profile:
            for n in scales:
                publish(url, f"profile-{n}", messages(args.count, n))
                out = workdir / f"profile-{n}.out"
                run_pipeline(url, vhost, f"profile-{n}", args.count, workdir, profile=out)
                print(f"    {n} projects, where stacktrail's time goes (cProfile, own time):")
                print(where_time_goes(out))
            return
        for n in scales:
            bodies = messages(args.count, n)
            size = sum(map(len, bodies)) / len(bodies)
            publish(url, f"raw-{n}-before", bodies)
            raws = [drain_pika_batched(url, f"raw-{n}-before", args.count, 2000, 500)]
            publish(url, f"st-{n}", bodies)
            rate, rss, spooled, cpu = run_pipeline(url, vhost, f"st-{n}", args.count, workdir)
            if other is not None:
                publish(url, f"old-{n}", bodies)
                old_rate, old_rss, old_spooled, old_cpu = run_pipeline(
                    url, vhost, f"old-{n}", args.count, workdir, other
                )
            publish(url, f"raw-{n}-after", bodies)
            raws.append(drain_pika_batched(url, f"raw-{n}-after", args.count, 2000, 500))
            baseline = statistics.mean(raws)
            per_event = spooled / args.count
            results[n] = (rate, baseline, rss, per_event, size)
            print(
                f"    {n:5d} projects: raw {baseline:6.0f} msg/s ({raws[0]:.0f}, {raws[1]:.0f})   "
                f"stacktrail {rate:6.0f} ev/s   ratio {rate / baseline:.2f}   "
                f"CPU {cpu:.0f} us/ev   "
                f"peak RSS {rss:.0f} MB   spool {per_event:.0f} B/event = "
                f"{per_event / size:.2f} x message ({size:.0f} B)"
            )
            if other is not None:
                old_results[n] = old_rate / baseline
                print(
                    f"    {'':5} {args.compare_rev:>9}: stacktrail {old_rate:6.0f} ev/s   "
                    f"ratio {old_rate / baseline:.2f}   CPU {old_cpu:.0f} us/ev   "
                    f"peak RSS {old_rss:.0f} MB   spool "
                    f"{old_spooled / args.count:.0f} B/event"
                )
            del bodies
        few, many = scales[0], scales[-1]
        ratio_few = results[few][0] / results[few][1]
        ratio_many = results[many][0] / results[many][1]
        print(
            f"    ratio({many}) / ratio({few}) = {ratio_many / ratio_few:.2f}   "
            f"(targets: both >= 0.5, this >= 0.9)"
        )
        if old_results:
            print(
                f"    {args.compare_rev}: ratio({many}) / ratio({few}) = "
                f"{old_results[many] / old_results[few]:.2f}"
            )
    finally:
        fast.terminate()
        fast.wait()
        rabbitmqctl("delete_vhost", vhost)
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000, help="events per end-to-end run")
    parser.add_argument("--projects", default="50,5000", help="active projects, comma-separated")
    parser.add_argument("--batch", type=int, default=2000, help="records per spool batch in (1)")
    parser.add_argument("--batches", type=int, default=30, help="batches measured in (1)")
    parser.add_argument("--compare-rev", help="also measure the spool of this git revision")
    parser.add_argument("--skip-spool", action="store_true", help="skip (1)")
    parser.add_argument("--skip-pipeline", action="store_true", help="skip (2)")
    parser.add_argument(
        "--profile", action="store_true", help="(2) only profiles stacktrail at each scale"
    )
    args = parser.parse_args()
    scales = [int(n) for n in args.projects.split(",")]
    print(f"load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} (1 and 5 min)")
    importlib.invalidate_caches()
    if not args.skip_spool:
        spool_part(args, scales)
    if not args.skip_pipeline:
        pipeline_part(args, scales)


if __name__ == "__main__":
    main()
