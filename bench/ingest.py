"""Ingest throughput: stacktrail end to end against the raw drain rate of the same broker.

In one run, on one machine:
  (a) the broker's raw drain rate: minimal consumers that only ack (pika's blocking and
      asyncio adapters acking each message, and the strongest plain consumer: pika
      blocking, prefetch 2000, one multiple-ack per 500 messages); that strong consumer
      is the baseline of every ratio;
  (b) `stacktrail run --only pipeline` into a fast local `_bulk` endpoint
      (bench/fast_bulk.py) that accepts everything, so stacktrail itself is measured;
  (c) the same into osmem-server, the OpenSearch-compatible test server.
Prints events/s, the ratio (b)/(a) per round (a and b alternate, --rounds) and its
median, (c)/(a), and stacktrail's peak RSS; --archive adds (d): both sinks on, then the
spool delivered to the dev stack's Swift (objects/s, MB/s, spool bytes per event).

    .venv/bin/python bench/ingest.py --count 200000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pika

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.cadf_factory import make_notification  # noqa: E402

from bench.amqp_clients import drain_pika, drain_pika_asyncio, drain_pika_batched  # noqa: E402


def messages(count: int, projects_count: int = 50, days: float | None = None) -> list[bytes]:
    """One event every 7 s (or, `days`, as many as fit that many days) from a UTC
    midnight on, ending before now: recent, so no retention has passed when the spool
    delivers them. Each (project, day) is an archive segment: 100,000 events 7 s apart
    span 8 days, so 5,000 projects make 41,000 segments; within one day, 5,000."""
    step = 7.0 if days is None else min(7.0, days * 86400 / count)
    start = (datetime.now(UTC) - timedelta(seconds=count * step)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    projects = [uuid.UUID(int=i).hex for i in range(1, projects_count + 1)]
    return [
        make_notification(
            event_id=str(uuid.uuid4()),
            event_time=start + timedelta(seconds=i * step),
            initiator_project=projects[i % len(projects)],
        )
        for i in range(count)
    ]


def make_vhost() -> str:
    vhost = f"stacktrail-bench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True
    )
    return vhost


def fill(url: str, queue: str, bodies: list[bytes]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel = conn.channel()
    channel.queue_declare(queue, durable=True)
    props = pika.BasicProperties(delivery_mode=2)
    for body in bodies:
        channel.basic_publish("", queue, body, props)
    conn.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    """A port nothing listens on now: benchmarks of others may run beside this one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int) -> None:
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


def queue_messages(url: str, queue: str) -> int:
    """Ready + unacked messages of a queue (0 once everything is acked)."""
    vhost = url.rsplit("/", 1)[1]
    for _ in range(30):  # rabbitmqctl fails now and then on a busy node: ask again
        result = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "messages"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            break
        time.sleep(1)
    result.check_returncode()
    out = result.stdout
    for line in out.splitlines():
        name, _, messages = line.partition("\t")
        if name == queue:
            return int(messages)
    raise RuntimeError(f"queue {queue} not found")


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# `--set NAME=VALUE`: settings every stacktrail run of the benchmark gets (tuning)
OVERRIDES: dict[str, str] = {}


def settings_env(settings: list[str]) -> dict[str, str]:
    """`NAME=VALUE` (with or without the `STACKTRAIL_` prefix) as environment variables."""
    env = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        env[name if name.startswith("STACKTRAIL_") else f"STACKTRAIL_{name}"] = value
    return env


