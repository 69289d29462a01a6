"""wrk as the load generator for benchmarks/load.py: a C client on epoll takes a fraction of the
CPU that a Python client does, so on a 2-core machine it measures the server, not itself.

`run_wrk` runs wrk for one scenario and returns the same summary shape as
tests/support/load.py's LoadResult (req/s, p50/p99 ms, errors by kind). wrk counts a 304 as a
success; any other status >= 400 is counted as an error by wrk ("Non-2xx or 3xx responses").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

# wrk calls done() once at the end; latency is in microseconds.
REPORT_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _request_script(body_file: Path | None) -> str:
    """The Lua that sets the request (a POST of the file's bytes, when given) and reports."""
    if body_file is None:
        return REPORT_SCRIPT
    send_body = (
        f'local file = io.open("{body_file}", "rb")\n'
        'wrk.method = "POST"\nwrk.body = file:read("*a")\nfile:close()\n'
    )
    return send_body + REPORT_SCRIPT


def run_wrk(
    url: str,
    headers: dict[str, str],
    *,
    clients: int,
    seconds: float,
    name: str,
    threads: int = 1,
    timeout_s: int = 10,
    post_body: bytes | None = None,
) -> dict[str, Any]:
    """`clients` connections on `threads` wrk threads GET `url` for `seconds` (or POST
    `post_body`, with the content type among `headers`)."""
    with tempfile.TemporaryDirectory() as tmp:
        body_file = None
        if post_body is not None:
            body_file = Path(tmp) / "body"
            body_file.write_bytes(post_body)
        script = Path(tmp) / "report.lua"
        script.write_text(_request_script(body_file))
        argv = [
            "wrk",
            f"-t{min(threads, clients)}",
            f"-c{clients}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout_s}s",
            "-s",
            str(script),
        ]
        for key, value in headers.items():
            argv += ["-H", f"{key}: {value}"]
        out = subprocess.run(
            [*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    errors = {
        kind: report[kind]
        for kind in ("connect", "read", "write", "status", "timeout")
        if report[kind]
    }
    ok = report["requests"] - report["status"]
    duration = report["duration_us"] / 1e6
    return {
        "scenario": name,
        "clients": clients,
        "requests": report["requests"],
        "req_per_s": round(ok / duration, 1) if duration else 0.0,
        "p50_ms": round(report["p50_us"] / 1000, 1),
        "p99_ms": round(report["p99_us"] / 1000, 1),
        "max_ms": round(report["max_us"] / 1000, 1),
        "errors": errors,
    }
