"""A .tar.gz is read in the order its members lie in it, whatever order that is (`tar czf` on
ext4 stores files in hash order): reading in sorted path order restarted decompression at
every backward step, so a shuffled archive of 20,000 small images took hours. The images and
labels still come out in sorted path order. The work is measured as the bytes this process
reads from files (/proc/self/io), not as time: past a few passes over the archive the load is
interrupted and the test fails at once."""

from __future__ import annotations

import io
import random
import signal
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tass.trainer.data.image_folder import load_image_folder
from tests.support.archives import png_bytes

MEMBERS = 20_000
PASSES = 8  # the listing pass and the reading pass, with room to spare


class ReadPastBudget(Exception):
    pass


def bytes_read() -> int:
    with open("/proc/self/io") as stats:
        return int(next(line for line in stats if line.startswith("rchar:")).split()[1])


@contextmanager
def read_budget(limit: int) -> Iterator[None]:
    """Interrupt the main thread with ReadPastBudget once this process read `limit` bytes."""
    start, done = bytes_read(), threading.Event()

    def interrupt(*_: object) -> None:
        raise ReadPastBudget(f"read over {limit} bytes from files")

    def watch() -> None:
        while not done.wait(0.05):
            if bytes_read() - start > limit:
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)
                return

    previous = signal.signal(signal.SIGUSR1, interrupt)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        signal.signal(signal.SIGUSR1, previous)


def shuffled_archive(path: Path) -> None:
    names = [f"train/{cls}/{i:05d}.png" for cls in ("cat", "dog") for i in range(MEMBERS // 2)]
    random.Random(7).shuffle(names)
    pngs = {
        (cls, g): png_bytes(200 if cls == "cat" else 0, g, 0)
        for cls in ("cat", "dog")
        for g in range(256)
    }
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name in names:
            cls, number = name.split("/")[1], int(name[-9:-4])
            data = pngs[(cls, number % 256)]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_shuffled_gzip_archive_is_read_in_one_pass_and_sorted(tmp_path: Path) -> None:
    archive = tmp_path / "shuffled.tar.gz"
    shuffled_archive(archive)
    size = archive.stat().st_size
    with read_budget(PASSES * size + 4 * 1024**2):
        data = load_image_folder(str(archive), "train")
    half = MEMBERS // 2
    assert data.class_names == ["cat", "dog"]
    assert data.y.tolist() == [0] * half + [1] * half
    # in sorted path order: member NNNNN of each class has green NNNNN % 256
    assert data.x[:half, 0, 0, 0].tolist() == [200] * half
    assert data.x[:, 0, 0, 1].tolist() == [i % 256 for i in range(half)] * 2
    assert np.all(data.x[half:, 0, 0, 0] == 0)
