"""Warm models: a least-recently-used cache of loaded models, each with a micro-batcher that
runs the requests that arrive while the model is busy as one batch."""

from __future__ import annotations

import asyncio
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tass.contract.artifacts import MODEL_FILE
from tass.core.objectstore import ObjectStore
from tass.trainer.saving import load_model, read_class_names, takes_pixels

# one prediction request waiting for its batch: its images and the future its answer goes to
PendingRequest = tuple[np.ndarray, asyncio.Future[np.ndarray]]


class ModelLoadError(Exception):
    """The model's file is missing, altered (sha256 mismatch) or not a loadable model."""


@dataclass(frozen=True)
class ModelFile:
    """Which stored object a model is, as the API found it in the database."""

    model_id: str
    key: str
    sha256: str


def traced_forward(model: keras.Model) -> Callable[[np.ndarray], Any]:
    """The inference pass compiled once for any batch size (an eager call per batch costs
    milliseconds of Python dispatch); traced here, at load, not on the first request. Its input
    is uint8 pixels or float32 [0, 1], whichever the model takes."""
    _, height, width, channels = model.input_shape
    dtype = np.uint8 if takes_pixels(model) else np.float32
    signature = [tf.TensorSpec([None, height, width, channels], tf.as_dtype(dtype))]
    forward = tf.function(lambda images: model(images, training=False), input_signature=signature)
    forward(np.zeros((1, height, width, channels), dtype))
    return forward


def load_checked(store: ObjectStore, file: ModelFile) -> tuple[keras.Model, list[str] | None]:
    """Fetch the model file, refuse it unless its bytes match the recorded sha256, then load it
    in Keras safe mode (no code from the file runs)."""
    with tempfile.TemporaryDirectory(prefix="tass-serve-") as folder:
        try:
            path = store.download(file.key, Path(folder) / MODEL_FILE, file.sha256).path
        except Exception as exc:  # missing, altered (ArtifactError) or unreadable: not served
            raise ModelLoadError(f"model {file.model_id}: cannot use its file ({exc})") from exc
        try:
            return load_model(path, compile=False), read_class_names(path)
        except Exception as exc:  # ModelFileError and whatever else a hostile file raises
            raise ModelLoadError(f"model {file.model_id}: cannot be loaded ({exc})") from exc


@dataclass
class WarmModel:
    """A loaded model and its queue of pending requests. Requests that arrive while a batch
    runs wait and then run together as the next batch."""

    model: keras.Model
    class_names: list[str]
    max_batch: int = 256
    # the model's forward pass as one traced graph (batch size free); None: call the model
    runner: Callable[[np.ndarray], Any] | None = None
    pending: list[PendingRequest] = field(default_factory=list)
    running: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def input_size(self) -> tuple[int, int, int]:
        _, height, width, channels = self.model.input_shape
        return int(height), int(width), int(channels)

    @property
    def takes_pixels(self) -> bool:
        """True: inputs are uint8 pixels 0-255; False: float32 in [0, 1] (older exports)."""
        return takes_pixels(self.model)

    async def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities for images already at the model's input size and dtype."""
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self.pending.append((images, future))
        if not self.running:
            self.running = True
            self.task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self._take()
                inputs = np.concatenate([images for images, _ in batch])
                try:
                    probs = await asyncio.to_thread(self._run, inputs)
                except Exception as exc:  # every waiter hears of it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for images, future in batch:
                    if not future.done():
                        future.set_result(probs[start : start + len(images)])
                    start += len(images)
        finally:
            self.running = False

    def _take(self) -> tuple[list[PendingRequest], list[PendingRequest]]:
        """The next batch and the requests left waiting: pending requests up to `max_batch`
        images (always at least one)."""
        taken: list[PendingRequest] = []
        count = 0
        for index, (images, future) in enumerate(self.pending):
            if taken and count + len(images) > self.max_batch:
                return taken, self.pending[index:]
            taken.append((images, future))
            count += len(images)
        return taken, []

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        if self.runner is not None:
            return np.asarray(self.runner(inputs), np.float64)
        return np.asarray(self.model(inputs, training=False), np.float64)


class ModelCache:
    """At most `max_models` models in memory, warm ones and loads in progress together: a load
    first evicts the least recently used warm models to make room, and when `max_models` loads
    are already running it waits for one to end. Concurrent first requests for one model load
    it once."""

    def __init__(self, loader: Callable[[ModelFile], WarmModel], max_models: int) -> None:
        self.loader, self.max_models = loader, max_models
        self.warm: OrderedDict[str, WarmModel] = OrderedDict()
        self.loading: dict[str, asyncio.Future[WarmModel]] = {}
        self.loads_running = 0
        self._load_slots: asyncio.Semaphore | None = None  # made on the serving loop

    def _make_room(self) -> None:
        """Evict least recently used warm models until they and the running loads fit."""
        while self.warm and len(self.warm) + self.loads_running > self.max_models:
            self.warm.popitem(last=False)

    async def _load(self, file: ModelFile) -> WarmModel:
        if self._load_slots is None:
            self._load_slots = asyncio.Semaphore(self.max_models)
        async with self._load_slots:
            self.loads_running += 1
            try:
                self._make_room()
                return await asyncio.to_thread(self.loader, file)
            finally:
                self.loads_running -= 1

    async def get(self, file: ModelFile) -> WarmModel:
        cache_key = f"{file.model_id}:{file.sha256}"
        if cache_key in self.warm:
            self.warm.move_to_end(cache_key)
            return self.warm[cache_key]
        if cache_key in self.loading:
            return await asyncio.shield(self.loading[cache_key])
        future: asyncio.Future[WarmModel] = asyncio.get_running_loop().create_future()
        self.loading[cache_key] = future
        try:
            warm = await self._load(file)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self.loading[cache_key]
        future.set_result(warm)
        self.warm[cache_key] = warm
        self._make_room()
        return warm
