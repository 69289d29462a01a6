"""The scheduler simulation runs end to end at a tiny size and reports sane figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "scheduler_sim.py"


def simulate(*args: str) -> dict:
    command = [sys.executable, str(SCRIPT), "--json", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_a_tiny_simulation_reports_every_field_within_its_range() -> None:
    result = simulate("--gpus", "48", "--tenants", "5", "--jobs", "300")
    assert result["jobs"] == 300
    assert result["finished"] == 300  # nothing is lost, nothing waits forever
    assert 0.0 < result["utilisation"] <= 1.0
    assert 0.0 < result["jain_index"] <= 1.0
    assert set(result["wait_p99_seconds"]) == {"low", "normal", "high", "urgent"}
    for label, p99 in result["wait_p99_seconds"].items():
        assert 0.0 <= result["wait_p50_seconds"][label] <= p99
    assert result["preemptions"] >= 0
    assert result["preemptions_per_hour"] >= 0
    assert result["decision_ms_p99"] > 0
    # Urgent jobs preempt: they wait a cycle plus a checkpoint, not for others to finish.
    assert result["wait_p99_seconds"]["urgent"] < result["wait_p99_seconds"]["low"]


def test_the_simulation_is_reproducible_from_its_seed() -> None:
    first = simulate("--gpus", "24", "--tenants", "3", "--jobs", "120", "--seed", "5")
    again = simulate("--gpus", "24", "--tenants", "3", "--jobs", "120", "--seed", "5")
    timing = {"wall_seconds", "machine"} | {k for k in first if k.startswith("decision_")}
    assert {k: v for k, v in first.items() if k not in timing} == {
        k: v for k, v in again.items() if k not in timing
    }
