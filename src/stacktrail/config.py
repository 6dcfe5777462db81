"""All settings, from `STACKTRAIL_*` environment variables and an optional TOML file.

Validated once at start, before anything connects. Environment variables win over the
file named by `STACKTRAIL_CONFIG`; unknown keys in either are refused, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from stacktrail.domain.defaults import MAX_INTERVAL
from stacktrail.domain.durations import format_duration, parse_duration
from stacktrail.domain.event_limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FUTURE_SKEW,
    DEFAULT_MAX_KEYS,
    DEFAULT_MAX_STRING_CHARS,
    MAX_DEPTH_CEILING,
)
from stacktrail.domain.trail import ArchiveFormat, ArchiveStore
from stacktrail.domain.validation import check_pattern

ENV_PREFIX = "STACKTRAIL_"
CONFIG_ENV = "STACKTRAIL_CONFIG"


def _with_unit(value: Any) -> timedelta:
    """A settings duration: a number needs its unit (`5` could mean 5 s or 5 min)."""
    bare = isinstance(value, int | float) and not isinstance(value, bool)
    if bare or (isinstance(value, str) and value.strip().replace(".", "", 1).isdigit()):
        raise ValueError(
            f"duration {value!r} has no unit: write it with ms, s, m, h or d, e.g. {value}s"
        )
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_with_unit),
    PlainSerializer(format_duration, return_type=str),
]


def _parse_duration_or_zero(value: Any) -> timedelta:
    if value in (0, "0", timedelta(0)) or (isinstance(value, str) and value.strip() == "0s"):
        return timedelta(0)
    return _with_unit(value)


# a duration where 0 means "never" (e.g. never trust a cached value)
DurationOrZero = Annotated[
    timedelta,
    BeforeValidator(_parse_duration_or_zero),
    PlainSerializer(format_duration, return_type=str),
]


class SearchLayoutKind(StrEnum):
    PER_PROJECT = "per-project"  # one index family per project (legacy Hermes)
    SHARED = "shared"  # one data stream, tenants in `tenant_ids` (current Hermes)


class AuthMode(StrEnum):
    KEYSTONE = "keystone"
    NOAUTH = "noauth"


class EventLoop(StrEnum):
    UVLOOP = "uvloop"  # libuv's loop (faster: see the README's settings table)
    ASYNCIO = "asyncio"  # the standard library's


class QueueMode(StrEnum):
    OWN = "own"  # stacktrail's durable queue with its bindings
    EXISTING = "existing"  # a queue the producers declare (e.g. notifications.info), as is


# The control exchanges (oslo.messaging `control_exchange`) of the services that publish
# CADF: keystone natively, the others through keystonemiddleware's audit middleware;
# `openstack` is oslo's default (e.g. swift's audit middleware).
DEFAULT_BINDING_EXCHANGES = (
    "openstack",
    "keystone",
    "nova",
    "neutron",
    "cinder",
    "glance",
    "octavia",
    "designate",
    "manila",
    "barbican",
    "heat",
    "ironic",
    "magnum",
    "masakari",
    "aodh",
)
DEFAULT_BINDINGS = [f"{exchange}:notifications.#" for exchange in DEFAULT_BINDING_EXCHANGES]


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1 (an address nobody else can reach)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SettingsError(Exception):
    """Settings could not be loaded; the message is meant for the operator."""


def reachable_host(host: str) -> str:
    """A listen address as one connects to it here: a wildcard is reached as localhost."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "[::]", "") else host


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        env_nested_delimiter=None,
    )

    # --- RabbitMQ source
    amqp_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/%2F", description="Broker to consume from."
    )
    amqp_queue: str = Field("stacktrail", description="Queue the pipeline consumes.")
    amqp_queue_mode: QueueMode = Field(
        QueueMode.OWN,
        description="`own`: a durable queue of stacktrail's with STACKTRAIL_AMQP_BINDINGS; "
        "`existing`: consume a queue the producers declare (e.g. `notifications.info`) as "
        "it is, binding nothing (declared like oslo.messaging does when missing).",
    )
    amqp_bindings: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_BINDINGS),
        description="`exchange:routing_key` pairs bound to the queue (topic exchanges).",
    )
    amqp_dead_letter_exchange: str = Field(
        "stacktrail.dead", description="Exchange (and queue) for messages that cannot be used."
    )
    amqp_exchange_durable: bool = Field(
        False,
        description="Durability of exchanges (and, in `existing` mode, of the queue) "
        "stacktrail declares when missing: oslo.messaging's `amqp_durable_queues` "
        "(default False).",
    )
    amqp_dead_letter_noise: bool = Field(
        False,
        description="Dead-letter well-formed notifications that carry no CADF event "
        "(default: ack them and count them by event type).",
    )
    amqp_dead_letter_max_length: int = Field(
        100_000,
        ge=1,
        description="Most messages the dead-letter queue keeps; beyond, the oldest are "
        "dropped (counted and logged).",
    )
    amqp_dead_letter_max_bytes: int = Field(
        1 << 30, ge=1 << 16, description="Most body bytes the dead-letter queue keeps."
    )
    amqp_dead_letter_ttl: DurationOrZero = Field(
        timedelta(0),
        description="Dead letters older than this are dropped (counted); 0: kept until "
        "the length or byte bound pushes them out.",
    )
    amqp_prefetch: int = Field(
        2000, ge=1, le=65535, description="Unacked messages in flight: bounds memory."
    )
    amqp_ack_interval: DurationOrZero = Field(
        timedelta(0),
        description="Longest an ack waits after its message finished, so the messages "
        "finished meanwhile share one frame; 0: at once (what finishes in one pass of the "
        "event loop shares a frame).",
    )
    amqp_ack_gap_hold: DurationOrZero = Field(
        timedelta(seconds=1),
        description="Longest a finished message waits for an older unfinished one so both "
        "are acked by one frame; then (or once such messages fill half the prefetch window) "
        "it is acked on its own. 0: at once, one frame per message.",
    )
    workers: int = Field(
        1,
        ge=1,
        le=32,
        description="Pipeline processes `stacktrail run` keeps running on one queue (a "
        "process keeps at most one core busy). Worker k >= 1 is a child with the spool "
        "<spool dir>.worker<k>, the metrics port + k and, if STACKTRAIL_ARCHIVE_WORKER is "
        "set, that name with -<k>.",
    )
    worker_number: int = Field(
        0,
        ge=0,
        le=31,
        description="Which pipeline worker this process is: 0 for the process that was "
        "started, k for its child k (the parent sets it; log lines of a child say `worker k`).",
    )
    event_loop: EventLoop = Field(
        EventLoop.UVLOOP,
        description="The event loop `stacktrail run` runs on: uvloop (libuv, faster) or "
        "asyncio (the standard library's).",
    )
    pipeline_gc_threshold: int = Field(
        50_000,
        ge=0,
        le=10_000_000,
        description="Allocations between collections of the youngest generation of "
        "Python's cycle collector in a process that runs the pipeline (after start-up, "
        "its objects are frozen out of every collection). CPython's 700 made the "
        "collector scan the in-flight events over and over; 0: the interpreter's default.",
    )
    amqp_reconnect_max: Duration = Field(
        timedelta(seconds=30), description="Longest wait between reconnect attempts."
    )

    amqp_unacked_max_age: Duration = Field(
        timedelta(minutes=5),
        description="/readyz fails while the oldest unacked message is older than this "
        "(acks stalled while messages wait).",
    )

    # --- event limits (what decode accepts, every sink can encode; see events.limits)
    event_max_bytes: int = Field(
        DEFAULT_MAX_BYTES, ge=1024, description="Largest message body; larger ones are refused."
    )
    event_max_depth: int = Field(
        DEFAULT_MAX_DEPTH,
        ge=8,
        le=MAX_DEPTH_CEILING,
        description="Deepest nesting of objects/lists in an event (the event is level 1).",
    )
    event_max_string_chars: int = Field(
        DEFAULT_MAX_STRING_CHARS, ge=1024, description="Longest string (value or key)."
    )
    event_max_keys: int = Field(
        DEFAULT_MAX_KEYS, ge=100, description="Most object keys in one event, counted over all."
    )
    event_max_future_skew: Duration = Field(
        DEFAULT_MAX_FUTURE_SKEW,
        description="Events dated further ahead of the clock are dead-lettered.",
    )

    events_default_exclude: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["read/list", "read/get"],
        description="The operator's default event rule: events matching these globs (event "
        "type, action or target typeURI) go to no trail whose own include list does not "
        "name them (Hermes' Logstash dropped read/list and read/get); empty: off.",
    )

    # --- config store
    database_url: str = Field(
        "sqlite+aiosqlite:///./var/stacktrail.db",
        description="SQLAlchemy URL of the config store (sqlite+aiosqlite or postgresql+asyncpg).",
    )

    # --- search sink
    search_url: str = Field("", description="Elasticsearch/OpenSearch base URL; empty: off.")
    search_username: str = ""
    search_password: str = ""
    search_verify_tls: bool = True
    search_index_template: str = Field(
        "audit-{project_id}-{yyyy.MM}",
        description="Index name per event; {project_id}, {yyyy}, {MM}, {dd}, {yyyy.MM}.",
    )
    search_layout: SearchLayoutKind = Field(
        SearchLayoutKind.PER_PROJECT,
        description="per-project: an index family per project (legacy Hermes reads "
        "`audit-{tenant}*`); shared: one index for all, tenants in `tenant_ids`.",
    )
    search_shared_index: str = Field(
        "hermes", description="The shared layout's index or data stream (what Hermes reads)."
    )
    search_data_stream: bool = Field(
        True, description="Shared layout: the index template declares a data stream."
    )
    search_max_result_window: int = Field(
        20000, ge=1, le=1_000_000, description="index.max_result_window (Hermes pages to 20000)."
    )
    search_bulk_docs: int = Field(1000, ge=1, le=100_000)
    search_bulk_bytes: int = Field(5_000_000, ge=1000)
    search_flush_interval: Duration = Field(timedelta(milliseconds=200))
    search_max_inflight: int = Field(4, ge=1, le=64, description="Bulk requests in flight.")
    search_timeout: Duration = Field(timedelta(seconds=30))

    # --- archive sink
    spool_dir: Path = Field(Path("./var/spool"), description="Local durable spool.")
    spool_max_bytes: int = Field(
        1 << 30, ge=1 << 16, description="Spool bound; when full, consumption pauses."
    )
    spool_project_max_bytes: int = Field(
        256 << 20,
        ge=1 << 12,
        description="Spool bytes one project may hold while its deliveries fail; beyond, "
        "its new events are dead-lettered with the reason, so one broken destination "
        "cannot fill the spool for everyone (keep it well below the spool bound). Each "
        "worker's spool (STACKTRAIL_WORKERS) holds a share of its own.",
    )
    spool_seen_ids: int = Field(
        100_000,
        ge=2,
        description="Ids of recently spooled records kept (in the spool directory) so a "
        "redelivered message already durable in the spool is not archived twice.",
    )
    archive_enabled: bool = True
    archive_store: ArchiveStore = Field(
        ArchiveStore.FILE, description="Where archives go: file, swift or s3."
    )
    archive_dir: Path = Field(
        Path("./var/archive"), description="Root directory of the `file` store."
    )
    archive_container: str = Field("audit-trail", description="Default container/bucket.")
    archive_prefix: str = Field("", description="Default key prefix inside the container.")
    archive_interval: Duration = Field(
        timedelta(minutes=15),
        le=MAX_INTERVAL,
        description="Default delivery interval (e.g. 30s, 5m, 1h); at most 1d, the longest "
        "interval a trail may have.",
    )
    archive_segment_max_bytes: int = Field(64 << 20, ge=1 << 10)
    digest_key_file: Path | None = Field(
        None,
        description="Ed25519 private key (PEM, `stacktrail keys generate`) that signs the "
        "archive digests; digests are written only when this is set.",
    )
    digest_interval: Duration = Field(
        timedelta(hours=1), description="Period one archive digest covers (e.g. 1m, 1h)."
    )
    archive_format: ArchiveFormat = ArchiveFormat.JSON
    archive_regions: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["RegionOne"])
    archive_worker: str = Field(
        "",
        description="Worker name in object keys; unique per worker on one queue (default: "
        "host name and a hash of the spool directory, stable across restarts).",
    )
    archive_upload_concurrency: int = Field(
        8,
        ge=1,
        le=64,
        description="Object uploads in flight per region; a region's slots are its own "
        "(bench/scale.py delivery: 8 reaches the store's own rate on the dev stack; more only "
        "queue inside Swift).",
    )
    archive_retry_max: Duration = Field(timedelta(minutes=5))
    archive_log_interval: Duration = Field(
        timedelta(minutes=1),
        description="At most one INFO line per this interval sums up the archive "
        "deliveries (objects, events, projects, failures).",
    )
    archive_unready_after: Duration = Field(
        timedelta(minutes=5),
        description="/readyz fails (check `archive`) once archive deliveries have failed "
        "without a success for this long, or while the spool is full.",
    )
    archive_probe_interval: Duration = Field(
        timedelta(seconds=1),
        description="While deliveries wait after the store was unreachable, one cheap "
        "request per region probes it this often; an answer ends their delays.",
    )
    shutdown_grace: Duration = Field(
        timedelta(seconds=20), description="Time SIGTERM allows to finish deliveries."
    )

    # --- retention
    retention_days: int = Field(90, ge=1, description="Default retention of a trail.")
    retention_max_days: int = Field(3650, ge=1, description="Longest retention allowed.")

    # --- scheduler
    search_delivery_settle: Duration = Field(
        timedelta(minutes=2),
        description="Search-sourced deliveries take events ingested at least this long ago.",
    )
    search_retention_enabled: bool = Field(
        True, description="Delete/trim search indices past each project's retention."
    )
    search_retention_interval: Duration = Field(timedelta(hours=1))
    archive_expiry_enabled: bool = Field(
        True,
        description="Delete archived objects past their expiry in S3 and file stores "
        "(Swift's expirer does it for Swift; off where an S3 lifecycle rule does it).",
    )
    archive_expiry_interval: Duration = Field(timedelta(hours=1))

    # --- S3 store
    s3_endpoint_url: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"

    # --- Keystone (service identity; also validates API tokens)
    keystone_url: str = Field("", description="Keystone v3 URL; empty: no Keystone.")
    keystone_username: str = ""
    keystone_password: str = ""
    keystone_project_name: str = ""
    keystone_user_domain_name: str = "Default"
    keystone_project_domain_name: str = "Default"
    keystone_interface: str = "public"
    keystone_cloud_admin_project: str = Field(
        "admin",
        description="Holders of `admin` on this project (id, or name in the cloud admin "
        "domain) are cloud admins.",
    )
    keystone_cloud_admin_domain: str = Field(
        "",
        description="Domain (name or id) of the cloud admin project named by name; "
        "empty: STACKTRAIL_KEYSTONE_PROJECT_DOMAIN_NAME.",
    )
    policy_file: Path | None = Field(
        None,
        description="oslo.policy YAML file overriding the default role rules "
        "(`stacktrail policy sample`); read again when it changes.",
    )
    token_cache_ttl: Duration = Field(
        timedelta(seconds=60),
        description="How long a validated token is trusted for reads (a revoked token or "
        "removed role keeps reading this long).",
    )
    token_cache_ttl_writes: DurationOrZero = Field(
        timedelta(0),
        description="How long a validation is trusted for writes (unsafe methods); 0 asks "
        "Keystone on every write, so a revoked token cannot change anything.",
    )
    # --- Swift ACL-mode writer: an identity WITHOUT the reseller role, so that only the
    # customer's container ACL lets it write (empty username: ACL-mode trails fail).
    swift_acl_username: str = Field(
        "",
        description="Keystone user that writes ACL-mode trails; must not hold the reseller "
        "role. Empty: ACL-mode deliveries fail with a clear error.",
    )
    swift_acl_password: str = ""
    swift_acl_project_name: str = ""
    swift_acl_user_domain_name: str = "Default"
    swift_acl_project_domain_name: str = "Default"
    swift_reseller_role: str = Field(
        "ResellerAdmin",
        description="Swift's reseller_admin_role; the ACL-mode writer is refused if it holds it.",
    )

    # --- API and UI
    api_listen: str = Field("127.0.0.1:8080", description="host:port of the API and UI.")
    api_max_body_bytes: int = Field(
        1024 * 1024,
        ge=1,
        description="Largest request body (API and UI forms), refused with 413 before "
        "authentication.",
    )
    api_max_json_depth: int = Field(
        32, ge=2, le=200, description="Deepest nesting of a JSON request body (422 beyond)."
    )
    api_max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="Largest request line and headers of a request."
    )
    api_header_timeout: Duration = Field(
        timedelta(seconds=10),
        description="Time a connection has to send a request's headers (slow clients are cut).",
    )
    api_body_timeout: Duration = Field(
        timedelta(seconds=30), description="Time a request has to send its whole body (408)."
    )
    api_keep_alive_timeout: Duration = Field(
        timedelta(seconds=5), description="How long an idle keep-alive connection stays open."
    )
    api_max_connections: int = Field(
        1000, ge=1, description="Open connections (or requests) beyond this are answered 503."
    )
    auth_mode: AuthMode = Field(
        AuthMode.KEYSTONE,
        description="`noauth` is the local mode (`stacktrail run --local`): no sign-in, "
        "every visitor is a cloud admin; refused on a non-loopback listen address unless "
        "STACKTRAIL_NOAUTH_ALLOW_REMOTE is true.",
    )
    noauth_allow_remote: bool = Field(
        False,
        description="Let `auth_mode = noauth` listen on a non-loopback address (anybody "
        "reaching it may change every trail).",
    )
    reload_interval: Duration = Field(
        timedelta(seconds=2), description="How often the pipeline checks for changed trails."
    )

    metrics_listen: str = Field(
        "127.0.0.1:9180",
        description="host:port of /healthz, /readyz and /metrics in processes that do not "
        "run the API (which serves them itself).",
    )

    # --- owners
    owner_check: bool = Field(
        True,
        description="Check event owners against Keystone (when STACKTRAIL_KEYSTONE_URL is "
        "set): events of projects Keystone does not know go to the unscoped trail.",
    )
    owner_cache_ttl: Duration = Field(
        timedelta(hours=1), description="How long a project Keystone knows is remembered."
    )
    owner_negative_cache_ttl: Duration = Field(
        timedelta(minutes=5),
        description="How long an unknown project is remembered (a new project's first "
        "events go to the unscoped trail at most this long).",
    )
    owner_lookup_retry: Duration = Field(
        timedelta(seconds=30),
        description="After Keystone could not answer for an owner, events of owners not "
        "yet known go where their ids say and Keystone is asked again after this long.",
    )
    owner_cache_size: int = Field(
        100_000, ge=100, description="Most owners remembered (known and unknown)."
    )
    domain_archive_container: str = Field(
        "",
        description="Container (in the unscoped trail's account) that domain-owned events "
        "are archived to; empty: the unscoped trail's own container. Their search "
        "index stays the domain's.",
    )

    # --- logging
    log_level: str = "INFO"
    log_format: str = Field("text", pattern="^(text|json)$")

    @field_validator("amqp_bindings", "archive_regions", "events_default_exclude", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("events_default_exclude")
    @classmethod
    def _check_patterns(cls, value: list[str]) -> list[str]:
        return [check_pattern(pattern) for pattern in value]

    @field_validator("amqp_bindings")
    @classmethod
    def _check_bindings(cls, value: list[str]) -> list[str]:
        for item in value:
            exchange, sep, key = item.partition(":")
            if not sep or not exchange or not key:
                raise ValueError(f"binding {item!r} must be `exchange:routing_key`")
        return value

    @field_validator("api_listen", "metrics_listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} must be host:port, e.g. 127.0.0.1:8080")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log level must be DEBUG, INFO, WARNING or ERROR")
        return value

    @model_validator(mode="after")
    def _local_mode_stays_local(self) -> Settings:
        if (
            self.auth_mode is AuthMode.NOAUTH
            and not self.noauth_allow_remote
            and not is_loopback(self.api_host)
        ):
            raise ValueError(
                f"auth_mode=noauth (the local mode, no sign-in) listens only on a loopback "
                f"address, not {self.api_listen}: use 127.0.0.1:PORT, or set "
                f"STACKTRAIL_NOAUTH_ALLOW_REMOTE=true to let anybody reaching it change "
                f"every trail"
            )
        return self

    @property
    def search_enabled(self) -> bool:
        return bool(self.search_url)

    @property
    def api_host(self) -> str:
        return self.api_listen.rpartition(":")[0]

    @property
    def api_port(self) -> int:
        return int(self.api_listen.rpartition(":")[2])

    @property
    def metrics_host(self) -> str:
        return self.metrics_listen.rpartition(":")[0]

    @property
    def metrics_port(self) -> int:
        return int(self.metrics_listen.rpartition(":")[2])

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


def _unknown_env_keys(environ: dict[str, str]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | {CONFIG_ENV}
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)


def load_settings(**overrides: Any) -> Settings:
    """Load and validate settings, or raise SettingsError with an operator-readable message."""
    unknown = _unknown_env_keys(dict(os.environ))
    if unknown:
        raise SettingsError("unknown setting(s) in the environment: " + ", ".join(unknown))
    config_file = os.environ.get(CONFIG_ENV)
    if config_file and not Path(config_file).is_file():
        raise SettingsError(f"{CONFIG_ENV}={config_file}: no such file")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            if not field:  # a rule across settings: its message names them
                lines.append(f"  {error['msg'].removeprefix('Value error, ')}")
                continue
            env_name = ENV_PREFIX + field.upper()
            if error["type"] == "extra_forbidden":  # only the file can hold unknown keys
                lines.append(f"  key `{field}` in {config_file}: unknown setting")
                continue
            where = f"{env_name}, or key `{field}` in {config_file}" if config_file else env_name
            lines.append(f"  {field} ({where}): {error['msg']}")
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from None
    except ValueError as exc:  # malformed TOML: tomllib names the line and column
        where = f" in {config_file}" if config_file else ""
        raise SettingsError(f"invalid settings{where}: {exc}") from None


SECRET_WORDS = ("password", "secret", "token", "access_key")


def display_value(name: str, value: Any) -> str:
    """A setting as `stacktrail settings` prints it: credentials masked, also a password
    inside a URL (`amqp://guest:***@host/`)."""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)  # the environment variable's form
    text = "" if value is None else str(value)
    if any(word in name for word in SECRET_WORDS) and text:
        return "***"
    return mask_url_password(text)


def mask_url_password(text: str) -> str:
    """`scheme://user:password@host` -> `scheme://user:***@host`; other text unchanged."""
    return re.sub(
        r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:\s]*):[^/@\s]*@", r"\g<head>:***@", text
    )
