"""Prediction latency and throughput end to end over HTTP: client -> API -> serving process.

Starts the embedded service's API and serving process (as `tass up` runs them) on loopback,
stores an exported model of the default architecture (`alexnet-cifar`, untrained: latency does
not depend on the weights) and measures, after a warm-up:
  - one PNG per request, sequential: p50/p99;
  - 64 PNGs per request: p50/max;
  - `--clients` concurrent clients of one image each: images/s and errors.
Prints JSON.

    .venv/bin/python benchmarks/predict.py --requests 200 --clients 16
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from wrk import run_wrk, wrk_available  # noqa: E402

from tass.contract.artifacts import ModelFormat  # noqa: E402
from tass.contract.spec import TrainSpec  # noqa: E402
from tass.core.apikeys import create_key  # noqa: E402
from tass.core.db import make_engine, make_session_factory  # noqa: E402
from tass.core.job_queries import model_artifact  # noqa: E402
from tass.core.objectstore import ObjectStore  # noqa: E402
from tass.core.settings import Settings  # noqa: E402
from tass.migrations.runner import upgrade  # noqa: E402
from tass.operators.service import api_command, serve_command  # noqa: E402
from tass.trainer.models import build_model  # noqa: E402
from tass.trainer.saving import export_model  # noqa: E402
from tests.support.models import png, random_pixels  # noqa: E402
from tests.support.processes import Service, free_port, wait_http  # noqa: E402
from tests.support.seed import seed_trained_model  # noqa: E402

CLASSES = [f"class{i}" for i in range(10)]


def store_model(data_dir: str) -> tuple[str, str]:
    """(API key, model id) of a stored default-architecture model."""
    settings = Settings(data_dir=Path(data_dir))
    upgrade(settings.resolved_database_url)
    path = Path(data_dir) / "bench.keras"
    export_model(build_model(TrainSpec(), len(CLASSES)), path, CLASSES)
    store = ObjectStore(settings.resolved_artifact_url)
    with make_session_factory(make_engine(settings.resolved_database_url))() as session:
        _, key = create_key(session, "bench")
        model = seed_trained_model(
            session, store, path.read_bytes(), tenant="bench", class_names=CLASSES
        )
        session.commit()
        return key, model.id


def summary_ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered) * 1000, 2),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "max": round(ordered[-1] * 1000, 2),
    }


def timed_posts(client: httpx.Client, path: str, images: list[bytes], count: int) -> list[float]:
    files = [("files", (f"{i}.png", raw, "image/png")) for i, raw in enumerate(images)]
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        response = client.post(path, files=files)
        samples.append(time.perf_counter() - start)
        response.raise_for_status()
    return samples


def concurrent(url: str, key: str, path: str, image: bytes, clients: int, each: int) -> dict:
    errors: list[int] = []  # one entry per failed request
    done: list[int] = []  # one entry per answered request
    lock = threading.Lock()

    def one_client() -> None:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as c:
            for _ in range(each):
                try:
                    ok = c.post(path, files=[("files", ("x.png", image, "image/png"))]).is_success
                except httpx.HTTPError:
                    ok = False
                with lock:
                    (done if ok else errors).append(1)

    seconds = run_threads(one_client, clients)
    return {
        "clients": clients,
        "images": len(done),
        "errors": len(errors),
        "images_per_second": round(len(done) / seconds, 1),
    }


def concurrent_wrk(url: str, headers: dict[str, str], image: bytes, clients: int) -> dict:
    """The same one-image multipart POST from `clients` wrk connections for 10 s: wrk costs the
    2 cores a few percent where 16 Python client threads take a large share of them."""
    request = httpx.Request("POST", url, files={"files": ("x.png", image, "image/png")})
    body = request.read()
    wrk_headers = headers | {"Content-Type": request.headers["content-type"]}
    result = run_wrk(url, wrk_headers, clients=clients, seconds=10, name="predict", post_body=body)
    return {**result, "images_per_second": result["req_per_s"]}


def per_second(call: Callable[[httpx.Client], object], base: str, clients: int, each: int) -> float:
    """Calls per second of `call` from `clients` threads, `each` calls apiece."""

    def one_client() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(each):
                call(client)

    return round(clients * each / run_threads(one_client, clients), 1)


def run_threads(target: Callable[[], None], count: int) -> float:
    """Run `target` in `count` threads at once; the seconds until the last one ends."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def breakdown(data_dir: str, urls: dict[str, str], key: str, model_id: str, image: bytes) -> dict:
    """Where concurrent predictions spend their time: the serving process alone (the request
    the API sends it), the API's authenticated model lookup alone, and the whole path."""
    settings = Settings(data_dir=Path(data_dir))
    with make_session_factory(make_engine(settings.resolved_database_url))() as session:
        artifact = model_artifact(session, model_id, ModelFormat.KERAS)
        assert artifact is not None
        forwarded = {
            "model_id": model_id,
            "key": artifact.key,
            "sha256": artifact.sha256,
            "images": [{"name": "x.png", "data": base64.b64encode(image).decode()}],
        }
    auth = {"Authorization": f"Bearer {key}"}
    calls = {
        "serving_alone": (urls["serving"], lambda c: c.post("/predict", json=forwarded)),
        "api_model_lookup_alone": (
            urls["api"],
            lambda c: c.get(f"/v1/models/{model_id}", headers=auth),
        ),
        "whole_path": (
            urls["api"],
            lambda c: c.post(
                f"/v1/models/{model_id}/predict",
                headers=auth,
                files=[("files", ("x.png", image, "image/png"))],
            ),
        ),
    }
    return {name: per_second(call, base, 16, 40) for name, (base, call) in calls.items()}


