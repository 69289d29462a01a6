"""`train`: one training run from a TrainSpec and an in-memory Dataset."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tass.contract.artifacts import MODEL_FILE
from tass.contract.progress import Phase
from tass.contract.spec import TrainSpec
from tass.trainer.batchnorm import BATCH_SIZE as BN_BATCH_SIZE
from tass.trainer.batchnorm import MAX_IMAGES as MAX_BN_IMAGES
from tass.trainer.batchnorm import PreciseBatchNorm
from tass.trainer.callbacks import Cancelled, Hook, Preempted, StopCheckpoint, TrainingMonitor
from tass.trainer.checkpoint import read_state, resolve_checkpoint
from tass.trainer.data import Dataset, stratified_split
from tass.trainer.data.resize import fit_images
from tass.trainer.errors import CheckpointError
from tass.trainer.evaluate import evaluate
from tass.trainer.finetune import freeze, start_from
from tass.trainer.flops import training_flops_per_image
from tass.trainer.hardware import HardwareInfo, configure
from tass.trainer.losses import SmoothedSparseCrossentropy
from tass.trainer.models import build_model, spec_input_shape
from tass.trainer.pipeline import eval_dataset, steps_per_epoch, train_dataset
from tass.trainer.randomness import align_layer_randomness
from tass.trainer.saving import load_weights
from tass.trainer.schedules import make_optimizer
from tass.trainer.tensorboard import tensorboard_callback

EVAL_BATCH_SIZE = 512

# told each phase `train` enters that no progress report shows: `compiling` on entry (the
# first step's report says `training`), `evaluating` before the test-time-flip validation
PhaseHook = Callable[[Phase], object]


@dataclass
class TrainResult:
    """The trained model and what happened while training it."""

    model: keras.Model
    history: list[dict[str, Any]]
    stopped: bool
    class_names: list[str]
    final_metrics: dict[str, Any] = field(default_factory=dict)
    epochs_completed: int = 0
    hardware: HardwareInfo | None = None
    training_flops_per_image: int = 0
    stopped_at: StopCheckpoint | None = None
    """Set when a stop request (`stop_requested`) ended the run: the checkpoint it wrote."""
    resumed_from_step: int = 0


def compile_model(
    model: keras.Model, spec: TrainSpec, steps: int, hardware: HardwareInfo
) -> keras.Model:
    """Attach optimizer, schedule, loss (with label smoothing) and accuracy to `model`."""
    if spec.label_smoothing:
        # Label smoothing needs one-hot targets; the wrapper keeps integer labels everywhere else.
        loss: Any = SmoothedSparseCrossentropy(spec.label_smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
    model.compile(
        optimizer=make_optimizer(spec, steps),
        loss=loss,
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=hardware.jit_compile,
    )
    return model


def _split(data: Dataset, spec: TrainSpec) -> tuple[Dataset, Dataset | None]:
    if spec.validation_split == 0:
        return data, None
    return stratified_split(data, spec.validation_split, spec.seed)


def _resume(
    path: str | os.PathLike, spec: TrainSpec, data: Dataset, steps: int, hardware: HardwareInfo
) -> tuple[keras.Model, dict[str, Any]]:
    """The model (weights and optimizer state) as checkpointed, and the checkpoint's state
    (epoch, history and, for a mid-epoch checkpoint, step_in_epoch and metric_values).

    The model and optimizer are rebuilt from the spec and only their variables come from the
    file: a deserialised optimizer would lose settings the .keras format does not save (which
    variables weight decay skips), and the resumed run would drift from the uninterrupted one.
    """
    checkpoint = resolve_checkpoint(path)
    state = read_state(checkpoint)
    if state.get("class_names") and list(state["class_names"]) != list(data.class_names):
        raise CheckpointError(
            f"{checkpoint}: trained on classes {state['class_names']}, "
            f"but the data has {data.class_names}"
        )
    with hardware.scope():
        network = build_model(spec, data.num_classes)
        freeze(network, spec)  # before compiling: the optimizer keeps state for the rest only
        model = compile_model(network, spec, steps, hardware)
        model.optimizer.build(model.trainable_variables)
        load_weights(model, checkpoint / MODEL_FILE)
    return model, state


def _fresh(
    spec: TrainSpec,
    data: Dataset,
    steps: int,
    hardware: HardwareInfo,
    init_from: str | os.PathLike | None,
    log: Callable[[str], None] | None,
) -> keras.Model:
    """The compiled network for a new run: freshly initialised, or started from the weights
    of the model file `init_from` (fine-tuning), with the spec's frozen layers."""
    with hardware.scope():
        network = build_model(spec, data.num_classes)
        if init_from is not None:
            reused = start_from(network, init_from, list(data.class_names))
            if log is not None:
                log(f"fine-tuning from {spec.init_from} ({'its' if reused else 'a new'} head)")
        freeze(network, spec)  # before compiling: the optimizer keeps state for the rest only
        return compile_model(network, spec, steps, hardware)


