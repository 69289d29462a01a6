"""Service configuration from the environment (prefix TASS_), shared by the API, worker and CLI."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tass"


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")

# The largest page a listing may serve (`max_page_size` may not be set above it).
MAX_PAGE_SIZE_LIMIT = 10_000


class Settings(BaseSettings):
    """Every knob of the service. Unset URLs fall back to the embedded default under data_dir."""

    model_config = SettingsConfigDict(env_prefix="TASS_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    broker_url: str | None = None
    artifact_url: str | None = None
    data_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)

    train_queue: str = "train"
    evaluate_queue: str = "evaluate"
    progress_every_steps: int = Field(20, ge=1)
    # each idle worker process imports TensorFlow and the trainer before its job arrives
    # (worker/prewarm.py); off, a job imports them after it started running
    worker_prewarm: bool = True
    max_page_size: int = Field(200, ge=1, le=MAX_PAGE_SIZE_LIMIT)
    sse_poll_seconds: float = Field(0.5, gt=0)
    # open /v1/jobs/{id}/events streams: per API key and per API process, and how long one lasts
    # before the server ends it (clients reconnect with Last-Event-ID and resume)
    sse_max_streams_per_key: int = Field(8, ge=1)
    sse_max_streams: int = Field(256, ge=1)
    sse_stream_lifetime_seconds: float = Field(300.0, gt=0)
    presign_downloads: bool = False
    # spot / preemptible nodes (README "Kubernetes and spot capacity"): the cloud whose
    # metadata endpoint the worker polls for a termination notice, and how often
    spot_notice: Literal["off", "aws", "gcp", "azure"] = "off"
    spot_poll_seconds: float = Field(5.0, gt=0)
    heartbeat_seconds: float = Field(5.0, gt=0)
    heartbeat_timeout_seconds: float = Field(60.0, gt=0)
    max_attempts: int = Field(3, ge=1, le=100)
    reaper_interval_seconds: float | None = Field(None, gt=0)
    default_max_runtime_seconds: int = Field(24 * 3600, ge=10)
    redispatch_after_seconds: float = Field(120.0, gt=0)
    # the GPU-pool scheduler (README "Scheduling"): how often the active scheduler decides,
    # how long its lease lasts (another worker takes over once it expires), the fair share's
    # usage half-life, how long a job that does not fit waits before it reserves capacity,
    # and this worker's pool and CPU slots (GPU workers advertise their GPUs)
    scheduler_interval_seconds: float = Field(0.25, gt=0, le=60)
    scheduler_lease_seconds: float = Field(5.0, gt=0)
    scheduler_half_life_seconds: float = Field(3600.0, gt=0)
    scheduler_reserve_after_seconds: float = Field(1800.0, gt=0)
    # waiting jobs, from the head of the queue, whose exact place and reason are stored
    scheduler_positions_shown: int = Field(1000, ge=1, le=100_000)
    worker_pool: str = Field("default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    worker_slots: int = Field(1, ge=1, le=256)
    # storage retention (README "Fault model"): checkpoints a finished job keeps, and how often
    # housekeeping collects them and orphaned objects (0 turns the collector off)
    keep_checkpoints: Literal["all", "last", "last-and-best"] = "last-and-best"
    gc_interval_seconds: float = Field(3600.0, ge=0)
    # job logs (README "Job logs"): stored output per job attempt (the oldest is dropped past
    # it), how often a running job's output is shipped, and how long a finished job keeps it
    job_log_max_mb: float = Field(64.0, gt=0)
    job_log_flush_seconds: float = Field(2.0, gt=0, le=60)
    keep_job_logs_days: float = Field(90.0, gt=0)
    # MLflow (README "MLflow"): every training job logs a run to this tracking server
    mlflow_tracking_uri: str | None = None
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # predictions (README "Predictions"): the serving process's URL, how many models it keeps
    # loaded, images per request and the largest predict body the API accepts
    serve_url: str = "http://127.0.0.1:8100"
    serve_max_models: int = Field(4, ge=1, le=1000)
    serve_timeout_seconds: float = Field(60.0, gt=0)
    # memory bounds: decoded pixels per request (from the images' headers), requests decoding at
    # once in the serving process, and predictions one API process forwards at once (then 503)
    serve_max_request_megapixels: float = Field(64.0, gt=0)
    serve_max_decodes: int = Field(2, ge=1, le=64)
    max_predictions_in_flight: int = Field(8, ge=1, le=1024)
    max_predict_images: int = Field(64, ge=1, le=4096)
    max_predict_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    # uploaded datasets (README "Datasets"): the largest archive one POST /v1/datasets takes,
    # and the bytes of uploaded archives one tenant may keep stored
    max_dataset_bytes: int = Field(2 * 1024**3, ge=1024)
    max_dataset_bytes_per_tenant: int = Field(20 * 1024**3, ge=1024)
    # how long the validation of one uploaded dataset may take, across its attempts
    dataset_validation_timeout_seconds: float = Field(3600.0, gt=0)
    # threads an API process runs request handlers on; its database pool holds as many
    # connections (plus a little overflow), so a handler never waits for a connection. Few:
    # handlers are mostly Python under one GIL, and more threads only fight over it (status
    # polls, 64 clients, 2 cores: 1,002 req/s with 2 threads, 806 with 8, 621 with 32;
    # docs/benchmarks.md). Scale with API processes (`tass api --workers N`); raise it for a
    # database far enough away that handlers mostly wait on it.
    api_threads: int = Field(4, ge=1, le=512)
    # longest `?wait=` a status long-poll may ask for, and how often it re-reads the job
    max_long_poll_seconds: float = Field(60.0, gt=0, le=600)
    long_poll_interval_seconds: float = Field(0.5, gt=0)
    rate_limit: str = "600/minute"
    rate_limit_storage_url: str | None = None
    max_active_jobs_per_tenant: int = Field(20, ge=1)
    # hardening (README "Security"): failed authentications per client address, dashboard
    # session lifetime, time a client gets to send complete request headers, public API docs
    auth_failure_limit: str = "20/minute"
    session_ttl_seconds: int = Field(8 * 3600, ge=60)
    header_timeout_seconds: float = Field(10.0, gt=0)
    # request line and headers: total bytes and header lines, past either 431 (api/http_protocol.py)
    max_header_bytes: int = Field(32 * 1024, ge=1024)
    max_header_count: int = Field(100, ge=8)
    # a request body must start within body_timeout_seconds and then average at least
    # body_min_bytes_per_second, or it gets 408 (api/body_deadline.py)
    body_timeout_seconds: float = Field(30.0, gt=0)
    body_min_bytes_per_second: int = Field(16 * 1024, ge=1)
    public_docs: bool = False
    # FastAPI's native OpenTelemetry (request spans, metrics, logs) for the providers this
    # process configures; off by default: with none configured it costs ~15 us per request
    opentelemetry: bool = False
    metrics_allow_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"]
    )
    # host names the API answers besides the loopback ones (`*.example.com` wildcards; `*` for
    # any): other Host headers get 400 (api/host_allowlist.py, DNS rebinding)
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # proxies (addresses or CIDRs) whose X-Forwarded-For/-Proto name the client; none by default:
    # the connection's own address is the client's (rate limits, auth throttle, /metrics)
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # webhooks (README "Webhooks"): networks a webhook URL may resolve into although they are
    webhook_allow_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # loopback/private/link-local (CIDR list, none by default), the time one delivery may take
    # in all (lookup, connect, request, answer's headers), the first retry delay (doubled
    # each time, with jitter) and how long to retry; a registration's name lookup bound, and
    # how many webhooks a tenant may register (one job event fans out to each)
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=300)
    webhook_resolve_timeout_seconds: float = Field(5.0, gt=0, le=60)
    webhook_max_per_tenant: int = Field(20, ge=1)
    webhook_first_retry_seconds: float = Field(5.0, gt=0, le=10)
    webhook_retry_for_seconds: float = Field(24 * 3600, gt=0)
    webhook_poll_seconds: float = Field(1.0, gt=0)
    # delivered and given-up events, with their attempts, are kept this long
    webhook_keep_days: float = Field(30.0, gt=0)
    # above the longest deadline a spec may ask for (30 days), so Redis never redelivers the
    # message of a healthy running job; lost workers are handled by the reaper instead
    visibility_timeout_seconds: int = Field(31 * 24 * 3600, ge=60)

    @field_validator("data_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part.strip()]
        return value

    @field_validator(
        "metrics_allow_networks",
        "webhook_allow_networks",
        "forwarded_allow_ips",
        "allowed_hosts",
        mode="before",
    )
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'tass.db'}"

    @property
    def resolved_allowed_hosts(self) -> list[str]:
        """The Host names the API answers: the loopback ones and `allowed_hosts`."""
        return [*LOOPBACK_HOSTS, *self.allowed_hosts]

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.data_dir / 'broker.db'}"

    @property
    def resolved_artifact_url(self) -> str:
        return self.artifact_url or (self.data_dir / "artifacts").resolve().as_uri()

    @property
    def resolved_reaper_interval(self) -> float:
        return self.reaper_interval_seconds or max(self.heartbeat_timeout_seconds / 4, 0.5)

    @property
    def resolved_rate_limit_storage_url(self) -> str:
        """Shared Redis counters when the broker is Redis, else per-process memory."""
        if self.rate_limit_storage_url:
            return self.rate_limit_storage_url
        broker = self.resolved_broker_url
        return broker if broker.startswith(("redis://", "rediss://")) else "memory://"

    @property
    def resolved_data_roots(self) -> list[Path]:
        """Folders that server-side dataset paths must lie under (data_dir/datasets if unset)."""
        roots = self.data_roots or [self.data_dir / "datasets"]
        return [Path(root).expanduser().resolve() for root in roots]

    def ensure_data_dir(self) -> None:
        """Create the embedded data folder private to this user (0700, its files 0600),
        tightening one that exists (only called by processes that start up)."""
        from tass.core.datapaths import make_private

        make_private(self.data_dir)


@lru_cache
def get_settings() -> Settings:
    return Settings()
