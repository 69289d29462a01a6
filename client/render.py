"""Rich output: tables, job details, event lines, and the job and download progress views."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from tass.client.sse import ServerSentEvent
from tass.contract.progress import PHASE_LABELS, format_duration
from tass.contract.statuses import JobStatus

Json = dict[str, Any]

STATUS_STYLES: dict[str, str] = {
    JobStatus.QUEUED: "yellow",
    JobStatus.RUNNING: "cyan",
    JobStatus.CANCELLING: "magenta",
    JobStatus.PREEMPTED: "yellow",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "magenta",
}
RUNNING = (JobStatus.RUNNING, JobStatus.CANCELLING)  # a process is at work on the job
# The metrics shown in one-line summaries, in this order, when present.
SUMMARY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def status_text(status: str | None) -> Text:
    status = status or "?"
    return Text(status, style=STATUS_STYLES.get(status, ""))


def format_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_metrics(metrics: Mapping[str, Any] | None, keys: Iterable[str] | None = None) -> str:
    """`loss=0.51 accuracy=0.82`, the summary metrics (or `keys`) that are present."""
    if not metrics:
        return ""
    names = [key for key in (keys or SUMMARY_METRICS) if key in metrics]
    if keys is None and not names:
        names = sorted(metrics)
    return " ".join(f"{name}={format_number(metrics[name])}" for name in names)


def format_time(value: str | None) -> str:
    """An ISO timestamp from the API in local time, to the second."""
    if not value:
        return "-"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone()
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def format_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def format_progress(progress: Mapping[str, Any] | None) -> str:
    """`epoch 3/10 step 120/390`, from a job's progress object."""
    if not progress:
        return ""
    parts = []
    if progress.get("epoch") is not None:
        parts.append(f"epoch {progress['epoch']}/{progress.get('epochs') or '?'}")
    if progress.get("step") is not None:
        parts.append(f"step {progress['step']}/{progress.get('steps_per_epoch') or '?'}")
    return " ".join(parts)


def format_phase(job: Mapping[str, Any]) -> str:
    """What a running job is doing (`loading data`, `compiling`, ...); empty once it ended."""
    if job.get("status") not in RUNNING:
        return ""
    phase = (job.get("progress") or {}).get("phase")
    return PHASE_LABELS.get(phase, str(phase)) if phase else ""


def format_job_progress(job: Mapping[str, Any]) -> str:
    """`training epoch 3/10 step 120/390` (the phase while the job runs)."""
    return " ".join(
        part for part in (format_phase(job), format_progress(job.get("progress"))) if part
    )


def progress_position(job: Mapping[str, Any]) -> tuple[float, float | None]:
    """(completed, total) steps over the whole run; `total` is None until the size is known.

    `epoch` counts from 1 and `step` is the steps done in that epoch.
    """
    progress = job.get("progress") or {}
    epochs = progress.get("epochs")
    per_epoch = progress.get("steps_per_epoch")
    epoch = progress.get("epoch") or 0
    step = progress.get("step") or 0
    if not epochs:
        return 0.0, None
    if per_epoch:
        total = float(epochs * per_epoch)
        completed = max(epoch - 1, 0) * per_epoch + step
    else:
        total, completed = float(epochs), float(epoch)
    if job.get("status") == JobStatus.SUCCEEDED:
        completed = total
    return float(min(max(completed, 0), total)), total


