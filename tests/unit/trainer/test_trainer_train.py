"""train(): learns, reports progress, checkpoints, resumes, and stops when the hook says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from trainer_testdata import tiny_spec

from tass.contract.progress import Progress
from tass.trainer.checkpoint import latest_checkpoint
from tass.trainer.data import Dataset
from tass.trainer.errors import CheckpointError
from tass.trainer.train import train

HISTORY_KEYS = {
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "epoch_seconds",
    "images_per_sec",
}


@pytest.fixture(scope="module")
def checkpointed_run(easy_data: Dataset, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One 3-epoch run on easy synthetic data with checkpoints and a recording hook."""
    ckpt = tmp_path_factory.mktemp("ckpt")
    events: list[Progress] = []
    lines: list[str] = []
    result = train(
        tiny_spec(epochs=3),
        easy_data,
        hook=events.append,
        progress_every=5,
        checkpoint_dir=ckpt,
        log=lines.append,
    )
    return result, events, lines, ckpt


def test_short_run_on_easy_data_is_far_above_chance(checkpointed_run) -> None:  # type: ignore[no-untyped-def]
    result, *_ = checkpointed_run
    assert result.final_metrics["val_accuracy"] >= 0.6  # chance is 0.1
    assert result.epochs_completed == 3 and not result.stopped
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    for row in result.history:
        assert set(row) == HISTORY_KEYS
        assert row["images_per_sec"] > 0 and row["epoch_seconds"] > 0
    # the last epoch's row, plus the validation accuracy with test-time flips
    flipped = result.final_metrics.pop("val_accuracy_flip")
    assert result.final_metrics == result.history[-1] and 0.6 <= flipped <= 1.0
    result.final_metrics["val_accuracy_flip"] = flipped  # the fixture is shared
    assert result.history[-1]["learning_rate"] < result.history[0]["learning_rate"]  # annealed


def test_progress_events_and_log_lines(checkpointed_run) -> None:  # type: ignore[no-untyped-def]
    result, events, lines, ckpt = checkpointed_run
    steps = 17  # ceil(540 training images / 32)
    step_events = [e for e in events if e.kind == "step"]
    epoch_events = [e for e in events if e.kind == "epoch"]
    assert [e.epoch for e in epoch_events] == [1, 2, 3]
    assert all(e.step == e.steps_per_epoch == steps for e in epoch_events)
    assert [e.global_step for e in epoch_events] == [steps, 2 * steps, 3 * steps]
    assert [(e.epoch, e.step) for e in step_events[:3]] == [(1, 5), (1, 10), (1, 15)]
    assert all({"loss", "accuracy"} <= set(e.metrics) for e in step_events)
    assert all(e.images_per_sec > 0 and e.eta_seconds is not None for e in events)
    flops = result.training_flops_per_image
    assert flops > 0
    assert all(e.gflops_per_sec == pytest.approx(e.images_per_sec * flops / 1e9) for e in events)
    assert epoch_events[-1].eta_seconds == pytest.approx(0.0)
    assert epoch_events[0].metrics["val_accuracy"] == result.history[0]["val_accuracy"]
    assert epoch_events[1].checkpoint_path == str(ckpt / "epoch-0002")
    assert len(lines) == 4 and "epoch 3/3" in lines[-1] and "val_accuracy" in lines[-1]
    assert "eta" in lines[1]


def test_checkpoint_after_every_epoch(checkpointed_run) -> None:  # type: ignore[no-untyped-def]
    result, _, _, ckpt = checkpointed_run
    assert sorted(p.name for p in ckpt.iterdir()) == ["epoch-0001", "epoch-0002", "epoch-0003"]
    assert latest_checkpoint(ckpt) == ckpt / "epoch-0003"
    state = json.loads((ckpt / "epoch-0002" / "state.json").read_text())
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert state["spec"]["epochs"] == 3 and state["class_names"] == result.class_names
    assert (ckpt / "epoch-0002" / "model.keras").stat().st_size > 0


LEARNED = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def _learned(rows: list[dict]) -> list[dict]:
    """History rows without the wall-clock fields."""
    return [{key: row[key] for key in LEARNED} for row in rows]


@pytest.mark.parametrize("epoch", [1, 2])
def test_resume_from_any_epoch_repeats_the_uninterrupted_run(  # type: ignore[no-untyped-def]
    checkpointed_run, easy_data: Dataset, epoch: int
) -> None:
    """A job retried after a crash ends with the model the job would have had without one."""
    result, _, _, ckpt = checkpointed_run
    events: list[Progress] = []
    resumed = train(
        tiny_spec(epochs=3), easy_data, hook=events.append, resume_from=ckpt / f"epoch-{epoch:04d}"
    )
    assert [e.epoch for e in events if e.kind == "epoch"] == list(range(epoch + 1, 4))
    assert resumed.history[:epoch] == result.history[:epoch]  # the earlier epochs: state.json
    # Same machine and seed: the same shuffles, augmentations, dropout masks, optimizer state
    # and weight-decay exclusions, so every metric and weight is equal, not merely close.
    assert _learned(resumed.history) == _learned(result.history)
    assert len(resumed.model.weights) == len(result.model.weights)
    for original, again in zip(result.model.weights, resumed.model.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(again), np.asarray(original), err_msg=again.path)
    assert int(resumed.model.optimizer.iterations) == int(result.model.optimizer.iterations)


