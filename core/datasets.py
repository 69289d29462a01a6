"""Uploaded datasets on the database: their rows, the tenant's stored bytes (the quota), who
uses one (delete is refused meanwhile), the validation outcome, and where s3:// dataset paths
may point. The bytes themselves live in the object store below `datasets/{id}/`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tass.contract.artifacts import JOBS_PREFIX, MODELS_PREFIX
from tass.contract.statuses import ACTIVE_STATUSES, DatasetStatus, SweepStatus
from tass.core.clock import database_now
from tass.core.db import changed_rows
from tass.core.errors import DomainError
from tass.core.models import Job, Sweep, UploadedDataset
from tass.core.redaction import path_free
from tass.core.settings import Settings

# request Content-Type -> the archive format stored (and the file suffix the loader reads)
ARCHIVE_FORMATS = {
    "application/gzip": "tar.gz",
    "application/x-gzip": "tar.gz",
    "application/x-tar": "tar",
    "application/zip": "zip",
    "application/x-zip-compressed": "zip",
}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


class DatasetUnavailable(DomainError, LookupError):
    """A job names an uploaded dataset it cannot use: `status_code` is 404 (missing or
    another tenant's) or 409 (not ready, or its digest is not the one the job pinned)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status

    def detail(self) -> str:
        return f"dataset.id: {self}"


DATASETS_PREFIX = "datasets"
DATASET_KEY = re.compile(rf"^{DATASETS_PREFIX}/(?P<id>[0-9a-f]{{32}})/")
# the top-level folders the object store writes below its own prefix: checkpoints, models
# and uploaded datasets (an s3:// dataset path may never name one of them)
STORE_FOLDERS = (JOBS_PREFIX, MODELS_PREFIX, DATASETS_PREFIX)


def dataset_key(dataset_id: str, archive_format: str) -> str:
    return f"{DATASETS_PREFIX}/{dataset_id}/archive.{archive_format}"


# the first key of the PostgreSQL advisory locks that serialize one tenant's dataset quota
# (core.job_lifecycle.QUOTA_LOCK_CLASS, 0x7A55, is the jobs' quota)
DATASET_QUOTA_LOCK_CLASS = 0x7A56


class DatasetQuotaExceeded(Exception):
    """The tenant's stored datasets plus this one would pass its quota."""

    def __init__(self, tenant: str, stored: int, size: int, quota: int) -> None:
        super().__init__(f"tenant {tenant!r} stores {stored} bytes; {size} more passes {quota}")
        self.stored = stored


def add_within_quota(session: Session, quota: int, **values: Any) -> UploadedDataset:
    """Insert the dataset's row unless the tenant's stored bytes and this one's `size` pass
    `quota` (DatasetQuotaExceeded); the caller commits. The sum and the insert hold the tenant's
    quota lock until the transaction ends: on PostgreSQL a transaction-scoped advisory lock
    (a concurrent upload of the tenant waits, then counts this one); on SQLite every writing
    transaction holds the database's write lock from its start."""
    tenant, size = str(values["tenant"]), int(values["size"])
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(func.pg_advisory_xact_lock(DATASET_QUOTA_LOCK_CLASS, func.hashtext(tenant)))
        )
    stored = stored_bytes(session, tenant)
    if stored + size > quota:
        raise DatasetQuotaExceeded(tenant, stored, size, quota)
    return create_dataset(session, **values)


def create_dataset(session: Session, **values: Any) -> UploadedDataset:
    dataset = UploadedDataset(status=DatasetStatus.VALIDATING.value, **values)
    session.add(dataset)
    session.flush()
    return dataset


def delete_dataset(session: Session, dataset: UploadedDataset) -> None:
    """Delete the dataset's row (the caller commits, then deletes the stored archive)."""
    session.delete(dataset)


# row locks (PostgreSQL; SQLite runs one writer at a time): a job naming a dataset holds it
# shared until the job's transaction commits, and a delete takes it exclusively before it looks
# for users, so a delete never misses a job submitted at the same moment
SHARED, EXCLUSIVE = {"read": True}, True


def get_dataset(
    session: Session,
    dataset_id: str,
    scope: str | None = None,
    lock: dict[str, bool] | bool | None = None,
) -> UploadedDataset | None:
    """The dataset; None when missing or (with a scope) another tenant's."""
    dataset = session.get(UploadedDataset, dataset_id, with_for_update=lock)
    if dataset is None or (scope is not None and dataset.tenant != scope):
        return None
    return dataset


def list_datasets(
    session: Session, scope: str | None, limit: int, status: str | None = None
) -> list[UploadedDataset]:
    """Newest first."""
    stmt = select(UploadedDataset).order_by(
        UploadedDataset.created_at.desc(), UploadedDataset.id.desc()
    )
    if scope is not None:
        stmt = stmt.where(UploadedDataset.tenant == scope)
    if status is not None:
        stmt = stmt.where(UploadedDataset.status == DatasetStatus(status).value)
    return list(session.scalars(stmt.limit(limit)))