def jobs_table(jobs: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("ID", overflow="fold")
    table.add_column("TYPE")
    table.add_column("NAME", overflow="fold")
    table.add_column("STATUS")
    table.add_column("PROGRESS")
    table.add_column("METRICS")
    table.add_column("CREATED")
    for job in jobs:
        table.add_row(
            str(job.get("id")),
            str(job.get("type") or ""),
            str(job.get("name") or ""),
            status_text(job.get("status")),
            format_job_progress(job),
            format_metrics(headline_metrics(job), ("accuracy", "val_accuracy")),
            format_time(job.get("created_at")),
        )
    return table


def models_table(models: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("ID", overflow="fold")
    table.add_column("NAME", overflow="fold")
    table.add_column("JOB", overflow="fold")
    table.add_column("METRICS")
    table.add_column("FORMATS")
    table.add_column("CREATED")
    for model in models:
        formats = ", ".join(
            f"{artifact.get('format')} {format_size(artifact.get('size'))}"
            for artifact in model.get("artifacts") or []
        )
        table.add_row(
            str(model.get("id")),
            str(model.get("name") or ""),
            str(model.get("job_id") or ""),
            format_metrics(model.get("metrics"), ("accuracy", "val_accuracy")),
            formats,
            format_time(model.get("created_at")),
        )
    return table


def job_details(job: Mapping[str, Any]) -> RenderableType:
    """The fields of one job as a two-column grid, with an evaluation's per-class accuracy."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")

    def row(label: str, value: Any) -> None:
        if value not in (None, "", {}, []):
            grid.add_row(label, value if isinstance(value, Text) else str(value))

    row("id", job.get("id"))
    row("type", job.get("type"))
    row("name", job.get("name"))
    row("status", status_text(job.get("status")))
    row("attempt", job.get("attempt"))
    row("model", job.get("model_id"))
    if job.get("priority") not in (None, "normal"):
        row("priority", job.get("priority"))
    resources = job.get("resources") or {}
    if resources.get("gpus") or resources.get("pool") or (resources.get("workers") or 1) > 1:
        row("resources", format_resources(resources))
    if job.get("status") == JobStatus.QUEUED:
        position = job.get("queue_position")
        row("queue", f"position {position}" if position is not None else "not ranked yet")
        row("waiting", job.get("pending_reason"))
    row("created", format_time(job.get("created_at")))
    row("started", job.get("started_at") and format_time(job.get("started_at")))
    row("finished", job.get("finished_at") and format_time(job.get("finished_at")))
    progress = job.get("progress") or {}
    if job.get("status") in RUNNING and progress:
        speed = progress.get("images_per_sec")
        extra = f" {speed:.0f} img/s" if isinstance(speed, int | float) else ""
        eta = progress.get("eta_seconds")
        extra += f" ETA {format_duration(eta)}" if eta is not None else ""
        row("progress", format_job_progress(job) + extra)
    row("metrics", format_metrics(job.get("metrics")))
    result = job.get("result") or {}
    row("result", format_metrics(_numbers(result)))
    examples = result.get("num_examples")  # what an evaluation measured its accuracy on
    row("examples", f"{examples:,}" if _is_number(examples) else None)
    for key, value in result.items():  # e.g. a training result's `final` epoch
        if isinstance(value, Mapping) and key != "per_class_accuracy":
            row(key, format_metrics(_numbers(value)))
    row("tags", " ".join(f"{k}={v}" for k, v in (job.get("tags") or {}).items()))
    row("error", job.get("error") and Text(str(job["error"]), style="red"))
    per_class = result.get("per_class_accuracy")
    if not per_class:
        return grid
    names = result.get("class_names") or []
    classes = Table(title="per-class accuracy", box=None, pad_edge=False, header_style="bold")
    classes.add_column("CLASS")
    classes.add_column("ACCURACY", justify="right")
    pairs = per_class.items() if isinstance(per_class, Mapping) else enumerate(per_class)
    for key, value in pairs:
        label = names[key] if isinstance(key, int) and key < len(names) else key
        classes.add_row(str(label), format_number(value))
    return Group(grid, Text(""), classes)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numbers(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if _is_number(value)}


def headline_metrics(job: Mapping[str, Any]) -> dict[str, Any]:
    """The latest epoch metrics, overlaid with the result's top-level numbers (an evaluation's
    loss and accuracy)."""
    return {**(job.get("metrics") or {}), **_numbers(job.get("result") or {})}


def describe_event(event: ServerSentEvent) -> str:
    """One readable line for an event from GET /v1/jobs/{id}/events."""
    try:
        data = event.json()
    except ValueError:
        return f"{event.event:<9} {event.data}"
    if not isinstance(data, dict):
        return f"{event.event:<9} {event.data}"
    if event.event == "status":
        at = f"  ({format_time(data.get('at'))})" if data.get("at") else ""
        return f"status    {data.get('status')}{at}"
    if event.event == "progress":
        phase = PHASE_LABELS.get(str(data.get("phase")), "")
        line = " ".join(part for part in (phase, format_progress(data)) if part)
        if data.get("images_per_sec") is not None:
            line += f"  {data['images_per_sec']:.0f} img/s"
        if data.get("eta_seconds") is not None:
            line += f"  ETA {format_duration(data['eta_seconds'])}"
        return f"progress  {line}"
    if event.event == "metrics":
        kind = data.get("kind", "epoch")
        values = format_metrics(data.get("values"), sorted(data.get("values") or {}))
        return f"metrics   {kind} {data.get('step')}: {values}"
    return f"{event.event:<9} {event.data}"


class JobProgressView:
    """A live progress bar for `status --watch` on a terminal:
    status, phase, bar, epoch x/N, step, loss/accuracy/val_accuracy, images/s and the server's
    ETA (while training)."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.fields[status]}"),
            TextColumn("{task.fields[phase]}"),
            BarColumn(),
            TextColumn("{task.fields[position]}"),
            TextColumn("{task.fields[metrics]}"),
            TextColumn("{task.fields[speed]}"),
            TextColumn("{task.fields[eta]}"),
            console=console,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> JobProgressView:
        self._progress.start()
        self._task = self._progress.add_task(
            "job", total=None, status="", phase="", position="", metrics="", speed="", eta=""
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def update(self, job: Mapping[str, Any]) -> None:
        if self._task is None:
            raise RuntimeError("use JobProgressView as a context manager")
        completed, total = progress_position(job)
        progress = job.get("progress") or {}
        speed = progress.get("images_per_sec")
        status = job.get("status") or "?"
        running = status in RUNNING
        # the ETA counts training steps: past them (evaluating, exporting) it says nothing
        training = progress.get("phase") in (None, "training")
        eta = progress.get("eta_seconds") if training else None
        self._progress.update(
            self._task,
            completed=completed,
            total=total,
            status=f"[{STATUS_STYLES.get(status, '')}]{status}[/]",
            phase=format_phase(job),
            position=format_progress(progress),
            metrics=format_metrics(job.get("metrics"), ("loss", "accuracy", "val_accuracy")),
            speed=f"{speed:.0f} img/s" if running and isinstance(speed, int | float) else "",
            eta=f"ETA {format_duration(eta)}" if running and eta is not None else "",
        )


class JobLogView:
    """`status --watch` when output is not a terminal: one line per status, phase or epoch
    change."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._last: tuple[Any, ...] | None = None  # what was printed last

    def __enter__(self) -> JobLogView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def update(self, job: Mapping[str, Any]) -> None:
        progress = job.get("progress") or {}
        metrics = format_metrics(job.get("metrics"))
        key = (job.get("status"), format_phase(job), progress.get("epoch"), metrics)
        if key == self._last:
            return
        self._last = key
        parts = [str(job.get("status")), format_job_progress(job), metrics]
        self._console.print("  ".join(part for part in parts if part), highlight=False)


def transfer_progress(console: Console, *, disable: bool = False) -> Progress:
    """A transient bar for moving a file: its name, bytes so far, speed and time left (the
    upload of `tass datasets upload` and the download of `tass download`)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=disable,
    )