def test_resume_checks_the_classes_and_the_path(checkpointed_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, _, ckpt = checkpointed_run
    other = Dataset(np.zeros((20, 32, 32, 3), np.uint8), np.arange(20) % 2, ["x", "y"])
    with pytest.raises(CheckpointError, match="classes"):
        train(tiny_spec(epochs=3), other, resume_from=ckpt / "epoch-0001")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(tiny_spec(), other, resume_from=tmp_path)


def test_hook_returning_false_stops_within_one_batch(easy_data: Dataset) -> None:
    seen: list[tuple[str, int, int]] = []

    def hook(progress: Progress) -> bool:
        seen.append((progress.kind, progress.epoch, progress.step))
        return progress.step < 3

    result = train(
        tiny_spec(epochs=5, validation_split=0.0), easy_data, hook=hook, progress_every=1
    )
    assert result.stopped
    assert seen == [("step", 1, 1), ("step", 1, 2), ("step", 1, 3)]  # nothing ran after the stop
    assert result.epochs_completed == 0 and result.history == []
    assert result.model is not None
    assert int(result.model.optimizer.iterations) == 3


def test_hook_stop_at_epoch_end_keeps_the_finished_epoch(
    easy_data: Dataset, tmp_path: Path
) -> None:
    result = train(
        tiny_spec(epochs=4, validation_split=0.0),
        easy_data,
        checkpoint_dir=tmp_path,
        hook=lambda p: p.kind != "epoch",
    )
    assert result.stopped and result.epochs_completed == 1
    assert result.history[0]["val_accuracy"] is None and result.history[0]["val_loss"] is None
    assert latest_checkpoint(tmp_path) == tmp_path / "epoch-0001"


def test_hook_exceptions_propagate(easy_data: Dataset) -> None:
    def hook(progress: Progress) -> None:
        raise RuntimeError("job deleted")

    with pytest.raises(RuntimeError, match="job deleted"):
        train(tiny_spec(epochs=1), easy_data, hook=hook, progress_every=2)


@pytest.mark.parametrize("stop_at", [24, 40, 17])  # mid epoch 2, mid epoch 3, end of epoch 1
def test_a_stop_request_checkpoints_where_it_is_and_resuming_repeats_the_run(  # type: ignore[no-untyped-def]
    checkpointed_run, easy_data: Dataset, tmp_path: Path, stop_at: int
) -> None:
    """A preempted job (spot notice, SIGTERM) checkpoints mid-epoch and, resumed from that
    step, ends with exactly the weights and metrics of the uninterrupted run."""
    result, _, _, _ = checkpointed_run
    steps = 17
    reached = [0]

    def hook(progress: Progress) -> None:
        reached[0] = progress.global_step

    stopped = train(
        tiny_spec(epochs=3),
        easy_data,
        hook=hook,
        progress_every=1,
        checkpoint_dir=tmp_path,
        stop_requested=lambda: reached[0] >= stop_at,
    )
    assert stopped.stopped and stopped.stopped_at is not None
    where = stopped.stopped_at
    assert where.global_step == stop_at == int(stopped.model.optimizer.iterations)
    assert (where.epoch, where.step_in_epoch) == divmod(stop_at, steps)
    expected = "epoch-0001" if stop_at == steps else f"step-{stop_at:08d}"
    assert where.path == tmp_path / expected

    events: list[Progress] = []
    resumed = train(
        tiny_spec(epochs=3),
        easy_data,
        hook=events.append,
        progress_every=1,
        resume_from=where.path,
    )
    assert resumed.resumed_from_step == stop_at
    assert events[0].global_step == stop_at + 1  # the next batch, not the epoch's first
    assert _learned(resumed.history) == _learned(result.history)
    for original, again in zip(result.model.weights, resumed.model.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(again), np.asarray(original), err_msg=again.path)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "val_accuracy_flip"):
        assert resumed.final_metrics[key] == result.final_metrics[key], key


def test_a_stop_request_is_ignored_without_a_checkpoint_folder(easy_data: Dataset) -> None:
    result = train(
        tiny_spec(epochs=1, validation_split=0.0), easy_data, stop_requested=lambda: True
    )
    assert not result.stopped and result.stopped_at is None and result.epochs_completed == 1
