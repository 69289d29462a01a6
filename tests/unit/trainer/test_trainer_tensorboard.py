"""A training run with a TensorBoard folder writes what TensorBoard shows: epoch and step
scalars (learning rate included), weight histograms at epoch ends and the graph, bounded."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util.tensor_util import make_ndarray
from trainer_testdata import tiny_spec

from tass.trainer.data import Dataset
from tass.trainer.tensorboard import MAX_STEP_POINTS, event_files, tensorboard_callback
from tass.trainer.train import train


def loaded(folder: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator


def test_a_run_writes_scalars_histograms_and_the_graph(easy_data: Dataset, tmp_path: Path):
    logdir = tmp_path / "tb"
    result = train(tiny_spec(epochs=2), easy_data, progress_every=5, tensorboard_dir=logdir)
    assert {p.relative_to(logdir).parts[0] for p in event_files(logdir)} == {"train", "validation"}
    run = loaded(logdir / "train")
    tags = run.Tags()
    # TF2 summaries are tensors: the scalars, and each weight's histogram (a [k, 3] tensor)
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate", "batch_loss"):
        assert tag in tags["tensors"], tags
    losses = run.Tensors("epoch_loss")
    assert [e.step for e in losses] == [0, 1]
    expected = [round(row["loss"], 4) for row in result.history]
    assert [round(float(make_ndarray(e.tensor_proto)), 4) for e in losses] == expected
    histograms = [
        t for t in tags["tensors"] if make_ndarray(run.Tensors(t)[0].tensor_proto).ndim == 2
    ]
    assert histograms, tags["tensors"]
    assert [e.step for e in run.Tensors(histograms[0])] == [0, 1]  # at each epoch's end
    assert tags["graph"]
    assert "epoch_loss" in loaded(logdir / "validation").Tags()["tensors"]


def test_step_points_and_histograms_are_bounded_for_long_runs():
    callback = tensorboard_callback("x", epochs=500, steps_per_epoch=10_000)
    assert 500 * 10_000 / callback.update_freq <= MAX_STEP_POINTS
    assert 500 / callback.histogram_freq <= 50