def stored_bytes(session: Session, tenant: str) -> int:
    """What the tenant's uploaded archives take in the store (the quota counts this)."""
    total = session.scalar(
        select(func.coalesce(func.sum(UploadedDataset.size), 0)).where(
            UploadedDataset.tenant == tenant
        )
    )
    return int(total or 0)


def _names_dataset(dataset: dict[str, Any] | None, dataset_id: str) -> bool:
    return (
        dataset is not None
        and dataset.get("source") == "dataset"
        and dataset.get("id") == dataset_id
    )


def users_of(session: Session, dataset: UploadedDataset) -> list[str]:
    """The queued or running jobs and the running sweeps of the tenant that read the dataset
    (a handful: a tenant's active jobs are capped), as `job ID` / `sweep ID`."""
    active = [status.value for status in ACTIVE_STATUSES]
    jobs = session.execute(
        select(Job.id, Job.dataset).where(Job.tenant == dataset.tenant, Job.status.in_(active))
    )
    users = [f"job {row.id}" for row in jobs if _names_dataset(row.dataset, dataset.id)]
    sweeps = session.execute(
        select(Sweep.id, Sweep.config).where(
            Sweep.tenant == dataset.tenant, Sweep.status == SweepStatus.RUNNING.value
        )
    )
    users += [
        f"sweep {row.id}"
        for row in sweeps
        if _names_dataset((row.config or {}).get("dataset"), dataset.id)
    ]
    return users


# Validation: the jobs' protection (core/job_lifecycle.py, core/reaper.py) for the task that
# checks an uploaded archive. A worker claims an attempt (at most max_attempts of them) and
# holds a lease it renews every heartbeat; a worker that dies (say, OOM-killed by a hostile
# archive, whose message Celery then redelivers) leaves a lease that goes stale, and the
# reaper re-sends the validation or, once every attempt was used, fails the dataset. The
# deadline counts from the first attempt's start.
LOST_REASON = "validation did not finish: its worker was lost on all {n} attempts"
TIMEOUT_REASON = "timeout: validation ran longer than {s:.0f}s"


@dataclass(frozen=True)
class ValidationClaim:
    attempt: int
    seconds_left: float  # until the validation's deadline


def _deadline(dataset: UploadedDataset, settings: Settings) -> datetime | None:
    started = dataset.validation_started_at
    if started is None:
        return None
    return started + timedelta(seconds=settings.dataset_validation_timeout_seconds)


def _fail_validation(dataset: UploadedDataset, now: datetime, error: str) -> None:
    dataset.status, dataset.error = DatasetStatus.FAILED.value, error
    dataset.validated_at, dataset.validation_heartbeat_at = now, None


def claim_validation(
    session: Session, dataset_id: str, settings: Settings
) -> ValidationClaim | None:
    """Take up the next attempt of the dataset's validation: None when it is no longer
    validating, another worker's lease on it is live (a redelivered message), its deadline
    passed or its attempts are used up (those two fail it, with the reason)."""
    dataset = session.get(UploadedDataset, dataset_id, with_for_update=True)
    if dataset is None or dataset.status != DatasetStatus.VALIDATING.value:
        return None
    now = database_now(session)
    lease = dataset.validation_heartbeat_at
    if lease is not None and lease >= now - timedelta(seconds=settings.heartbeat_timeout_seconds):
        return None
    deadline = _deadline(dataset, settings)
    if deadline is not None and now > deadline:
        _fail_validation(
            dataset, now, TIMEOUT_REASON.format(s=settings.dataset_validation_timeout_seconds)
        )
        return None
    if dataset.validation_attempts >= settings.max_attempts:
        _fail_validation(dataset, now, LOST_REASON.format(n=dataset.validation_attempts))
        return None
    dataset.validation_attempts += 1
    dataset.validation_started_at = dataset.validation_started_at or now
    dataset.validation_heartbeat_at = now
    left = (_deadline(dataset, settings) or now) - now
    return ValidationClaim(dataset.validation_attempts, left.total_seconds())


def renew_validation(session: Session, dataset_id: str, attempt: int) -> bool:
    """The validating worker's heartbeat; False once this attempt no longer holds it."""
    renewed = changed_rows(
        session,
        update(UploadedDataset)
        .where(
            UploadedDataset.id == dataset_id,
            UploadedDataset.status == DatasetStatus.VALIDATING.value,
            UploadedDataset.validation_attempts == attempt,
        )
        .values(validation_heartbeat_at=database_now(session)),
    )
    return renewed == 1


