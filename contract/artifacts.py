"""Where a job's files live, and the one way to fetch one: object-store keys, the file names
inside checkpoints and exported models, the artifact kinds the database records, and
"download and verify sha256" with one error type (ArtifactError).

Standard library only, so the trainer (checkpoint folders), the worker (uploads, resumes,
evaluations), the serving process (model loads), core (keys, retention) and the light client
(downloads) all share it without importing TensorFlow or any service package.

Layout of the object store (every object is written once, below its attempt's own prefix, so
a stale attempt can never touch bytes that a later one recorded):

    jobs/{job}/attempt-{n}/checkpoints/epoch-{NNNN}/model.keras, state.json
    jobs/{job}/attempt-{n}/checkpoints/step-{NNNNNNNN}/model.keras, state.json  (preempted)
    models/{job}/attempt-{n}/model.keras, savedmodel.zip
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

MODEL_FILE = "model.keras"  # a Keras model: every checkpoint's and every trained model's
STATE_FILE = "state.json"  # a checkpoint's training state (epoch, history, RNG state)
SAVEDMODEL_DIR = "savedmodel"  # the TensorFlow SavedModel export, a folder ...
SAVEDMODEL_ZIP = "savedmodel.zip"  # ... stored zipped
CHECKPOINTS_DIR = "checkpoints"  # a training run's epoch-NNNN folders
EPOCH_DIR = re.compile(r"^epoch-(\d{4,})$")
# a checkpoint written mid-epoch when the worker was told to stop: named by its global step
STEP_DIR = re.compile(r"^step-(\d{8,})$")

JOBS_PREFIX, MODELS_PREFIX = "jobs", "models"
# any object written by one attempt of one job: the unit that retention reasons about
ATTEMPT_KEY = re.compile(
    rf"^(?:{JOBS_PREFIX}|{MODELS_PREFIX})/(?P<job>[0-9a-f]{{32}})/attempt-(?P<attempt>\d+)/"
)


# the formats a trained model is downloadable in (the `format` of a download, the CLI's
# `--format`): its artifact kind, its file in the store, the file name a download is offered
# under, and its media type (both are zip archives)
class ModelFormat(str, Enum):
    KERAS = "keras"
    SAVEDMODEL = "savedmodel"


MODEL_FORMATS = tuple(fmt.value for fmt in ModelFormat)
# keyed by format: a member or its value ("keras") finds the same entry
MODEL_FORMAT_FILES: dict[str, str] = {
    ModelFormat.KERAS: MODEL_FILE,
    ModelFormat.SAVEDMODEL: SAVEDMODEL_ZIP,
}
MODEL_MEDIA_TYPES: dict[str, str] = {
    ModelFormat.KERAS: "application/zip",
    ModelFormat.SAVEDMODEL: "application/zip",
}
_DOWNLOAD_NAMES: dict[str, str] = {
    ModelFormat.KERAS: "{id}.keras",
    ModelFormat.SAVEDMODEL: "{id}-savedmodel.zip",
}
_MODEL_KIND_PREFIX = "model-"
# the artifact kind of a checkpoint's files, by suffix; every one starts with the prefix
CHECKPOINT_KIND_PREFIX = "checkpoint"
CHECKPOINT_MODEL_KIND = CHECKPOINT_KIND_PREFIX
_CHECKPOINT_KINDS = {".keras": CHECKPOINT_MODEL_KIND, ".json": "checkpoint-state"}

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PART_SUFFIX = ".part"


class ArtifactError(ValueError):
    """A stored file is missing, incomplete, altered (sha256 mismatch) or cannot be loaded."""


def epoch_dir_name(epoch: int) -> str:
    """The folder of epoch `epoch`'s checkpoint, locally and in the store: `epoch-0003`."""
    return f"epoch-{epoch:04d}"


def step_dir_name(global_step: int) -> str:
    """The folder of a mid-epoch checkpoint taken after `global_step` steps: `step-00000123`."""
    return f"step-{global_step:08d}"