def _fit(
    model: keras.Model,
    spec: TrainSpec,
    train_data: Dataset,
    val_data: Dataset | None,
    first_epoch: int,
    steps: int,
    monitor: TrainingMonitor,
    extra: list[keras.callbacks.Callback] | None = None,
) -> bool:
    """Run the epochs from `first_epoch` on; True when the hook cancelled training or a stop
    request was checkpointed. A run resumed mid-epoch first fits the rest of that epoch on its
    own (every epoch of one fit() runs the same number of steps), then the remaining epochs."""
    aug = spec.augmentation
    use_aug = aug.horizontal_flip or aug.crop_padding > 0 or aug.translate > 0
    bn_sample = train_data.subset(np.arange(min(len(train_data), MAX_BN_IMAGES)))

    def bn_batches() -> Iterator[Any]:
        return (x for x, _ in eval_dataset(bn_sample, BN_BATCH_SIZE))

    def fit_epochs(start: int, end: int, skip: int) -> None:
        # the extra callbacks (TensorBoard) see each epoch's end before the monitor, whose
        # stop request at an epoch end raises out of fit() and would end it unwritten
        callbacks: list[keras.callbacks.Callback] = [*(extra or []), monitor]
        if model.distribute_strategy.num_replicas_in_sync == 1:  # see trainer/batchnorm.py
            callbacks.append(PreciseBatchNorm(bn_batches, steps - skip))
        if spec.early_stopping_patience is not None:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss",
                    patience=spec.early_stopping_patience,
                    restore_best_weights=False,
                )
            )
        model.fit(
            train_dataset(
                train_data,
                spec.batch_size,
                aug if use_aug else None,
                seed=spec.seed,
                first_epoch=start,
                epochs=end,
                skip_batches=skip,
            ),
            epochs=end,
            initial_epoch=start,
            steps_per_epoch=steps - skip,
            validation_data=eval_dataset(val_data, EVAL_BATCH_SIZE) if val_data else None,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles, seeded per epoch
            verbose=0,
        )

    try:
        if monitor.resume_step:
            fit_epochs(first_epoch, first_epoch + 1, monitor.resume_step)
            if model.stop_training:  # early stopping after that epoch
                return False
            first_epoch += 1
        if first_epoch < spec.epochs:
            fit_epochs(first_epoch, spec.epochs, 0)
    except (Cancelled, Preempted):
        return True
    return False