def reap_validations(session: Session, settings: Settings) -> list[str]:
    """One sweep over validations whose worker is gone or whose deadline passed: fail those
    past the deadline or out of attempts, release the lease of the others and return their
    ids for the caller to send again (after this commits). One released and sent again waits
    for its message with no lease: it is not sent again here (a message the broker lost is
    found by `unstarted_validations`)."""
    now = database_now(session)
    stale = now - timedelta(seconds=settings.heartbeat_timeout_seconds)
    stmt = select(UploadedDataset).where(
        UploadedDataset.status == DatasetStatus.VALIDATING.value,
        UploadedDataset.validation_attempts > 0,
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    resend = []
    for dataset in session.scalars(stmt):
        deadline = _deadline(dataset, settings)
        lease = dataset.validation_heartbeat_at
        if deadline is not None and now > deadline:
            timeout = settings.dataset_validation_timeout_seconds
            _fail_validation(dataset, now, TIMEOUT_REASON.format(s=timeout))
        elif lease is None or lease >= stale:
            continue
        elif dataset.validation_attempts >= settings.max_attempts:
            _fail_validation(dataset, now, LOST_REASON.format(n=dataset.validation_attempts))
        else:
            dataset.validation_heartbeat_at = None
            resend.append(dataset.id)
    return resend


def unstarted_validations(session: Session, older_than_seconds: float) -> list[str]:
    """Datasets uploaded over `older_than_seconds` ago whose validation no worker holds: not
    taken up yet, or sent again after a lost worker. Housekeeping asks only while the evaluate
    queue is empty in the broker, when such a validation's message was lost (say, a broker
    restarted without persistence)."""
    before = datetime.now(timezone.utc) - timedelta(seconds=older_than_seconds)
    return list(
        session.scalars(
            select(UploadedDataset.id).where(
                UploadedDataset.status == DatasetStatus.VALIDATING.value,
                UploadedDataset.validation_heartbeat_at.is_(None),
                UploadedDataset.created_at < before,
            )
        )
    )


def record_validation(
    session: Session,
    dataset_id: str,
    summary: dict[str, Any] | None,
    error: str | None,
    attempt: int | None = None,
) -> None:
    """`ready` with what the archive holds, or `failed` with the reason; with `attempt`, only
    while that attempt still holds the validation (a later attempt or the reaper may have
    taken it over)."""
    dataset = session.get(UploadedDataset, dataset_id, with_for_update=attempt is not None)
    if dataset is None:  # deleted while it was being validated
        return
    if attempt is not None and (
        dataset.status != DatasetStatus.VALIDATING.value or dataset.validation_attempts != attempt
    ):
        return
    dataset.validated_at = datetime.now(timezone.utc)
    dataset.validation_heartbeat_at = None
    if error is None:
        if summary is None:
            raise ValueError("a dataset validated without error needs its summary")
        dataset.status, dataset.summary = DatasetStatus.READY.value, summary
        dataset.num_examples = int(summary["num_examples"])
    else:
        dataset.status, dataset.error = DatasetStatus.FAILED.value, path_free(error)[:2000]


def usable_dataset(
    session: Session, dataset_id: str, scope: str | None, pinned_sha256: str | None
) -> UploadedDataset:
    """The dataset a job may train or evaluate on: ready, the caller's, and with the digest
    the job pinned (when it pinned one)."""
    dataset = get_dataset(session, dataset_id, scope, lock=SHARED)
    if dataset is None:
        raise DatasetUnavailable(404, f"no dataset {dataset_id!r}")
    if dataset.status != DatasetStatus.READY.value:
        raise DatasetUnavailable(
            409, f"dataset {dataset_id!r} is {dataset.status}, not ready: it cannot be used yet"
        )
    if pinned_sha256 is not None and pinned_sha256 != dataset.sha256:
        raise DatasetUnavailable(
            409, f"dataset {dataset_id!r} has sha256 {dataset.sha256}, not {pinned_sha256}"
        )
    return dataset


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str


def _service_owned(key: str, store_prefix: str) -> str | None:
    """The folder of the service's own objects that `key` lies in, if any: everything below
    the store's prefix (with a prefix), else the folders the store writes at the top."""
    owned = [store_prefix] if store_prefix else [*STORE_FOLDERS]
    return next((folder for folder in owned if key.startswith(f"{folder}/")), None)


def s3_dataset_location(path: str, artifact_url: str) -> S3Location:
    """An `s3://BUCKET/KEY` archive path, accepted only inside the bucket the service stores
    its artifacts in (read with the service's own endpoint and credentials: a path can never
    make a worker contact another host), and never among the service's own objects (another
    tenant's uploaded datasets, models, checkpoints). ValueError says why not."""
    parsed = urlparse(path)
    store = urlparse(artifact_url)
    if store.scheme != "s3":
        raise ValueError("s3:// paths need the service's store on S3 (TASS_ARTIFACT_URL s3://)")
    if parsed.netloc != store.netloc:
        raise ValueError(f"must lie in the service's bucket s3://{store.netloc}/")
    key = parsed.path.lstrip("/")
    if parsed.query or parsed.fragment or parsed.params or not key:
        raise ValueError("must be s3://BUCKET/KEY with nothing after the key")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError("has an empty, '.' or '..' path component")
    if not key.endswith(ARCHIVE_SUFFIXES):
        raise ValueError(f"must name an archive ({', '.join(ARCHIVE_SUFFIXES)})")
    owned = _service_owned(key, store.path.strip("/"))
    if owned is not None:
        raise ValueError(
            f"lies under s3://{store.netloc}/{owned}/, where the service keeps its own objects "
            "(models, checkpoints, uploaded datasets): upload a dataset with POST /v1/datasets "
            "and name it by id, or keep archives elsewhere in the bucket"
        )
    return S3Location(store.netloc, key)
