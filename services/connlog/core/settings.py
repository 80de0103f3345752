"""All settings of connlog, in one typed object read from the environment.

Every variable is ``CONNLOG_<FIELD>`` (e.g. ``CONNLOG_INGEST_PORT``), except the
database, which is ``DATABASE_URL`` (and its read replica ``DATABASE_READ_URL``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A list setting is written comma-separated in the environment
# (``CONNLOG_TRUSTED_PROXIES=10.0.0.0/8,192.168.1.7``).
CommaList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    """connlog settings. Unset ``database_url`` means the embedded PostgreSQL
    under ``data_dir``."""

    model_config = SettingsConfigDict(env_prefix="CONNLOG_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CONNLOG_DATABASE_URL")
    )
    data_dir: Path = Path(".connlog")

    host: str = "127.0.0.1"
    ingest_port: int = Field(default=50051, ge=0, le=65535)
    query_port: int = Field(default=50052, ge=0, le=65535)
    ingest_metrics_port: int = Field(default=9101, ge=0, le=65535)
    query_metrics_port: int = Field(default=9102, ge=0, le=65535)
    gateway_port: int = Field(default=8080, ge=0, le=65535)
    envoy_binary: str | None = None
    # Where Envoy reaches the services ("host:port"); default: this machine's
    # ports. The ingest and query upstreams may list several endpoints,
    # comma-separated ("10.0.0.5:50052,10.0.0.6:50052"): Envoy balances
    # requests over them round robin (each health-checked on its own).
    gateway_ingest_upstream: str | None = None
    gateway_query_upstream: str | None = None
    gateway_vendor_sync_upstream: str | None = None

    migrate_on_start: bool = True

    db_pool_min_size: int = Field(default=1, ge=0)
    db_pool_max_size: int = Field(default=10, ge=1)

    # --- Reads off the primary (connlog.core.replica, docs/operations.md) ---
    # With ``database_read_url`` set (``DATABASE_READ_URL``: a hot standby,
    # e.g. CloudNativePG's ``-ro`` service) the query service reads events,
    # vendor shapes and insights from it through a pool of its own (sized
    # like the primary's); keys, revocation, network names, the live tail and
    # the rollup maintainer stay on the primary. Unset: everything on the
    # primary. The replica is checked every ``database_check_seconds``; while
    # it is unreachable, or more than ``database_read_max_lag_seconds``
    # behind in replay (0: no bound), the query service is NOT_SERVING and
    # its reads answer UNAVAILABLE (never a fallback onto the primary).
    database_read_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_READ_URL", "CONNLOG_DATABASE_READ_URL")
    )
    database_read_max_lag_seconds: float = Field(default=30.0, ge=0, le=86400)

    # Retention (connlog.store.retention): daily partitions kept from
    # ``retention_days`` back to ``partitions_ahead_days`` ahead; older
    # events are refused at ingest and their days dropped. Its loop (``connlog
    # up``, ``connlog retention run``) runs every
    # ``partition_maintenance_seconds``; Kubernetes runs it as a CronJob.
    retention_days: int = Field(default=31, ge=1, le=3650)
    partitions_ahead_days: int = Field(default=7, ge=1, le=366)
    max_future_seconds: int = Field(default=86400, ge=0)
    partition_maintenance_seconds: float = Field(default=3600.0, gt=0)

    max_batch_events: int = Field(default=10000, ge=1)
    # A stream is stored in batches of this many events, with up to
    # ``stream_pipeline_depth`` batches in flight (validating / inserting).
    stream_batch_events: int = Field(default=2000, ge=1)
    stream_pipeline_depth: int = Field(default=2, ge=1, le=8)
    # Worker processes that validate stream batches; -1: one per core beyond
    # the first (at most 8), 0: validate in the service process.
    ingest_workers: int = Field(default=-1, ge=-1, le=64)
    # Ingest processes on one machine (``connlog up``, the benchmark): more
    # than one share ``ingest_port`` through SO_REUSEPORT (the kernel spreads
    # connections over them). Each is started with its ``ingest_process_index``
    # (0 .. n-1): process 0 serves its metrics on ``ingest_metrics_port``,
    # process i > 0 on ``ingest_replica_metrics_port + i - 1`` (0: any free
    # port). With ``ingest_workers`` -1 the cores beyond the processes are
    # shared out as validation workers.
    ingest_processes: int = Field(default=1, ge=1, le=64)
    ingest_process_index: int = Field(default=0, ge=0, le=63)
    ingest_replica_metrics_port: int = Field(default=9111, ge=0, le=65535)
    max_message_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Group commit (connlog.ingest.group_commit): unary calls and REST shapes
    # of at most ``group_commit_call_events`` events are queued and stored
    # together, one set-based INSERT per tenant in one transaction per group,
    # each caller answered after the commit. Up to ``group_commit_lanes``
    # groups are written at once (each on its own pooled connection; 0: no
    # group commit, every call writes alone; a second lane starts only while
    # more is queued than one group takes); a group holds at most
    # ``group_commit_max_events`` events; at most ``group_commit_queue_calls``
    # calls wait for a group (more wait to queue: backpressure). After a
    # round with several callers (a group and the calls queued while it was
    # written) a lane lingers until as many calls are queued again, at most
    # ``group_commit_linger_ms`` (0: it takes what is queued as soon as it is
    # free); after a round with a single caller it never waits.
    group_commit_lanes: int = Field(default=2, ge=0, le=16)
    group_commit_call_events: int = Field(default=16, ge=1)
    group_commit_max_events: int = Field(default=1000, ge=1)
    group_commit_queue_calls: int = Field(default=4096, ge=1)
    group_commit_linger_ms: float = Field(default=5.0, ge=0, le=100)
    # The commit feed (connlog.store.feed): after storing events an ingest
    # process wakes the feed's readers (live tail, rollups) with one NOTIFY,
    # sent after the commit in a statement of its own and at most once per
    # ``feed_notify_interval_ms`` (a NOTIFY inside the storing transaction
    # would serialise every commit of the server behind one lock).
    feed_notify_interval_ms: float = Field(default=20.0, ge=0, le=1000)

    # --- The live tail (connlog.query.tail, WatchConnectionEvents) ---
    # One feed follower per query process fans newly stored events out to at
    # most ``watch_max_watchers`` open watches (more: RESOURCE_EXHAUSTED).
    # Each holds up to ``watch_buffer_events`` events its client has not read
    # yet; one more and it is dropped (RESOURCE_EXHAUSTED, resumable). A quiet
    # watch gets an empty message every ``watch_heartbeat_seconds``; the
    # follower reads the feed on every notification and at least every
    # ``watch_poll_seconds`` (events stored by paths that do not notify).
    watch_max_watchers: int = Field(default=1000, ge=1, le=100_000)
    watch_buffer_events: int = Field(default=10_000, ge=1, le=1_000_000)
    watch_heartbeat_seconds: float = Field(default=15.0, gt=0, le=3600)
    watch_poll_seconds: float = Field(default=5.0, gt=0, le=3600)

    # --- Connection rollups (connlog.query.rollups, docs/insights.md) ---
    # Each query process runs a rollup maintainer (``rollup_maintainer``);
    # one at a time folds (a PostgreSQL advisory lock), on every feed
    # notification and at least every ``rollup_period_seconds`` (also how
    # often a standby process tries to take over). A fold covers a span of
    # transaction ids sized to take about ``rollup_fold_seconds`` and to hold
    # at most ``rollup_fold_max_events`` events (a bound on one transaction's
    # work after a backlog; the live tail's readers pass a fold in progress,
    # connlog.store.feed.READER_HORIZON); a failed
    # pass is logged and retried after ``rollup_retry_seconds``. Passes that
    # fold come at most every ``rollup_fold_interval_seconds`` (a heavy load
    # is folded in fewer, larger folds: each fold has a fixed cost).
    rollup_maintainer: bool = True
    rollup_fold_interval_seconds: float = Field(default=2.0, ge=0, le=3600)
    rollup_period_seconds: float = Field(default=2.0, gt=0, le=3600)
    rollup_fold_seconds: float = Field(default=0.5, gt=0, le=60)
    rollup_fold_max_events: int = Field(default=50_000, ge=1, le=10_000_000)
    rollup_retry_seconds: float = Field(default=5.0, gt=0, le=3600)

    meraki_rate_limit_per_second: float = Field(default=10.0, gt=0)
    # --- Shared rate budgets (connlog.store.budgets, docs/security.md) ---
    # Every rate limit per organisation or per key is a token bucket in the
    # database, shared by every replica. Meraki's per-organisation limit:
    # ``meraki_rate_limit_per_second`` with bursts of ``meraki_rate_limit_burst``
    # (unset: the rate, at least 1); one take (a round trip) per request.
    # Write budgets (``key_write_*``, ``device_write_*`` below): a process
    # takes up to rate × ``write_budget_lease_seconds`` whole tokens at once
    # and spends them locally for up to a second (0: a round trip per write).
    # Buckets full again are deleted every ``rate_bucket_sweep_seconds``.
    meraki_rate_limit_burst: float | None = Field(default=None, ge=1)
    write_budget_lease_seconds: float = Field(default=0.1, ge=0, le=1)
    rate_bucket_sweep_seconds: float = Field(default=60.0, gt=0, le=86400)
    mojo_session_max_minutes: int = Field(default=1440, ge=1)

    vendor_sync_port: int = Field(default=50053, ge=0, le=65535)
    vendor_sync_metrics_port: int = Field(default=9103, ge=0, le=65535)
    sync_ingest_address: str | None = None
    sync_schedule_seconds: float = Field(default=1.0, gt=0)
    sync_overlap_seconds: float = Field(default=300.0, ge=0)
    sync_initial_lookback_seconds: float = Field(default=86400.0, gt=0)
    sync_http_timeout_seconds: float = Field(default=30.0, gt=0)
    sync_http_attempts: int = Field(default=6, ge=1)
    sync_backoff_base_seconds: float = Field(default=0.5, gt=0)

    # --- Vendor-sync replicas: sources shared out by leases (store/sync.py) ---
    # Each replica holds at most ``sync_claim_batch`` sources at a time, each
    # on a lease of ``sync_lease_seconds`` in the database, renewed every third
    # of it while the source is polled; a dead replica's sources are taken
    # over once its leases lapse (at most ``sync_lease_seconds`` later).
    sync_lease_seconds: float = Field(default=30.0, ge=1, le=3600)
    sync_claim_batch: int = Field(default=16, ge=1, le=1000)

    # --- Vendor-sync network discovery (connlog.vendorsync.schedule) ---
    # connlog's share of Meraki's 10 requests/s per organisation (other
    # applications use the same budget): a Meraki source that sets no
    # ``rate_limit_per_second`` paces its organisation at 10 x this share,
    # shared by every source of the organisation in this replica. A
    # discovering source lists its network's clients again once its last
    # listing is ``sync_discovery_interval_seconds`` old.
    sync_meraki_budget_share: float = Field(default=0.5, gt=0, le=1)
    sync_discovery_interval_seconds: float = Field(default=3600.0, ge=0, le=31 * 86400)

    # How long a key look-up is remembered; a revoked key is forgotten at
    # once anyway (every process listens for changed keys, and does not use
    # this cache while it cannot listen).
    auth_cache_seconds: float = Field(default=60.0, ge=0)
    # How often each service checks that it reaches the database (its gRPC
    # health is NOT_SERVING while it does not), and the Retry-After it
    # suggests to callers meanwhile.
    database_check_seconds: float = Field(default=1.0, gt=0)
    retry_after_seconds: int = Field(default=2, ge=1, le=3600)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    log_level: str = "info"
    log_format: str = Field(default="json", pattern="^(json|console)$")
    # The asyncio event loop of every connlog process: uvloop (libuv, the
    # loop asyncpg recommends; ~12% less CPU per single-event call,
    # docs/performance.md) or Python's own. ``auto``: uvloop where it is
    # installed (it is a dependency on Linux and macOS), else Python's.
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"

    # --- Security (docs/security.md) ---
    # Keys that seal vendor credentials at rest (AES-256-GCM): each the
    # base64 of 32 random bytes, comma-separated; the first seals, every one
    # opens (rotation: put a new key first, run ``connlog secrets rotate``,
    # then drop the old one). Or ``secret_keys_file``: one key per line (a
    # mounted Kubernetes Secret). ``connlog up`` makes a file under
    # ``data_dir`` when neither is set.
    secret_keys: SecretStr | None = None
    secret_keys_file: Path | None = None
    # The vendor-sync service's own key (role sync_service), with which it
    # ingests its sources' events; scoped by the ingest service to the tenant,
    # vendor and network of the source each call names.
    sync_service_key: SecretStr | None = None
    # Outbound calls of vendor-sync (connlog.vendorsync.egress): https only
    # unless ``sync_allow_http``; loopback, private, link-local, metadata and
    # other non-public addresses refused unless an entry here names them: a
    # CIDR or address containing it, or a host name (every address it resolves
    # to). Checked at source create/update and on every connection.
    sync_allow_http: bool = False
    sync_allowed_destinations: CommaList = ()
    # Absolute URLs in answers (Meraki Link headers) are built from this
    # (e.g. https://connlog.example.com); unset: the gateway's own address.
    # X-Forwarded-Proto/Host are honoured only from ``trusted_proxies``
    # (CIDRs of the hops in front of the gateway).
    public_base_url: str | None = None
    trusted_proxies: CommaList = ()
    # Per-key write budgets, shared by every write path of a key and every
    # replica (buckets in the database, taken in leases: see
    # ``write_budget_lease_seconds``): events per second (a request costs its
    # event count, at least 1) with a burst of ``*_burst``; device keys have
    # their own, smaller budget.
    key_write_events_per_second: float = Field(default=100_000.0, gt=0)
    key_write_burst: float = Field(default=200_000.0, ge=1)
    device_write_events_per_second: float = Field(default=20.0, gt=0)
    device_write_burst: float = Field(default=100.0, ge=1)
    # Envoy's admin interface listens on this Unix socket (owner-only, never
    # TCP); unset: ``data_dir/envoy-admin.sock`` (or, when that path is too
    # long for a socket, one under a private directory in the temp folder).
    gateway_admin_socket: Path | None = None
    # gRPC reflection and health on the public gateway port (off: only on
    # each service's own port). Probes ask the gateway's ``/healthz``, which
    # is 200 only while Envoy's active gRPC health checks of the ingest and
    # query services (every ``gateway_health_check_seconds``) pass.
    gateway_expose_reflection: bool = False
    gateway_expose_health: bool = False
    gateway_health_check_seconds: float = Field(default=2.0, gt=0, le=300)

    @field_validator("sync_allowed_destinations", "trusted_proxies", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str | None) -> str | None:
        from connlog.core.origin import checked_base_url

        return None if value is None or not value.strip() else checked_base_url(value.strip())

    @model_validator(mode="after")
    def _ingest_process_index(self) -> Settings:
        if self.ingest_process_index >= self.ingest_processes:
            raise ValueError(f"ingest_process_index {self.ingest_process_index} is not below ingest_processes "
                             f"({self.ingest_processes})")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from connlog.core.origin import checked_networks

        checked_networks(value)
        return value
