"""Decayed usage: GPU-seconds over a window that halves every `half_life_s` (Slurm's decay).

A tenant's usage U decays as U * 2^(-dt / half_life); while it holds A GPUs it also accrues
A * dt, decayed over the interval, so a steady allocation of A GPUs settles at A * mean_life
(mean_life = half_life / ln 2). Exact for any step length, so the scheduler loop and the
simulation may update it at whatever cadence they run."""

from __future__ import annotations

import math


def decay_factor(elapsed_s: float, half_life_s: float) -> float:
    """The fraction of usage left after `elapsed_s` seconds."""
    if elapsed_s <= 0:
        return 1.0
    return math.pow(2.0, -elapsed_s / half_life_s)


def accrue(usage: float, gpus: float, elapsed_s: float, half_life_s: float) -> float:
    """Usage after `elapsed_s` seconds holding `gpus` GPUs, starting from `usage`."""
    factor = decay_factor(elapsed_s, half_life_s)
    mean_life = half_life_s / math.log(2)
    return usage * factor + gpus * mean_life * (1.0 - factor)
