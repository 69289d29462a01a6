"""Jobs' captured output: chunks of lines stored in the object store, indexed in SQL.

A worker ships each attempt's output while it runs (worker/log_capture.py) as chunks: one
object per chunk below `logs/{job}/attempt-{n}/`, holding JSON lines `[at, stream, line]`,
and one `job_log_chunks` row naming it. Lines are numbered per job across attempts (a chunk
takes the numbers after the job's last chunk), so one offset follows a job through retries.
A capped attempt's oldest chunks are dropped: the object goes, the row stays with `key` None,
and a reader gets one `tass` line saying what was dropped in their place."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tass.contract.statuses import FINAL_STATUSES
from tass.core.db import SessionFactory
from tass.core.models import Job, JobLogChunk
from tass.core.objectstore import ObjectStore

LOG_KEY = re.compile(r"^logs/(?P<job>[0-9a-f]{32})/attempt-(?P<attempt>\d+)/(?P<seq>\d+)\.jsonl$")
TASS_STREAM = "tass"  # lines the service adds: what was dropped, tracking-server trouble


@dataclass(frozen=True)
class LogLine:
    at: str  # ISO 8601, UTC
    stream: str  # stdout, stderr or tass
    line: str


@dataclass(frozen=True)
class LogItem:
    offset: int
    at: str
    attempt: int
    stream: str
    line: str
    end: int  # the offset after this item (a dropped run's one line stands for many)

    def as_dict(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "at": self.at,
            "attempt": self.attempt,
            "stream": self.stream,
            "line": self.line,
        }


@dataclass(frozen=True)
class LogPage:
    items: list[LogItem]
    next_offset: int


def log_key(job_id: str, attempt: int, seq: int) -> str:
    return f"logs/{job_id}/attempt-{attempt}/{seq:08d}.jsonl"


def encode_chunk(lines: list[LogLine]) -> bytes:
    return b"".join(
        json.dumps([ln.at, ln.stream, ln.line], ensure_ascii=False).encode() + b"\n" for ln in lines
    )


def decode_chunk(data: bytes) -> list[LogLine]:
    return [LogLine(*json.loads(raw)) for raw in data.splitlines() if raw]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _line_count(job_id: str) -> Any:
    """The number the job's next log line gets: past the end of its last indexed chunk."""
    return select(
        func.coalesce(func.max(JobLogChunk.first_line + JobLogChunk.line_count), 0)
    ).where(JobLogChunk.job_id == job_id)


def stored_line_count(sessions: SessionFactory, job_id: str) -> int:
    """How many lines of the job's log are indexed (every attempt's): the next line's number."""
    with sessions() as session:
        return int(session.scalar(_line_count(job_id)) or 0)


def store_chunk(
    sessions: SessionFactory,
    store: ObjectStore,
    job_id: str,
    attempt: int,
    seq: int,
    lines: list[LogLine],
) -> int:
    """Upload one chunk and index it after the job's last line; returns its first line."""
    key = log_key(job_id, attempt, seq)
    stored = store.put_bytes(key, encode_chunk(lines))
    for _ in range(5):  # another attempt (a stale worker) may take the same numbers first
        try:
            with sessions.begin() as session:
                first = session.scalar(_line_count(job_id))
                session.add(
                    JobLogChunk(
                        job_id=job_id,
                        attempt=attempt,
                        seq=seq,
                        first_line=int(first or 0),
                        line_count=len(lines),
                        size=stored.size,
                        key=key,
                    )
                )
            return int(first or 0)
        except IntegrityError:
            continue
    raise RuntimeError(f"could not index log chunk {key}")


def drop_oldest(
    sessions: SessionFactory, store: ObjectStore, job_id: str, attempt: int, max_bytes: int
) -> tuple[int, int]:
    """Drop the attempt's oldest chunks until its kept chunks hold at most `max_bytes`
    (the newest chunk is always kept); returns the (lines, bytes) dropped now."""
    with sessions.begin() as session:
        rows = session.execute(
            select(JobLogChunk.id, JobLogChunk.size, JobLogChunk.line_count, JobLogChunk.key)
            .where(
                JobLogChunk.job_id == job_id,
                JobLogChunk.attempt == attempt,
                JobLogChunk.key.is_not(None),
            )
            .order_by(JobLogChunk.seq.desc())
        ).all()
        kept, doomed = 0, []
        for index, row in enumerate(rows):
            kept += row.size
            if index > 0 and kept > max_bytes:
                doomed.append(row)
        if doomed:
            session.execute(
                update(JobLogChunk)
                .where(JobLogChunk.id.in_([row.id for row in doomed]))
                .values(key=None)
            )
    for row in doomed:  # rows first: no row ever names a missing object
        store.delete(row.key)
    return sum(r.line_count for r in doomed), sum(r.size for r in doomed)


