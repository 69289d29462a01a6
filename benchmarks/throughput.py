"""Training throughput (images/s) of the trainer against the textbook Keras recipe.

    python benchmarks/throughput.py --images 5120 --rounds 3 --out /tmp/throughput.json
    python benchmarks/throughput.py --only 7 --image-size 224   # the trainer rows at 224x224

`--image-size` trains the trainer's rows at that size (the CIFAR images resized, as a job with
spec.image_size does); their FLOPs per image follow the size. The textbook row stays 32x32.

Each row also gives the achieved training GFLOP/s (images/s x the model's training FLOPs per
image, `trainer.flops`) and that as a fraction of the machine's float32 matmul peak, measured in
the same run before and between the rounds (NumPy sgemm and TensorFlow matmul, 2048x2048).

Every configuration trains on the same real CIFAR-10 images in this one process; each round
runs all of them in turn (so load from other processes hits them alike) and the median of the
rounds is reported. Each measurement is one timed epoch after a warm-up epoch (tracing excluded).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common import DEFAULT_ARCHIVE, load_real, machine, write_json

if TYPE_CHECKING:
    import numpy as np

    from tass.trainer.data import Dataset

# alexnet-seed with the textbook hyperparameters, so only the input pipeline differs.
SEED_AS_TEXTBOOK: dict[str, Any] = {
    "model": "alexnet-seed",
    "batch_size": 32,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "schedule": "constant",
    "weight_decay": 0.0,
    "dropout": 0.5,
    "batch_norm": False,
    "label_smoothing": 0.0,
    "augmentation": {"horizontal_flip": False, "crop_padding": 0},
}
CONFIGS: dict[str, dict[str, Any] | None] = {
    "textbook: alexnet-seed, batch 32, model.fit on float NumPy": None,
    "trainer: alexnet-seed, batch 32, no augmentation": SEED_AS_TEXTBOOK,
    "trainer: alexnet-seed, batch 32, no augmentation, XLA on": {
        **SEED_AS_TEXTBOOK,
        "jit_compile": "on",
    },
    "trainer: alexnet-seed, batch 32, default augmentation": {
        **SEED_AS_TEXTBOOK,
        "augmentation": {},
    },
    "trainer: alexnet-seed, default batch 256 + augmentation": {
        **SEED_AS_TEXTBOOK,
        "batch_size": 256,
        "augmentation": {},
    },
    "trainer: alexnet-cifar default spec, XLA off": {"jit_compile": "off"},
    "trainer: alexnet-cifar default spec, XLA on": {"jit_compile": "on"},
    "trainer: gpu profile (alexnet-cifar width 4, batch 512)": {"profile": "gpu"},
}


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> dict[str, float]:
    """The machine's matmul rate (GFLOP/s), best of `repeats`: float32 on the CPU (NumPy sgemm
    and TensorFlow) and, where there is a GPU, bfloat16 on it (8192x8192)."""
    import numpy as np
    import tensorflow as tf

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    # name: (floating-point operations, one run of them)
    candidates: dict[str, tuple[int, Callable[[], object]]] = {
        "numpy_sgemm": (2 * size**3, lambda: a @ a),
    }

    def cpu_matmul() -> None:
        with tf.device("/CPU:0"):
            tf.linalg.matmul(a, a).numpy()

    candidates["tensorflow_cpu_matmul"] = (2 * size**3, cpu_matmul)
    if tf.config.list_physical_devices("GPU"):
        big = 8192
        with tf.device("/GPU:0"):
            gpu_a = tf.cast(tf.random.uniform((big, big)), tf.bfloat16)

        def gpu_matmul() -> None:
            with tf.device("/GPU:0"):
                out = gpu_a
                for _ in range(10):
                    out = tf.linalg.matmul(gpu_a, out)
                out[0, 0].numpy()  # waits for the device

        candidates["tensorflow_gpu_bf16_matmul"] = (10 * 2 * big**3, gpu_matmul)
    rates = {}
    for name, (flops, matmul) in candidates.items():
        matmul()  # warm-up
        best = min(_timed(matmul) for _ in range(repeats))
        rates[name] = flops / best / 1e9
    return rates


def _timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def textbook_flops_per_image() -> int:
    from textbook import textbook_model

    from tass.trainer.flops import training_flops_per_image

    return training_flops_per_image(textbook_model(10))


def textbook_images_per_sec(x: np.ndarray, y: np.ndarray) -> float:
    """The issue's recipe: images / 255, adam, fit(batch_size=32) on NumPy; second epoch timed."""
    import keras
    from textbook import WallClock, textbook_model

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_dtype_policy("float32")
    model = textbook_model(10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    clock = WallClock(None, time.perf_counter())
    model.fit(x.astype("float32") / 255.0, y, epochs=2, batch_size=32, callbacks=[clock], verbose=0)
    return len(x) / clock.rows[-1]["epoch_seconds"]


def trainer_images_per_sec(
    data: Dataset, overrides: dict[str, Any], image_size: int | None = None
) -> tuple[float, int]:
    """Images/s of the timed epoch, and the model's training FLOPs per image."""
    from tass.contract.spec import TrainSpec, profile_fields
    from tass.trainer.train import train

    fields = {k: v for k, v in overrides.items() if k != "profile"}
    fields.update({"epochs": 2, "validation_split": 0.0})
    if image_size is not None:
        fields["image_size"] = image_size
    spec = TrainSpec.model_validate(profile_fields(overrides.get("profile"), fields))
    result = train(spec, data)
    return result.history[-1]["images_per_sec"], result.training_flops_per_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=DEFAULT_ARCHIVE)
    parser.add_argument("--images", type=int, default=5120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=None, help="comma-separated config numbers (1-based)")
    parser.add_argument(
        "--threads", default=None, help="INTRA,INTER TensorFlow thread pools (default: TF's)"
    )
    parser.add_argument(
        "--image-size", type=int, default=None, help="train the trainer rows at this size"
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import tensorflow as tf

    if args.threads:
        intra, inter = (int(v) for v in args.threads.split(","))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    data = load_real(args.archive, args.images)
    names = list(CONFIGS)
    if args.only:
        names = [names[int(i) - 1] for i in args.only.split(",")]
    samples: dict[str, list[float]] = {name: [] for name in names}
    flops: dict[str, int] = {}
    peaks = [matmul_peak_gflops()]
    for round_ in range(args.rounds):
        for name in names:
            overrides = CONFIGS[name]
            if overrides is None:
                ips = textbook_images_per_sec(data.x, data.y)
                flops[name] = textbook_flops_per_image()
            else:
                ips, flops[name] = trainer_images_per_sec(data, overrides, args.image_size)
            samples[name].append(ips)
            print(f"round {round_ + 1}: {name}: {ips:.0f} img/s", flush=True)
        peaks.append(matmul_peak_gflops())  # between rounds, under the same load
    peak = {key: statistics.median(p[key] for p in peaks) for key in peaks[0]}
    print(f"matmul peak (median of {len(peaks)}): {peak}", flush=True)
    baseline_name = names[0] if CONFIGS[names[0]] is None else None
    baseline = statistics.median(samples[baseline_name]) if baseline_name else None
    rows = []
    for name in names:
        median = statistics.median(samples[name])
        ratio = median / baseline if baseline else None
        gflops = median * flops[name] / 1e9
        efficiency = gflops / max(peak.values())
        rows.append(
            {
                "config": name,
                "images_per_sec": median,
                "samples": samples[name],
                "ratio": ratio,
                "training_mflops_per_image": flops[name] / 1e6,
                "gflops_per_sec": gflops,
                "efficiency_vs_matmul_peak": efficiency,
            }
        )
        ratio_text = f"  ratio {ratio:.2f}" if ratio else ""
        print(
            f"{name}: median {median:.0f} img/s{ratio_text}  {gflops:.1f} GFLOP/s "
            f"({efficiency:.0%} of matmul peak)",
            flush=True,
        )
    write_json(
        args.out,
        {
            "machine": machine(),
            "images": len(data),
            "threads": args.threads,
            "matmul_peak_gflops": peak,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