def stacktrail_env(url: str, queue: str, search_url: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKTRAIL_")}
    return (
        env
        | {
            "STACKTRAIL_AMQP_URL": url,
            "STACKTRAIL_AMQP_QUEUE": queue,
            "STACKTRAIL_AMQP_DEAD_LETTER_EXCHANGE": f"{queue}.dead",
            "STACKTRAIL_AMQP_BINDINGS": "nova:notifications.#",
            "STACKTRAIL_SEARCH_URL": search_url,
            "STACKTRAIL_SEARCH_INDEX_TEMPLATE": f"bench{queue[-6:]}-{{project_id}}-{{yyyy.MM}}",
            "STACKTRAIL_ARCHIVE_ENABLED": "false",
            "STACKTRAIL_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/config.db",
            "STACKTRAIL_SPOOL_DIR": str(workdir / "spool"),
            "STACKTRAIL_LOG_LEVEL": "WARNING",
            "STACKTRAIL_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
        }
        | OVERRIDES
    )


def run_stacktrail(
    url: str,
    queue: str,
    env: dict[str, str],
    count: int,
    count_url: str,
    workdir: Path,
    profile: Path | None = None,
    checkout: Path = ROOT,
    label: str = "stacktrail",
) -> tuple[float, float]:
    """Events/s from the first indexed document until the queue is fully acked, and the
    peak RSS in MB.

    While stacktrail works only the cheap document count is polled: one `rabbitmqctl`
    call costs about half a second of CPU, which on a small machine would be taken from
    stacktrail (and not from the raw drain it is compared with). Once every document is
    indexed, the end time is when stacktrail's own acked counter (its `/metrics`, polled
    every 50 ms like the count) says every message was acked, as the raw drain's end is
    its last ack; `rabbitmqctl` then confirms the queue is empty, outside the timing.

    `checkout`: whose stacktrail runs (its `.venv/bin/stacktrail`).
    `profile`: sample the process with py-spy (idle stacks included, so the shares are
    of wall time) into this file, and print its summary.
    """
    before = counter(count_url)  # the fast endpoint counts across rounds
    broker_first = polls_first = 0.0
    metrics_urls = worker_metrics_urls(env)
    proc = subprocess.Popen(
        [str(checkout / ".venv/bin/stacktrail"), "run", "--only", "pipeline"],
        env=env,
        cwd=workdir,
    )
    spy: subprocess.Popen[bytes] | None = None
    first = cpu_first = 0.0
    try:
        while not first:
            if counter(count_url) > before:
                first = time.perf_counter()
                pids = [proc.pid, *child_pids(proc.pid)]  # STACKTRAIL_WORKERS' children
                cpu_first = sum(map(cpu_seconds, pids))
                broker_first, polls_first = broker_cpu(), time.process_time()
                if profile is not None:  # the stream, not the start-up
                    spy = start_profile(proc.pid, profile)
            elif proc.poll() is not None:
                raise RuntimeError("stacktrail exited early")
            else:
                time.sleep(0.02)
        while counter(count_url) < before + count:
            if proc.poll() is not None:
                raise RuntimeError("stacktrail exited early")
            time.sleep(0.05)
        while sum(map(acked, metrics_urls)) < count:
            if proc.poll() is not None:
                raise RuntimeError("stacktrail exited early")
            time.sleep(0.05)
        last = time.perf_counter()
        rss = max(map(peak_rss_mb, pids))
        cpu = sum(map(cpu_seconds, pids)) - cpu_first
        broker, polls = broker_cpu() - broker_first, time.process_time() - polls_first
        if spy is not None:  # the stream only: not the shutdown (seal, last uploads)
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        while queue_messages(url, queue) > 0:  # the broker holds the acks too
            if proc.poll() is not None:
                raise RuntimeError("stacktrail exited early")
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        if spy is not None:
            spy.wait(timeout=60)
    if profile is not None:
        print(profile_summary(profile, proc.pid))
    print(
        f"    ({label}): {len(pids)} process(es), {cpu / (last - first):.2f} of a core busy, "
        f"{cpu / count * 1e6:.0f} CPU µs per event (the broker meanwhile: "
        f"{broker / count * 1e6:.0f} per message; this benchmark's polls: "
        f"{polls / (last - first):.2f} of a core)"
    )
    return count / (last - first), rss


def worker_metrics_urls(env: dict[str, str]) -> list[str]:
    """The metrics of every pipeline process of one run: with STACKTRAIL_WORKERS=N,
    worker k listens on the metrics port + k."""
    host, _, port = env["STACKTRAIL_METRICS_LISTEN"].rpartition(":")
    workers = int(env.get("STACKTRAIL_WORKERS", "1"))
    return [f"http://{host}:{int(port) + k}/metrics" for k in range(workers)]


def child_pids(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def broker_cpu() -> float:
    """CPU seconds of the RabbitMQ node on this machine so far (0 if none is found)."""
    found = subprocess.run(["pgrep", "-x", "beam.smp"], capture_output=True, text=True)
    return sum(cpu_seconds(int(pid)) for pid in found.stdout.split())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path.home() / ".local/bin/py-spy")
    options = ["--threads", "--idle", "--nonblocking", "--rate", "250", "--format", "raw"]
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), *options, "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def profile_summary(path: Path, pid: int, top: int = 25) -> str:
    """The functions with most samples of the main thread: own (`self`) and with what
    they call (`total`), as % of all samples; idle is the event loop waiting (select)."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack.startswith(f"thread ({pid}): MainThread;"):  # the event loop's
            continue
        count = int(number)
        samples += count
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")[1:]]
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + count
    if not samples:
        return f"profile {path}: no samples"
    lines = [f"profile {path}: {samples} samples of the main thread"]
    lines.append("  self%  total%  function")
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / samples:5.1f}  {100 * total[frame] / samples:6.1f}  {frame}")
    lines.append("  stacktrail's own functions by total%:")
    ours = [(f, n) for f, n in total.items() if "stacktrail/" in f]
    for frame, n in sorted(ours, key=lambda kv: -kv[1])[:top]:
        lines.append(
            f"  {100 * own.get(frame, 0) / samples:5.1f}  {100 * n / samples:6.1f}  {frame}"
        )
    return "\n".join(lines)


# One client for every poll while stacktrail runs beside it: `httpx.get` builds a client
# (and its TLS context) per call, 26 ms of CPU here, so polling every 50 ms that way took
# a third of a core from the processes measured; a kept connection costs 0.4 ms a poll.
POLL = httpx.Client()
_ACKED = re.compile(rb"^stacktrail_messages_acked_total (\S+)$", re.M)


def acked(metrics_url: str) -> float:
    """Messages the process has acked so far (0 until its metrics endpoint answers)."""
    try:
        text = POLL.get(metrics_url, timeout=30).content
    except httpx.TransportError:
        return 0.0
    found = _ACKED.search(text)  # one line: no parse of the whole exposition
    return float(found.group(1)) if found else 0.0


def counter(count_url: str) -> int:
    response = POLL.get(count_url, timeout=300)
    if response.status_code == 404:
        return 0
    return int(response.json()["count"])


def archive_phase(
    url: str,
    bodies: list[bytes],
    fast_url: str,
    baseline: float,
    workdir: Path,
    profile: Path | None = None,
    deliver: bool = True,
) -> None:
    """(d) both sinks: fast `_bulk` + spool, then (`deliver`) the spool delivered to
    Swift; `profile`: record (d) with py-spy into this file."""
    from tests.support.devstack import read_env_file

    stack = read_env_file(ROOT / "var/dev-stack/env")
    env = stacktrail_env(url, "st-both", fast_url, workdir) | {
        k: v for k, v in stack.items() if k.startswith("STACKTRAIL_KEYSTONE_")
    }
    env |= {
        "STACKTRAIL_ARCHIVE_ENABLED": "true",
        "STACKTRAIL_ARCHIVE_STORE": "swift",
        "STACKTRAIL_ARCHIVE_CONTAINER": f"bench-{uuid.uuid4().hex[:6]}",
        "STACKTRAIL_ARCHIVE_INTERVAL": "1h",  # deliveries measured separately below
        "STACKTRAIL_SHUTDOWN_GRACE": "1s",
        "STACKTRAIL_SPOOL_DIR": str(workdir / "spool-both"),
    }
    before = counter(f"{fast_url}/_count")
    fill(url, "st-both", bodies)
    count = len(bodies)
    rate_d, rss_d = run_stacktrail(
        url, "st-both", env, count, f"{fast_url}/_count", workdir, profile, label="d"
    )
    assert counter(f"{fast_url}/_count") >= before + count
    spooled = sum(map(dir_bytes, [workdir / "spool-both", *workdir.glob("spool-both.worker*")]))
    print(
        f"(d) stacktrail -> fast _bulk + spool: {rate_d:5.0f} events/s   (d)/(a) = "
        f"{rate_d / baseline:.2f}   peak RSS {rss_d:.0f} MB (per process)   "
        f"spool {spooled / count:.0f} bytes/event"
    )
    if not deliver:
        return
    start = time.perf_counter()
    objects = sent = 0
    for spool in [workdir / "spool-both", *workdir.glob("spool-both.worker*")]:
        flushed = subprocess.run(
            [str(ROOT / ".venv/bin/stacktrail"), "archive", "flush", "--timeout", "1200"],
            env=env | {"STACKTRAIL_SPOOL_DIR": str(spool), "STACKTRAIL_WORKERS": "1"},
            cwd=workdir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found = re.search(r"delivered (\d+) objects \((\d+) events, (\d+) bytes\)", flushed)
        if found is None:
            raise RuntimeError(f"unexpected flush output: {flushed}")
        objects, sent = objects + int(found.group(1)), sent + int(found.group(3))
    elapsed = time.perf_counter() - start
    print(
        f"    spool -> Swift: {objects} objects, {sent / 1e6:.1f} MB gzip in {elapsed:.1f} s: "
        f"{objects / elapsed:.1f} objects/s, {sent / 1e6 / elapsed:.2f} MB/s "
        f"({count / elapsed:.0f} events/s)"
    )


def osmem_binary() -> str:
    found = shutil.which("osmem-server")
    if found:
        return found
    matches = list(
        (ROOT / "var/dev-stack/venvs/osmem").glob(
            "lib/python*/site-packages/osmem_server/bin/osmem-server"
        )
    )
    if not matches:
        raise RuntimeError("osmem-server not found: run scripts/dev-stack start first")
    return str(matches[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating (a)/(b) rounds")
    parser.add_argument(
        "--projects",
        type=int,
        default=50,
        help="projects the events belong to (each active project is a spool segment)",
    )
    parser.add_argument(
        "--days",
        type=float,
        help="the days the events span (default: one event every 7 s, 8 days for 100,000)",
    )
    parser.add_argument("--skip-osmem", action="store_true", help="skip (c)")
    parser.add_argument(
        "--osmem-count",
        type=int,
        default=20_000,
        help="messages for (c): osmem-server indexes about 1,000 documents/s, so (c) "
        "measures the test server more than stacktrail",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every stacktrail run (e.g. SEARCH_BULK_DOCS=500), to tune",
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout (e.g. the main branch) whose stacktrail runs as (b0) in every "
        "round, to measure a change against its base in the same minutes",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="instead of --against: this checkout with these settings runs as (b0) in "
        "every round (tuning by measurement)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record round 1's (b) with py-spy into this file (raw format; with --archive "
        "also (d), into NAME-both.raw) and print where the time goes",
    )
    parser.add_argument(
        "--archive",
        action="store_true",
        help="(d): both sinks on, archive to the dev stack's Swift (needs var/dev-stack/env)",
    )
    parser.add_argument(
        "--skip-delivery",
        action="store_true",
        help="with --archive: stop after (d)'s ingest, without delivering the spool to Swift "
        "(at thousands of projects that takes minutes)",
    )
    args = parser.parse_args()
    OVERRIDES.update(settings_env(args.set))
    contender: tuple[str, Path, dict[str, str]] | None = None
    if args.against is not None:
        contender = (str(args.against), args.against, {})
    elif args.variant:
        contender = (f"variant {' '.join(args.variant)}", ROOT, settings_env(args.variant))
    vhost = make_vhost()
    url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    bodies = messages(args.count, args.projects, args.days)
    size = sum(map(len, bodies)) / len(bodies)
    days = args.count * 7 / 86400 if args.days is None else args.days
    print(
        f"{args.count} messages of {args.projects} projects over {days:.3g} days, "
        f"mean {size:.0f} bytes"
    )
    workdir = Path(tempfile.mkdtemp(prefix="stacktrail-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        fast_port = free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, str(ROOT / "bench/fast_bulk.py"), "--port", str(fast_port)]
            )
        )
        wait_port(fast_port)
        fast_url = f"http://127.0.0.1:{fast_port}"
        # (a) and (b) alternate for several rounds: on a shared machine the load changes
        # from minute to minute, and a ratio of neighbours is steadier than one of two runs.
        baselines, ratios, against_ratios = [], [], []
        for round_ in range(1, args.rounds + 1):
            raw = {}
            for name in ("pika-blocking", "pika-asyncio", "strong"):
                queue = f"raw-{name}-{round_}"
                fill(url, queue, bodies)
                if name == "pika-blocking":
                    raw[name] = drain_pika(url, queue, args.count, 2000)
                elif name == "strong":  # prefetch 2000, one multiple-ack per 500 messages
                    cpu, broker = time.process_time(), broker_cpu()
                    raw[name] = drain_pika_batched(url, queue, args.count, 2000, 500)
                    cpu, broker = time.process_time() - cpu, broker_cpu() - broker
                    print(
                        f"    strong raw consumer: {cpu / args.count * 1e6:.0f} CPU µs per message"
                        f" (the broker meanwhile: {broker / args.count * 1e6:.0f})"
                    )
                else:
                    raw[name] = asyncio.run(drain_pika_asyncio(url, queue, args.count, 2000))
            baseline = raw["strong"]
            runs: dict[str, tuple[float, float]] = {}
            order = [("b", ROOT, {})] if contender is None else [("b", ROOT, {}), contender]
            if round_ % 2 == 0:
                order.reverse()  # neither always runs first
            for label, checkout, extra in order:
                queue = f"st-fast-{round_}-{len(runs)}"
                fill(url, queue, bodies)
                runs[label] = run_stacktrail(
                    url,
                    queue,
                    stacktrail_env(url, queue, fast_url, workdir) | extra,
                    args.count,
                    f"{fast_url}/_count",
                    workdir,
                    args.profile if round_ == 1 and label == "b" else None,
                    checkout,
                    "b" if label == "b" else "b0",
                )
            rate_b, rss_b = runs["b"]
            if contender is not None:
                rate_0, rss_0 = runs[contender[0]]
                against_ratios.append(rate_0 / baseline)
                print(
                    f"    (b0) {contender[0]} -> fast _bulk {rate_0:6.0f} events/s | "
                    f"(b0)/(a) = {rate_0 / baseline:.2f} | peak RSS {rss_0:.0f} MB"
                )
            baselines.append(baseline)
            ratios.append(rate_b / baseline)
            print(
                f"round {round_}: (a) raw drain pika-blocking {raw['pika-blocking']:6.0f}, "
                f"pika-asyncio {raw['pika-asyncio']:6.0f}, strong (multiple-ack per 500) "
                f"{raw['strong']:6.0f} msg/s | (b) stacktrail -> fast _bulk "
                f"{rate_b:6.0f} events/s | (b)/(a) = {rate_b / baseline:.2f} | "
                f"peak RSS {rss_b:.0f} MB"
            )
        baseline = statistics.median(baselines)
        print(f"(b)/(a) median over {args.rounds} rounds: {statistics.median(ratios):.2f}")
        if against_ratios:
            print(
                f"(b0)/(a) median over {args.rounds} rounds: "
                f"{statistics.median(against_ratios):.2f} ({contender[0] if contender else ''})"
            )

        if not args.skip_osmem:
            os_port = free_port()
            procs.append(
                subprocess.Popen(
                    [osmem_binary(), "-addr", f"127.0.0.1:{os_port}", "-no-stdin-watch"]
                )
            )
            wait_port(os_port)
            some = bodies[: args.osmem_count]
            fill(url, "st-osmem", some)
            os_url = f"http://127.0.0.1:{os_port}"
            rate_c, rss_c = run_stacktrail(
                url,
                "st-osmem",
                stacktrail_env(url, "st-osmem", os_url, workdir),
                len(some),
                f"{os_url}/bench*/_count",
                workdir,
            )
            print(
                f"(c) stacktrail -> osmem-server ({len(some)} events): {rate_c:7.0f} events/s   "
                f"(c)/(a) = "
                f"{rate_c / baseline:.2f}   peak RSS {rss_c:.0f} MB"
            )

        if args.archive:
            both_profile = None
            if args.profile is not None:
                both_profile = args.profile.with_name(f"{args.profile.stem}-both.raw")
            archive_phase(
                url, bodies, fast_url, baseline, workdir, both_profile, not args.skip_delivery
            )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
