"""What the decoded-pixel cache saves a job: the real CIFAR-10 archive loaded with no cache,
then with an empty cache (decode and store), then from the cache, in one run.

    .venv/bin/python benchmarks/decoded_cache.py [--archive PATH] [--rounds 2] [--out FILE]

Prints one JSON object: seconds per load (best of `rounds`) and the cached / uncached ratio."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import DEFAULT_ARCHIVE, machine, write_json


def timed_load(archive: str, cache: Path | None) -> float:
    from tass.contract.spec import DatasetSpec
    from tass.trainer.data import load_dataset

    start = time.perf_counter()
    data = load_dataset(DatasetSpec(source="image-folder", path=archive), decoded_cache=cache)
    seconds = time.perf_counter() - start
    assert len(data) > 0
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=DEFAULT_ARCHIVE)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    uncached, stored, cached = [], [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as folder:
            uncached.append(timed_load(args.archive, None))
            stored.append(timed_load(args.archive, Path(folder)))
            cached.append(timed_load(args.archive, Path(folder)))
            size = sum(p.stat().st_size for p in Path(folder).glob("*.npz"))
    result = {
        "archive": args.archive,
        "machine": machine(),
        "uncached_s": min(uncached),
        "first_load_with_cache_s": min(stored),
        "cached_s": min(cached),
        "cached_over_uncached": round(min(cached) / min(uncached), 4),
        "entry_bytes": size,
    }
    print(json.dumps(result, indent=2))
    write_json(args.out, result)


if __name__ == "__main__":
    main()
