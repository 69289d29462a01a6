"""What a sweep does next, decided by Optuna from the trials' own records.

Nothing here is stored: on every decision an in-memory Optuna study is rebuilt from the trial
jobs (their parameters, their per-epoch objective values with the time each was written, how
they ended), the epoch reports are replayed in the order they happened through the sweep's
pruner, and the sampler proposes the next trials. The jobs tables stay the one source of
truth, so a decision survives any restart and repeating it decides nothing new.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from tass.contract.statuses import JobStatus, SweepStatus

# a trial is a job; `preempted` never outlasts its transaction (it is requeued in the same one)
ACTIVE_TRIAL_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING})


@dataclass(frozen=True)
class EpochValue:
    epoch: int
    value: float
    at: datetime


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the jobs tables know it."""

    number: int
    job_id: str
    params: dict[str, Any]
    status: str
    stopped_early: bool = False
    epochs: tuple[EpochValue, ...] = ()
    finished_at: datetime | None = None
    model_id: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_TRIAL_STATUSES

    @property
    def final_value(self) -> float | None:
        """The objective at the trial's last epoch: what its published model scores."""
        return self.epochs[-1].value if self.epochs else None


@dataclass
class Decision:
    start: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)
    finish: str | None = None  # the sweep's final status, once every trial has ended
    best: dict[str, Any] | None = None


def best_value(values: list[float], goal: str) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return None
    return max(finite) if goal == "maximize" else min(finite)


def grid_points(parameters: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every combination of the `values` lists, in a fixed order (first parameter slowest)."""
    names = sorted(parameters)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(parameters[name]["values"] for name in names))
    ]


def total_trials(config: dict[str, Any]) -> int:
    if config["method"] == "grid":
        return min(config["max_trials"], len(grid_points(config["parameters"])))
    return int(config["max_trials"])


def distributions(parameters: dict[str, dict[str, Any]]) -> dict[str, BaseDistribution]:
    result: dict[str, BaseDistribution] = {}
    for name, param in parameters.items():
        if "values" in param:
            result[name] = CategoricalDistribution(param["values"])
        elif param["distribution"] == "int_uniform":
            result[name] = IntDistribution(int(param["min"]), int(param["max"]))
        else:
            log = param["distribution"] == "log_uniform"
            result[name] = FloatDistribution(float(param["min"]), float(param["max"]), log=log)
    return result


def _pruner(early_stopping: dict[str, Any] | None) -> optuna.pruners.BasePruner:
    if not early_stopping:
        return optuna.pruners.NopPruner()
    min_epochs = int(early_stopping.get("min_epochs", 1))
    if early_stopping["type"] == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=int(early_stopping.get("startup_trials", 1)),
            n_warmup_steps=min_epochs,
        )
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=min_epochs,
        reduction_factor=int(early_stopping.get("reduction_factor", 3)),
        min_early_stopping_rate=0,
    )


def _sampler(config: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    if config["method"] == "tpe":
        startup = max(2, min(10, config["max_trials"] // 3))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    return optuna.samplers.RandomSampler(seed=seed)


def rebuild_study(
    config: dict[str, Any], trials: list[TrialRecord], seed: int
) -> tuple[optuna.Study, set[int]]:
    """The study as it stands, with the numbers of the trials its pruner stops."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=config["objective"]["goal"],
        sampler=_sampler(config, seed),
        pruner=_pruner(config.get("early_stopping")),
    )
    space = distributions(config["parameters"])
    by_number = {t.number: t for t in trials}
    live = {}
    for number in sorted(by_number):
        study.enqueue_trial(by_number[number].params)
        live[number] = study.ask(space)
    pruned: set[int] = set()
    ended: set[int] = set()
    for _, kind, number, epoch, value in _timeline(trials):
        if number in ended:
            continue
        trial = live[number]
        if kind == "report":
            trial.report(value, epoch)
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                pruned.add(number)
                ended.add(number)
            continue
        record = by_number[number]
        value_now = record.final_value
        if record.stopped_early:
            study.tell(trial, state=TrialState.PRUNED)
        elif record.status == JobStatus.SUCCEEDED and value_now is not None:
            study.tell(trial, value_now)
        else:
            study.tell(trial, state=TrialState.FAIL)
        ended.add(number)
    return study, pruned


def _timeline(trials: list[TrialRecord]) -> list[tuple[datetime, str, int, int, float]]:
    """Every epoch report and every ending, in the order they happened."""
    events = []
    for trial in trials:
        for point in trial.epochs:
            events.append((point.at, "report", trial.number, point.epoch, point.value))
        if not trial.active and trial.finished_at is not None:
            last = trial.epochs[-1].epoch + 1 if trial.epochs else 0
            events.append((trial.finished_at, "end", trial.number, last, math.nan))
    return sorted(events, key=lambda e: (e[0], e[2], e[3], e[1]))


def decide(
    config: dict[str, Any], trials: list[TrialRecord], *, free_quota: int, seed: int
) -> Decision:
    """Which trials to stop, which to start (as slots and the tenant's quota allow), and
    whether the sweep is over. Depends only on its arguments."""
    study, pruned = rebuild_study(config, trials, seed)
    decision = Decision()
    decision.stop = [
        t.job_id for t in trials if t.number in pruned and t.active and not t.stopped_early
    ]
    active = sum(1 for t in trials if t.active)
    remaining = total_trials(config) - len(trials)
    slots = min(remaining, config["max_parallel"] - active, free_quota)
    next_number = max((t.number for t in trials), default=-1) + 1
    grid = grid_points(config["parameters"]) if config["method"] == "grid" else None
    space = distributions(config["parameters"])
    for number in range(next_number, next_number + max(slots, 0)):
        params = grid[number] if grid is not None else study.ask(space).params
        decision.start.append((number, params))
    if remaining <= 0 and active == 0:
        decision.best = best_trial(config, trials)
        decision.finish = (
            SweepStatus.SUCCEEDED.value if decision.best is not None else SweepStatus.FAILED.value
        )
    return decision


def best_trial(config: dict[str, Any], trials: list[TrialRecord]) -> dict[str, Any] | None:
    """The finished trial (one with a model) whose final objective is best."""
    goal = config["objective"]["goal"]
    finished = [
        t
        for t in trials
        if t.status == JobStatus.SUCCEEDED and t.final_value is not None and t.model_id
    ]
    finished = [t for t in finished if not math.isnan(t.final_value or math.nan)]
    if not finished:
        return None
    sign = 1.0 if goal == "maximize" else -1.0
    winner = max(finished, key=lambda t: (sign * (t.final_value or 0.0), -t.number))
    return {
        "job_id": winner.job_id,
        "model_id": winner.model_id,
        "params": winner.params,
        "value": winner.final_value,
        "number": winner.number,
    }