def training_beside(
    data_dir: str, url: str, key: str, path: str, image: list[bytes], count: int
) -> dict[str, float]:
    """Single-image latency while a CPU training run (the trainer's CLI) shares the machine."""
    argv = [sys.executable, "-m", "tass.trainer", "train", "--data", "synthetic", "--epochs", "50"]
    argv += ["--out", str(Path(data_dir) / "train-out"), "--max-runtime-seconds", "300"]
    trainer = Service("trainer", argv, {}, Path(data_dir))
    try:
        time.sleep(20)  # past TensorFlow's start-up, into the epochs
        if not trainer.alive():
            raise RuntimeError(f"the training run exited:\n{trainer.log_tail()}")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            return summary_ms(timed_posts(client, path, image, count))
    finally:
        trainer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="single-image samples")
    parser.add_argument("--batches", type=int, default=20, help="64-image samples")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=40)
    parser.add_argument(
        "--breakdown", action="store_true", help="requests/s of the serving process and API alone"
    )
    parser.add_argument(
        "--while-training",
        action="store_true",
        help="measure single images again while `python -m tass.trainer train` runs beside them",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tass-predict-bench-") as data_dir:
        key, model_id = store_model(data_dir)
        serve_port, api_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASS_")}
        env |= {
            "TASS_DATA_DIR": data_dir,
            "TASS_RATE_LIMIT": "1000000/minute",
            "TASS_SERVE_URL": f"http://127.0.0.1:{serve_port}",
        }
        serving = Service("serving", serve_command("127.0.0.1", serve_port), env, Path(data_dir))
        api = Service("api", api_command("127.0.0.1", api_port), env, Path(data_dir))
        url = f"http://127.0.0.1:{api_port}"
        try:
            wait_http(f"http://127.0.0.1:{serve_port}/healthz", serving, timeout=180)
            wait_http(f"{url}/healthz", api)
            pixels = random_pixels(64)
            images = [png(p) for p in pixels]
            path = f"/v1/models/{model_id}/predict"
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                timed_posts(client, path, images[:1], 10)  # load the model, warm up
                timed_posts(client, path, images, 3)
                single = summary_ms(timed_posts(client, path, images[:1], args.requests))
                batch = summary_ms(timed_posts(client, path, images, args.batches))
            load = concurrent(url, key, path, images[0], args.clients, args.per_client)
            if wrk_available():
                load["wrk"] = concurrent_wrk(url + path, headers, images[0], args.clients)
            if args.breakdown:
                urls = {"serving": f"http://127.0.0.1:{serve_port}", "api": url}
                load["per_second_16_clients"] = breakdown(data_dir, urls, key, model_id, images[0])
            if args.while_training:
                training = training_beside(data_dir, url, key, path, images[:1], args.requests)
        finally:
            api.stop()
            serving.stop()
    print(
        json.dumps(
            {
                "model": "alexnet-cifar (default width), 32x32 PNG",
                "single_image_ms": single,
                "batch_64_ms": batch,
                "concurrent": load,
                **({"single_image_ms_while_training": training} if args.while_training else {}),
                "cpus": os.cpu_count(),
                "numpy": np.__version__,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
