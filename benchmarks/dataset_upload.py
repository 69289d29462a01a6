"""Dataset upload benchmark (issue 14): POST the real CIFAR-10 training archive (16 MB) to an
embedded API process this script starts (SQLite, the object store in a local folder), and in
the same run the same bytes, with the same client, to a plain sink over loopback: a separate
process that reads the HTTP body and writes it to a file, nothing else. Reports the API
process's resident memory (VmRSS from /proc) before, at its peak during, and after the
uploads, and throughput of both, median of `--repeat` alternating rounds, with the ratio.

    python benchmarks/dataset_upload.py --out benchmarks/results/dataset_upload.json

No worker runs: the datasets stay `validating`; only the upload path is measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from common import DEFAULT_ARCHIVE, REPO, write_json  # noqa: F401 - REPO sets sys.path

from tass.operators.service import api_command
from tests.support.processes import (
    Service,
    free_port,
    service_env,
    sqlite_service_settings,
    wait_http,
)
from tests.support.seed import new_api_key

CHUNK_BYTES = 256 * 1024  # what `tass datasets upload` sends per write
SINK = r"""
import asyncio, sys

async def handle(reader, writer):
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:  # the client closed its connection
            return
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        with open(sys.argv[2], "wb") as out:
            while length:
                block = await reader.read(min(length, 1 << 20))
                out.write(block)
                length -= len(block)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def vm_rss(pid: int) -> int:
    """Resident set size of a process in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class RssSampler:
    """The peak VmRSS of a process while the block runs, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, vm_rss(self.pid))
            time.sleep(0.02)

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            yield block


def timed_post(client: httpx.Client, url: str, path: Path, headers: dict[str, str]) -> float:
    """Seconds to POST the file (streamed) and read the answer."""
    size = path.stat().st_size
    headers = {**headers, "Content-Length": str(size)}
    started = time.perf_counter()
    response = client.post(url, content=file_chunks(path), headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code not in (200, 202):
        raise RuntimeError(f"{url}: HTTP {response.status_code} {response.text[:300]}")
    return elapsed


def start_api(folder: Path) -> tuple[Service, str, str]:
    database, env = sqlite_service_settings(folder)
    port = free_port()
    argv = [*api_command("127.0.0.1", port), "--no-access-log"]
    service = Service("api", argv, service_env(env), folder)
    wait_http(f"http://127.0.0.1:{port}/healthz", service)
    return service, f"http://127.0.0.1:{port}", new_api_key(database, "bench")


MIB = 1024 * 1024


def rounds(
    client: httpx.Client, targets: tuple[str, str], api_pid: int, file: Path, repeat: int
) -> dict[str, Any]:
    """`repeat` alternating rounds (sink, then API) for one file: medians and RSS peaks."""
    sink_url, upload_url = targets
    api_seconds, sink_seconds, peaks = [], [], []
    before = vm_rss(api_pid)
    for _ in range(repeat):
        sink_seconds.append(timed_post(client, sink_url, file, {}))
        with RssSampler(api_pid) as sampler:
            api_seconds.append(timed_post(client, upload_url, file, UPLOAD_HEADERS))
        peaks.append(sampler.peak)
    size = file.stat().st_size
    api_rate = size / statistics.median(api_seconds)
    sink_rate = size / statistics.median(sink_seconds)
    return {
        "file": str(file),
        "bytes": size,
        "rounds": repeat,
        "api_rss_before_mib": round(before / MIB, 1),
        "api_rss_peak_during_mib": round(max(peaks) / MIB, 1),
        "api_rss_after_mib": round(vm_rss(api_pid) / MIB, 1),
        "api_upload_mib_per_s": round(api_rate / MIB, 1),
        "plain_sink_mib_per_s": round(sink_rate / MIB, 1),
        "api_over_sink_time_ratio": round(sink_rate / api_rate, 2),
        "api_seconds": [round(s, 3) for s in api_seconds],
        "sink_seconds": [round(s, 3) for s in sink_seconds],
    }


UPLOAD_HEADERS = {"Content-Type": "application/gzip"}


def measure(archive: Path, repeat: int, big_mib: int, folder: Path) -> dict[str, Any]:
    """The archive, then a file `big_mib` MiB large (random bytes: the API does not look
    inside), each against the sink and the API; RSS at start and after a warm-up upload."""
    api, url, key = start_api(folder)
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(sink_port), str(folder / "sink")])
    targets = (f"http://127.0.0.1:{sink_port}/", f"{url}/v1/datasets?name=bench")
    big = folder / "big.bin"
    with big.open("wb") as out:
        for _ in range(big_mib):
            out.write(os.urandom(MIB))
    try:
        time.sleep(0.5)
        at_start = vm_rss(api.proc.pid)
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(timeout=300, headers=auth) as client:
            timed_post(client, targets[0], archive, {})  # warm-up: both paths once
            timed_post(client, targets[1], archive, UPLOAD_HEADERS)
            results = [
                rounds(client, targets, api.proc.pid, archive, repeat),
                rounds(client, targets, api.proc.pid, big, max(repeat // 2, 1)),
            ]
    finally:
        sink.terminate()
        sink.wait()
        api.stop()
    return {"api_rss_at_start_mib": round(at_start / MIB, 1), "runs": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=DEFAULT_ARCHIVE)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--big-mib", type=int, default=160, help="Size of the second file.")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tass-upload-bench-") as folder:
        result = measure(Path(args.archive), args.repeat, args.big_mib, Path(folder))
    print(f"api_rss_at_start_mib: {result['api_rss_at_start_mib']}")
    for run in result["runs"]:
        print("\n".join(f"{name}: {value}" for name, value in run.items()), end="\n\n")
    write_json(args.out, result)


if __name__ == "__main__":
    main()