def train(
    spec: TrainSpec,
    data: Dataset,
    *,
    hook: Hook | None = None,
    progress_every: int = 20,
    checkpoint_dir: str | os.PathLike | None = None,
    resume_from: str | os.PathLike | None = None,
    init_from: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
    on_phase: PhaseHook | None = None,
    stop_requested: Callable[[], bool] | None = None,
    tensorboard_dir: str | os.PathLike | None = None,
) -> TrainResult:
    """Train `spec.model` on `data` (minus the stratified validation split).

    `hook(progress)` runs every `progress_every` steps and after each epoch (after its
    checkpoint); returning False stops training after the current batch. `checkpoint_dir` gets
    an `epoch-NNNN/` per epoch; `resume_from` continues from one of them (or the latest in a
    checkpoint folder) where it ended: at the next epoch, or mid-epoch at the next batch.
    `init_from` (a .keras model file: the model `spec.init_from` names) gives a fresh run its
    starting weights (fine-tuning); a resumed run takes its weights from the checkpoint.
    `stop_requested()` is asked after every batch (with `checkpoint_dir` set): once it is true
    the run writes a checkpoint where it is (`step-NNNNNNNN/`, or the epoch's own at an epoch
    end) and stops; `TrainResult.stopped_at` says where. `on_phase(phase)` is told when
    building and compiling starts and when the final flip validation starts
    (`tass.contract.progress.Phase`).
    `tensorboard_dir` gets TensorBoard event files (trainer/tensorboard.py).
    """
    report_phase = on_phase or (lambda _: None)
    report_phase("compiling")
    hardware = configure(spec)
    keras.utils.set_random_seed(spec.seed)
    data = fit_images(data, spec_input_shape(spec))  # the spec's image_size and channels
    train_data, val_data = _split(data, spec)
    steps = steps_per_epoch(len(train_data), spec.batch_size)
    history: list[dict[str, Any]] = []
    first_epoch, resume_step, resume_metrics = 0, 0, None
    if resume_from is not None:
        model, resumed = _resume(resume_from, spec, data, steps, hardware)
        first_epoch, history = int(resumed["epoch"]), list(resumed.get("history", []))
        resume_step = int(resumed.get("step_in_epoch", 0))
        resume_metrics = resumed.get("metric_values")
    else:
        model = _fresh(spec, data, steps, hardware, init_from, log)
    # Dropout masks follow (seed, step): a resumed run draws what the uninterrupted one drew.
    align_layer_randomness(model, spec.seed, int(model.optimizer.iterations))
    flops = training_flops_per_image(model)
    if log is not None:
        log(
            f"training {spec.model} on {len(train_data)} images "
            f"({len(val_data) if val_data else 0} validation), "
            f"{flops / 1e6:.1f} MFLOP per image per step, {hardware.describe()}"
        )

    def state(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "history": rows,
            "spec": spec.model_dump(mode="json"),
            "class_names": list(data.class_names),
        }

    monitor = TrainingMonitor(
        epochs=spec.epochs,
        first_epoch=first_epoch,
        steps_per_epoch=steps,
        num_examples=len(train_data),
        batch_size=spec.batch_size,
        flops_per_image=flops,
        history=history,
        hook=hook,
        progress_every=progress_every,
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir is not None else None,
        state=state,
        log=log,
        stop_requested=stop_requested,
        resume_step=resume_step,
        resume_metrics=resume_metrics,
    )
    extra: list[keras.callbacks.Callback] = []
    if tensorboard_dir is not None:  # TensorBoard event files (trainer/tensorboard.py)
        board = tensorboard_callback(
            tensorboard_dir,
            epochs=spec.epochs,
            steps_per_epoch=steps,
            every_steps=progress_every,
            first_step=first_epoch * steps + resume_step,
        )
        extra.append(board)
    stopped = False
    try:
        if first_epoch < spec.epochs:
            stopped = _fit(model, spec, train_data, val_data, first_epoch, steps, monitor, extra)
    finally:
        if tensorboard_dir is not None:
            board.close()  # a stopped run's event files are flushed too
    final_metrics = dict(history[-1]) if history else {}
    if val_data is not None and history and not stopped:
        # the validation estimate with test-time flip augmentation (python -m tass.trainer
        # evaluate --flip): each image's outputs averaged with its mirror image's
        report_phase("evaluating")
        flipped = evaluate(model, val_data, EVAL_BATCH_SIZE, flip=True)
        final_metrics["val_accuracy_flip"] = flipped.accuracy
    return TrainResult(
        model=model,
        history=history,
        stopped=stopped,
        class_names=list(data.class_names),
        final_metrics=final_metrics,
        epochs_completed=history[-1]["epoch"] if history else 0,
        hardware=hardware,
        training_flops_per_image=flops,
        stopped_at=monitor.stopped_at,
        resumed_from_step=first_epoch * steps + resume_step,
    )