def latest_log_attempt(session: Session, job_id: str) -> int | None:
    return session.scalar(select(func.max(JobLogChunk.attempt)).where(JobLogChunk.job_id == job_id))


def _chunk_query(job_id: str, attempt: int | None) -> Any:
    query = select(JobLogChunk).where(JobLogChunk.job_id == job_id)
    if attempt is not None:
        query = query.where(JobLogChunk.attempt == attempt)
    return query


def _dropped_item(chunks: list[JobLogChunk]) -> LogItem:
    first, last = chunks[0], chunks[-1]
    lines = sum(c.line_count for c in chunks)
    megabytes = sum(c.size for c in chunks) / 1024**2
    text = (
        f"[tass] {lines} lines ({megabytes:.1f} MB) of attempt {first.attempt} were dropped here: "
        "a job keeps the last TASS_JOB_LOG_MAX_MB of output per attempt"
    )
    at = first.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    end = last.first_line + last.line_count
    return LogItem(first.first_line, at, first.attempt, TASS_STREAM, text, end)


def _items(store: ObjectStore, chunks: list[JobLogChunk]) -> list[LogItem]:
    """Every line of `chunks` (in order); a run of dropped chunks becomes one `tass` line."""
    items: list[LogItem] = []
    dropped: list[JobLogChunk] = []
    for chunk in chunks:
        if chunk.key is None:
            dropped.append(chunk)
            continue
        if dropped:
            items.append(_dropped_item(dropped))
            dropped = []
        data = b"".join(store.iter_range(chunk.key))
        for index, ln in enumerate(decode_chunk(data)):
            offset = chunk.first_line + index
            items.append(LogItem(offset, ln.at, chunk.attempt, ln.stream, ln.line, offset + 1))
    if dropped:
        items.append(_dropped_item(dropped))
    return items


def read_log(
    session: Session,
    store: ObjectStore,
    job_id: str,
    *,
    offset: int = 0,
    attempt: int | None = None,
    limit: int = 1000,
) -> LogPage:
    """Lines from `offset` on, at most `limit` (a dropped run counts as one)."""
    query = (
        _chunk_query(job_id, attempt)
        .where(JobLogChunk.first_line + JobLogChunk.line_count > offset)
        .order_by(JobLogChunk.first_line)
    )
    chunks: list[JobLogChunk] = []
    lines = 0
    for chunk in session.scalars(query.limit(500)):
        chunks.append(chunk)
        lines += chunk.line_count if chunk.key else 1
        if lines - max(0, offset - chunks[0].first_line) >= limit:
            break
    items = [item for item in _items(store, chunks) if item.end > offset][:limit]
    return LogPage(items, items[-1].end if items else offset)


def tail_log(
    session: Session, store: ObjectStore, job_id: str, *, lines: int, attempt: int | None = None
) -> LogPage:
    """The last `lines` lines (of `attempt`, or of the whole job)."""
    query = _chunk_query(job_id, attempt).order_by(JobLogChunk.first_line.desc())
    chunks: list[JobLogChunk] = []
    count = 0
    for chunk in session.scalars(query.limit(200)):
        chunks.append(chunk)
        count += chunk.line_count if chunk.key else 1
        if count >= lines:
            break
    if not chunks:
        return LogPage([], 0)
    chunks.reverse()
    end = chunks[-1].first_line + chunks[-1].line_count
    return LogPage(_items(store, chunks)[-lines:], end)


def job_finished(session: Session, job_id: str) -> bool:
    status = session.scalar(select(Job.status).where(Job.id == job_id))
    return status in {s.value for s in FINAL_STATUSES}


def logs_past_retention(session: Session, keep_days: float) -> list[JobLogChunk]:
    """Stored chunks of jobs that finished over `keep_days` ago."""
    before = datetime.now(timezone.utc) - timedelta(days=keep_days)
    return list(
        session.scalars(
            select(JobLogChunk)
            .join(Job, Job.id == JobLogChunk.job_id)
            .where(
                JobLogChunk.key.is_not(None),
                Job.status.in_([s.value for s in FINAL_STATUSES]),
                Job.finished_at < before,
            )
        )
    )