class DownloadBar:
    """A rich download bar (size, speed, time left) on terminals; implements `DownloadProgress`."""

    def __init__(self, console: Console) -> None:
        self._progress = transfer_progress(console, disable=not console.is_terminal)
        self._task: TaskID | None = None

    def __enter__(self) -> DownloadBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._progress.stop()

    def start(self, path: Path, total: int | None) -> None:
        self._progress.start()
        self._task = self._progress.add_task(path.name, total=total)

    def advance(self, size: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, size)


def epoch_metrics_table(rows: Iterable[Mapping[str, Any]]) -> Table:
    """`tass metrics`: one row per epoch; the summary metrics first, then the others by name."""
    rows = list(rows)
    names = sorted({name for row in rows for name in row.get("values") or {}})
    ordered = [n for n in SUMMARY_METRICS if n in names] + [
        n for n in names if n not in SUMMARY_METRICS
    ]
    table = Table("epoch", *ordered)
    for column in table.columns:
        column.justify = "right"
    for row in rows:
        values = row.get("values") or {}
        cells = [format_number(values[n]) if n in values else "-" for n in ordered]
        table.add_row(str(row.get("step")), *cells)
    return table


def format_resources(resources: Mapping[str, Any] | None) -> str:
    """`2 GPUs @a100`, `1 slot` (a CPU job), with `x N workers` for a multi-worker one."""
    resources = resources or {}
    gpus = int(resources.get("gpus") or 0)
    text = f"{gpus} GPU{'s' if gpus != 1 else ''}" if gpus else "1 slot"
    workers = int(resources.get("workers") or 1)
    if workers > 1:
        text += f" x {workers} workers"
    pool = resources.get("pool")
    return f"{text} @{pool}" if pool else text