def checkpoint_key(
    job_id: str, attempt: int, epoch: int, name: str, *, global_step: int | None = None
) -> str:
    """The key of file `name` of one attempt's checkpoint after epoch `epoch` (or, with
    `global_step`, of its mid-epoch checkpoint after that many steps)."""
    folder = epoch_dir_name(epoch) if global_step is None else step_dir_name(global_step)
    return f"{JOBS_PREFIX}/{job_id}/attempt-{attempt}/{CHECKPOINTS_DIR}/{folder}/{name}"


def checkpoint_global_step(key: str) -> int | None:
    """The global step of a mid-epoch checkpoint's file key; None for an epoch checkpoint."""
    parts = key.rsplit("/", 2)
    match = STEP_DIR.match(parts[-2]) if len(parts) == 3 else None
    return int(match.group(1)) if match else None


def model_key(job_id: str, attempt: int, name: str) -> str:
    """The key of a trained model's file: write-once and per attempt, like checkpoints; only
    the attempt that wins the final transaction is recorded, the others' uploads are orphans
    for the collector."""
    return f"{MODELS_PREFIX}/{job_id}/attempt-{attempt}/{name}"


def key_folder(key: str) -> str:
    """The folder part of a key, with its trailing `/` (`jobs/j/attempt-1/.../epoch-0003/`)."""
    return key.rsplit("/", 1)[0] + "/"


def key_file_name(key: str) -> str:
    """The file name a key ends with (`model.keras`)."""
    return key.rsplit("/", 1)[-1]


def checkpoint_kind(file_name: str) -> str:
    """The artifact kind recorded for one file of a checkpoint."""
    return _CHECKPOINT_KINDS.get(Path(file_name).suffix, "checkpoint-file")


def model_kind(fmt: str) -> str:
    """The artifact kind of a trained model's file in format `fmt` (`model-keras`)."""
    return f"{_MODEL_KIND_PREFIX}{ModelFormat(fmt).value}"


def model_format(kind: str) -> str | None:
    """The download format an artifact kind is (`keras`), or None for a non-model file."""
    return kind.removeprefix(_MODEL_KIND_PREFIX) if kind.startswith(_MODEL_KIND_PREFIX) else None


def download_name(model_id: str, fmt: str) -> str:
    """The file name a model download is offered under (`{id}.keras`, `{id}-savedmodel.zip`)."""
    return _DOWNLOAD_NAMES[fmt].format(id=model_id)


def as_sha256(value: object) -> str | None:
    """`value` as a lower-case sha256 hex digest, or None when it is not one."""
    text = str(value or "").strip().lower()
    return text if _SHA256.match(text) else None


@dataclass(frozen=True)
class Verified:
    path: Path
    size: int
    sha256: str
    checked: bool
    """False only when no sha256 was expected (nothing to check the bytes against)."""


def save_verified(
    chunks: Iterable[bytes],
    dest: Path,
    sha256: str | None,
    *,
    size: int | None = None,
    what: str | None = None,
) -> Verified:
    """Write `chunks` to `dest` only if they are the expected bytes: streamed into a `.part`
    file beside it, hashed on the way, checked against `size` and `sha256` (None: not
    checked), then moved into place in one step. When the bytes do not match, ArtifactError
    names `what` (default: `dest`) and nothing is left behind: neither `dest` nor the part
    file. An error while reading `chunks` also removes the part file, and propagates."""
    what = what or str(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + _PART_SUFFIX)
    digest = hashlib.sha256()
    written = 0
    try:
        with part.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                written += len(chunk)
        actual = digest.hexdigest()
        if size is not None and written != size:
            raise ArtifactError(f"{what}: ended after {written} of {size} bytes; not kept")
        if sha256 is not None and actual != sha256.lower():
            raise ArtifactError(
                f"{what}: sha256 mismatch (expected {sha256}, got {actual}); "
                "the corrupted file was deleted"
            )
        os.replace(part, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)
        raise
    return Verified(dest, written, actual, checked=sha256 is not None)
