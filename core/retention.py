"""Storage retention: which recorded checkpoints a finished job keeps (TASS_KEEP_CHECKPOINTS),
and which stored objects are orphans that no database row will ever name.

Objects are written once below `jobs/{job}/attempt-{n}/...` or `models/{job}/attempt-{n}/...`
and become visible only through an `artifacts` row written after the upload completed, in the
transaction that the attempt's lease fences. So an unrecorded object is garbage exactly when
its attempt can no longer record it: the job is finished or gone, or has moved on to another
attempt. The current attempt of an unfinished job may be between upload and record, and is
never touched. Uploaded datasets (`datasets/{id}/...`) are garbage when no dataset row names
them an hour after they were stored (an upload inserts its row right after storing the
archive). The local store's staging files (`KEY#N`, which its listing skips) are garbage once
untouched for an hour: a streamed upload writes to its file as parts arrive, so such a file
belongs to a process that died mid-upload. Keys of any other layout are never touched."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from tass.contract.artifacts import ATTEMPT_KEY, CHECKPOINT_KIND_PREFIX
from tass.contract.statuses import FINAL_STATUSES
from tass.core.datasets import DATASET_KEY
from tass.core.job_logs import LOG_KEY, logs_past_retention
from tass.core.models import Artifact, Job, JobLogChunk, Metric, UploadedDataset
from tass.core.objectstore import ListedObject, ObjectStore

# the epoch metric that ranks checkpoints, and whether higher is better; first present wins
BEST_BY = (("val_accuracy", True), ("val_loss", False), ("accuracy", True), ("loss", False))


@dataclass(frozen=True)
class Garbage:
    key: str
    size: int
    reason: str


def _best_epoch(session: Session, job_id: str, epochs: set[int]) -> int | None:
    rows = session.execute(
        select(Metric.name, Metric.step, Metric.value).where(
            Metric.job_id == job_id, Metric.kind == "epoch", Metric.step.in_(epochs)
        )
    ).all()
    for name, higher in BEST_BY:
        scored = [(row.value, row.step) for row in rows if row.name == name]
        if scored:
            return (max(scored) if higher else min(scored, key=lambda s: (s[0], -s[1])))[1]
    return None


def checkpoints_past_retention(session: Session, keep: str) -> list[Artifact]:
    """Recorded checkpoint files of finished jobs that the policy `keep` lets go: `all` keeps
    everything; `last` the newest epoch; `last-and-best` also the best by validation metrics.
    Unfinished jobs keep every checkpoint (a retry resumes from the newest)."""
    if keep == "all":
        return []
    rows = session.scalars(
        select(Artifact)
        .join(Job, Job.id == Artifact.job_id)
        .where(
            Artifact.kind.startswith(CHECKPOINT_KIND_PREFIX),
            Artifact.epoch.is_not(None),
            Job.status.in_([s.value for s in FINAL_STATUSES]),
        )
    ).all()
    by_job: dict[str, list[Artifact]] = {}
    for row in rows:
        by_job.setdefault(row.job_id, []).append(row)
    doomed: list[Artifact] = []
    for job_id, files in by_job.items():
        epochs = {f.epoch for f in files if f.epoch is not None}
        kept = {max(epochs)}
        if keep == "last-and-best":
            best = _best_epoch(session, job_id, epochs)
            kept |= {best} if best is not None else set()
        doomed.extend(f for f in files if f.epoch not in kept)
    return doomed


def _chunks(values: list[str], size: int = 500) -> Iterable[list[str]]:
    """Bounded IN lists (SQLite caps bound parameters)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def orphans(session: Session, listed: Iterable[ListedObject]) -> list[Garbage]:
    """Stored objects that no row records and whose attempt can never record them."""
    candidates = []
    for obj in listed:
        match = ATTEMPT_KEY.match(obj.key)
        if match:
            candidates.append((obj, match["job"], int(match["attempt"])))
    if not candidates:
        return []
    # jobs first, then their records: an attempt records its objects in the transaction that
    # finishes the job (or moves it on), so a job read as live here keeps its objects, and one
    # read as finished had its records committed before the read below (READ COMMITTED reads
    # each statement at its own snapshot; read the other way round, a publish committing in
    # between made its model look orphaned)
    jobs = {}
    for chunk in _chunks(sorted({job for _, job, _ in candidates})):
        rows = session.execute(select(Job.id, Job.status, Job.attempt).where(Job.id.in_(chunk)))
        jobs.update({row.id: row for row in rows})
    keys = [obj.key for obj, _, _ in candidates]
    recorded: set[str] = set()
    for chunk in _chunks(keys):
        recorded.update(session.scalars(select(Artifact.key).where(Artifact.key.in_(chunk))))
    final = {s.value for s in FINAL_STATUSES}
    found = []
    for obj, job_id, attempt in candidates:
        job = jobs.get(job_id)
        if obj.key in recorded:
            continue
        if job is None:
            reason = "orphan: its job no longer exists"
        elif job.status in final:
            reason = f"orphan: job {job.status}, never recorded"
        elif attempt != job.attempt:
            reason = f"orphan: written by stale attempt {attempt} (job is on {job.attempt})"
        else:
            continue  # the live attempt may be between upload and record
        found.append(Garbage(obj.key, obj.size, reason))
    return found


