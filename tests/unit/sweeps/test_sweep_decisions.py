"""Sweep decisions from fabricated trial records: ASHA stops the trials that fall behind at a
rung, a repeated decision decides nothing new, slots and quotas bound new trials, and a sweep
whose trials have all ended finishes with its best trial."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from tass.core.sweep_decisions import EpochValue, TrialRecord, decide, grid_points

T0 = datetime(2026, 11, 29, tzinfo=timezone.utc)


def config(**overrides: object) -> dict:
    base = {
        "method": "random",
        "parameters": {"learning_rate": {"values": [0.01, 0.1, 0.2, 0.4]}},
        "objective": {"metric": "val_accuracy", "goal": "maximize"},
        "max_trials": 4,
        "max_parallel": 4,
        "early_stopping": {"type": "asha", "min_epochs": 1, "reduction_factor": 2},
        "spec": {"epochs": 3},
        "dataset": {"source": "synthetic"},
    }
    return {**base, **overrides}


def trial(number: int, curve: list[float], start_s: int, status: str = "running") -> TrialRecord:
    """A trial that reported epoch i at start_s + 10*i seconds."""
    points = tuple(
        EpochValue(epoch, value, T0 + timedelta(seconds=start_s + 10 * epoch))
        for epoch, value in enumerate(curve, start=1)
    )
    return TrialRecord(
        number=number,
        job_id=f"job{number}",
        params={"learning_rate": [0.01, 0.1, 0.2, 0.4][number]},
        status=status,
        epochs=points,
    )


def test_asha_stops_the_trials_behind_at_the_first_rung_and_a_repeat_decides_nothing_new():
    # two good trials reach epoch 1 first, then two bad ones
    trials = [
        trial(0, [0.70], 0),
        trial(1, [0.80], 1),
        trial(2, [0.20], 2),
        trial(3, [0.10], 3),
    ]
    first = decide(config(), trials, free_quota=10, seed=1)
    assert sorted(first.stop) == ["job2", "job3"]
    assert first.start == [] and first.finish is None

    stopped = [
        replace(t, status="cancelling", stopped_early=True) if t.job_id in first.stop else t
        for t in trials
    ]
    again = decide(config(), stopped, free_quota=10, seed=1)
    assert again.stop == [] and again.start == [] and again.finish is None


def test_without_early_stopping_no_trial_is_stopped():
    trials = [trial(0, [0.7], 0), trial(1, [0.8], 1), trial(2, [0.2], 2), trial(3, [0.1], 3)]
    assert decide(config(early_stopping=None), trials, free_quota=10, seed=1).stop == []


def test_median_stops_a_trial_below_the_median_of_finished_ones():
    done = [
        replace(trial(0, [0.6, 0.7, 0.8], 0, "succeeded"), finished_at=T0 + timedelta(seconds=40)),
        replace(trial(1, [0.5, 0.6, 0.7], 1, "succeeded"), finished_at=T0 + timedelta(seconds=41)),
    ]
    late = [trial(2, [0.1], 100), trial(3, [0.9], 101)]
    median = {"type": "median", "min_epochs": 1}
    decision = decide(config(early_stopping=median), done + late, free_quota=10, seed=1)
    assert decision.stop == ["job2"]


def test_new_trials_fill_free_slots_within_the_quota_with_sampled_values_in_range():
    cfg = config(
        method="tpe",
        max_trials=10,
        max_parallel=3,
        parameters={"learning_rate": {"distribution": "log_uniform", "min": 1e-3, "max": 1.0}},
    )
    trials = [replace(trial(0, [0.5], 0), params={"learning_rate": 0.1})]
    decision = decide(cfg, trials, free_quota=10, seed=7)
    assert [number for number, _ in decision.start] == [1, 2]
    assert all(1e-3 <= params["learning_rate"] <= 1.0 for _, params in decision.start)
    assert len(decide(cfg, trials, free_quota=1, seed=7).start) == 1
    assert decide(cfg, trials, free_quota=0, seed=7).start == []


def test_grid_trials_take_the_grid_points_in_order():
    cfg = config(
        method="grid",
        max_trials=4,
        max_parallel=2,
        parameters={"dropout": {"values": [0.1, 0.5]}, "width": {"values": [0.25, 0.5]}},
    )
    first = decide(cfg, [], free_quota=10, seed=1)
    points = grid_points(cfg["parameters"])
    assert first.start == [(0, points[0]), (1, points[1])]
    assert len({tuple(sorted(p.items())) for p in points}) == 4


def test_a_sweep_whose_trials_all_ended_finishes_with_the_best_finished_trial():
    ended = T0 + timedelta(seconds=60)
    trials = [
        replace(trial(0, [0.5, 0.6, 0.7], 0, "succeeded"), finished_at=ended, model_id="m0"),
        replace(trial(1, [0.6, 0.8, 0.9], 1, "succeeded"), finished_at=ended, model_id="m1"),
        replace(trial(2, [0.2], 2, "cancelled"), stopped_early=True, finished_at=ended),
        replace(trial(3, [], 3, "failed"), finished_at=ended),
    ]
    decision = decide(config(), trials, free_quota=10, seed=1)
    assert decision.finish == "succeeded"
    assert decision.best is not None
    assert decision.best["job_id"] == "job1" and decision.best["model_id"] == "m1"
    assert decision.best["value"] == 0.9


def test_a_sweep_with_no_finished_trial_fails():
    ended = T0 + timedelta(seconds=60)
    trials = [replace(trial(n, [], n, "failed"), finished_at=ended) for n in range(4)]
    decision = decide(config(), trials, free_quota=10, seed=1)
    assert decision.finish == "failed" and decision.best is None
