"""The serving process's warm models: an LRU within TASS_SERVE_MAX_MODELS that loads each model
once however many requests ask at the same time, and batching of concurrent requests."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from tass.serving.app import predictions
from tass.serving.warm import ModelCache, ModelFile, ModelLoadError, WarmModel


class CountingModel:
    """Stands in for a Keras model: probabilities from the mean pixel; records batch sizes."""

    input_shape = (None, 2, 2, 3)
    inputs = (SimpleNamespace(dtype="float32"),)  # float [0, 1] input, as older exports take

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[int] = []
        self.delay = delay

    def __call__(self, inputs: np.ndarray, training: bool = False) -> np.ndarray:
        self.batches.append(len(inputs))
        time.sleep(self.delay)
        mean = inputs.reshape(len(inputs), -1).mean(axis=1)
        return np.stack([mean, 1 - mean], axis=1)


def file(name: str) -> ModelFile:
    return ModelFile(model_id=name, key=f"models/{name}", sha256="0" * 64)


def test_least_recently_used_models_are_evicted_and_each_loads_once():
    loads: list[str] = []
    lock = threading.Lock()

    def loader(f: ModelFile) -> WarmModel:
        with lock:
            loads.append(f.model_id)
        time.sleep(0.05)  # concurrent first requests overlap the load
        return WarmModel(model=CountingModel(), class_names=["a", "b"])

    async def scenario() -> None:
        cache = ModelCache(loader, max_models=2)
        first = await asyncio.gather(*(cache.get(file("a")) for _ in range(5)))
        assert all(warm is first[0] for warm in first)
        await cache.get(file("b"))
        await cache.get(file("a"))  # a is now the most recently used
        await cache.get(file("c"))  # evicts b
        assert list(cache.warm) == [f"a:{'0' * 64}", f"c:{'0' * 64}"]
        await cache.get(file("b"))

    asyncio.run(scenario())
    assert loads == ["a", "b", "c", "b"]


def test_a_failed_load_raises_for_every_waiter_and_is_retried_next_time():
    attempts = []

    def loader(f: ModelFile) -> WarmModel:
        attempts.append(f.model_id)
        raise ModelLoadError(f"model {f.model_id}: cannot be loaded")

    async def scenario() -> None:
        cache = ModelCache(loader, max_models=2)
        results = await asyncio.gather(
            *(cache.get(file("x")) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, ModelLoadError) for r in results)
        with pytest.raises(ModelLoadError):
            await cache.get(file("x"))
        assert not cache.warm

    asyncio.run(scenario())
    assert attempts == ["x", "x"]


def test_concurrent_requests_run_in_shared_batches_and_get_their_own_rows():
    model = CountingModel(delay=0.05)
    warm = WarmModel(model=model, class_names=["a", "b"], max_batch=64)
    requests = [np.full((n, 2, 2, 3), n / 10, np.float32) for n in (1, 2, 3, 1, 2, 3, 1, 2)]

    async def scenario() -> list[np.ndarray]:
        return await asyncio.gather(*(warm.predict(r) for r in requests))

    answers = asyncio.run(scenario())
    for request, answer in zip(requests, answers, strict=True):
        assert answer.shape == (len(request), 2)
        np.testing.assert_allclose(answer[:, 0], request.reshape(len(request), -1).mean(axis=1))
    assert sum(model.batches) == sum(len(r) for r in requests)
    assert len(model.batches) < len(requests)  # requests that waited ran together


def test_predictions_name_the_top_class_and_trim_to_top_k():
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    full = predictions(probs, ["cat", "dog", "frog"], None)
    assert full[0] == {
        "label": "dog",
        "index": 1,
        "probabilities": {"dog": 0.7, "frog": 0.2, "cat": 0.1},
    }
    assert predictions(probs, ["cat", "dog", "frog"], 2)[1]["probabilities"] == {
        "cat": 0.5,
        "frog": 0.3,
    }


def test_loads_in_progress_count_against_max_models():
    """With room for two models, a third model's load first evicts a warm one (two in memory
    while it loads, not three), and no more than two loads run at once."""
    release = threading.Event()
    running: list[str] = []
    most_at_once = 0
    lock = threading.Lock()

    def loader(f: ModelFile) -> WarmModel:
        nonlocal most_at_once
        with lock:
            running.append(f.model_id)
            most_at_once = max(most_at_once, len(running))
        if f.model_id != "a" and f.model_id != "b":
            release.wait(10)
        with lock:
            running.remove(f.model_id)
        return WarmModel(model=CountingModel(), class_names=["a", "b"])

    async def scenario() -> None:
        cache = ModelCache(loader, max_models=2)
        await cache.get(file("a"))
        await cache.get(file("b"))
        loads = [asyncio.create_task(cache.get(file(name))) for name in ("c", "d", "e")]
        await asyncio.sleep(0.3)
        assert cache.loads_running == 2, "the third new model waits for a load to end"
        assert len(cache.warm) + cache.loads_running <= 2, "warm models were evicted first"
        release.set()
        await asyncio.gather(*loads)
        assert len(cache.warm) <= 2

    asyncio.run(scenario())
    assert most_at_once == 2