def queue_table(jobs: Iterable[Mapping[str, Any]]) -> Table:
    """Waiting jobs in scheduling order: position, job, tenant, class, resources, reason."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("POS", justify="right")
    table.add_column("JOB", overflow="fold")
    table.add_column("TENANT")
    table.add_column("PRIORITY")
    table.add_column("RESOURCES")
    table.add_column("REASON", overflow="fold")
    for job in jobs:
        position = job.get("queue_position")
        table.add_row(
            "-" if position is None else str(position),
            str(job.get("name") or job.get("id")),
            str(job.get("tenant") or ""),
            str(job.get("priority") or ""),
            format_resources(job.get("resources")),
            str(job.get("pending_reason") or "not ranked yet"),
        )
    return table


def pools_table(pools: Iterable[Mapping[str, Any]]) -> Table:
    """Each pool's workers: devices, used, free, draining, what runs there; a pool total row."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("POOL", "WORKER", "DEVICE", "DEVICES", "USED", "FREE", "WAITING", "JOBS"):
        table.add_column(
            column, justify="right" if column in {"DEVICES", "USED", "FREE"} else "left"
        )
    for pool in pools:
        table.add_row(
            Text(str(pool.get("name")), style="bold"),
            "",
            "",
            str(pool.get("devices")),
            str(pool.get("used")),
            str(pool.get("free")),
            str(pool.get("waiting")),
            "",
        )
        for worker in pool.get("workers") or []:
            name = worker.get("name", "") + (" (draining)" if worker.get("draining") else "")
            table.add_row(
                "",
                name,
                str(worker.get("device") or ""),
                str(worker.get("slots")),
                str(worker.get("used")),
                str(worker.get("free")),
                "",
                " ".join(worker.get("running_jobs") or []),
            )
    return table


def tenant_details(tenant: Mapping[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("tenant", str(tenant.get("name")))
    grid.add_row("weight", format_number(tenant.get("weight")))
    grid.add_row("max priority", str(tenant.get("max_priority")))
    quota = tenant.get("gpu_quota") or {}
    grid.add_row("GPU quota", " ".join(f"{p}={n}" for p, n in quota.items()) or "none")
    return grid


def workers_table(workers: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("NAME", "POOL", "DEVICE", "SLOTS", "STATE", "JOBS", "LAST SEEN"):
        table.add_column(column)
    for worker in workers:
        state = "draining" if worker.get("draining") else "ready"
        if not worker.get("alive"):
            state = "gone"
        table.add_row(
            str(worker.get("name")),
            str(worker.get("pool") or ""),
            str(worker.get("device") or ""),
            str(worker.get("slots")),
            state,
            " ".join(worker.get("current_jobs") or []),
            format_time(worker.get("last_seen_at")),
        )
    return table