UPLOAD_GRACE = timedelta(hours=1)


def unrecorded_uploads(session: Session, listed: Iterable[ListedObject]) -> list[Garbage]:
    """Uploaded archives that no dataset row names, stored over UPLOAD_GRACE ago: an upload
    cut off between storing and recording, or a delete whose store call failed."""
    before = datetime.now(timezone.utc) - UPLOAD_GRACE
    candidates = {}
    for obj in listed:
        match = DATASET_KEY.match(obj.key)
        if match and obj.last_modified < before:
            candidates[obj.key] = (obj, match["id"])
    known: set[str] = set()
    for chunk in _chunks(sorted({dataset_id for _, dataset_id in candidates.values()})):
        known.update(
            session.scalars(select(UploadedDataset.id).where(UploadedDataset.id.in_(chunk)))
        )
    return [
        Garbage(obj.key, obj.size, "orphan: no dataset names this upload")
        for obj, dataset_id in candidates.values()
        if dataset_id not in known
    ]


def unindexed_logs(session: Session, listed: Iterable[ListedObject]) -> list[Garbage]:
    """Job log chunks (`logs/{job}/attempt-{n}/...`) that no row names, stored over
    UPLOAD_GRACE ago (a chunk is indexed right after it is stored), or whose job is gone."""
    before = datetime.now(timezone.utc) - UPLOAD_GRACE
    candidates = {obj.key: obj for obj in listed if LOG_KEY.match(obj.key)}
    indexed: set[str] = set()
    for chunk in _chunks(sorted(candidates)):
        indexed.update(
            key
            for key in session.scalars(select(JobLogChunk.key).where(JobLogChunk.key.in_(chunk)))
            if key
        )
    return [
        Garbage(obj.key, obj.size, "orphan: a log chunk no row names")
        for key, obj in candidates.items()
        if key not in indexed and obj.last_modified < before
    ]


def expire_logs(session: Session, keep_days: float) -> list[Garbage]:
    """Logs of jobs finished over `keep_days` ago (TASS_KEEP_JOB_LOGS_DAYS): rows deleted here
    (the caller commits, then deletes the objects)."""
    chunks = logs_past_retention(session, keep_days)
    if chunks:
        ids = [c.id for c in chunks]
        for part in range(0, len(ids), 500):
            session.execute(delete(JobLogChunk).where(JobLogChunk.id.in_(ids[part : part + 500])))
    return [
        Garbage(c.key, c.size, f"retention: job log older than {keep_days:g} days")
        for c in chunks
        if c.key
    ]


def stale_staging(store: ObjectStore) -> list[Garbage]:
    """Partial files of streamed uploads whose writer died (an API process killed mid-upload),
    untouched for UPLOAD_GRACE: invisible to the store's listing, so found on their own."""
    before = datetime.now(timezone.utc) - UPLOAD_GRACE
    return [
        Garbage(obj.key, obj.size, "staging: an unfinished upload's partial file")
        for obj in store.stale_staging(before)
    ]


def collect_garbage(
    factory: sessionmaker[Session],
    store: ObjectStore,
    keep: str,
    *,
    dry_run: bool = False,
    keep_logs_days: float | None = None,
) -> list[Garbage]:
    """One collection: checkpoints past retention (rows first, then objects, so no recorded
    row ever names a missing object), then orphans. Returns what was (or would be) deleted.
    The store is listed before the database is read, so an upload that completes meanwhile
    is not in the listing, and one whose row is not visible yet belongs to a live attempt."""
    listed = list(store.list())
    sizes = {obj.key: obj.size for obj in listed}
    staging = stale_staging(store)
    with factory() as session:
        expired = checkpoints_past_retention(session, keep)
        garbage = [
            Garbage(a.key, sizes.get(a.key, a.size), f"retention: epoch {a.epoch} ({keep})")
            for a in expired
        ]
        stray = orphans(session, listed) + unrecorded_uploads(session, listed)
        stray += unindexed_logs(session, listed)
        if not dry_run and expired:
            session.execute(delete(Artifact).where(Artifact.id.in_([a.id for a in expired])))
            session.commit()
        if keep_logs_days is not None:
            garbage.extend(expire_logs(session, keep_logs_days))
            if dry_run:
                session.rollback()
            else:
                session.commit()
    garbage.extend(stray)
    if not dry_run:
        for item in garbage:
            if item.key in sizes:
                store.delete(item.key)
        for item in staging:
            store.delete_staging(item.key)
    return garbage + staging
