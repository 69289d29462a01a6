"""Errors the trainer raises for bad input; each message names the problem and the path."""

from __future__ import annotations

from tass.contract.artifacts import ArtifactError


class TrainerError(Exception):
    """Base class of the trainer's user-facing errors."""


class DataError(TrainerError, ValueError):
    """A dataset is missing, unreadable, corrupt or in an unexpected layout."""


class CheckpointError(TrainerError, ValueError):
    """A checkpoint directory is missing, incomplete or does not fit the run."""


class ModelFileError(TrainerError, ArtifactError):
    """A saved model file is missing or cannot be loaded (an ArtifactError, like a stored file
    that fails its sha256 check)."""


class EvaluationStopped(TrainerError):
    """The caller's hook asked an evaluation to stop (cancel, deadline, lost lease)."""


class ModelSpecError(TrainerError, ValueError):
    """The model a spec describes cannot be built: a refused architecture, a head that does
    not fit the classes, starting weights that do not fit the network."""
