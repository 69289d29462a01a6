"""The hyperparameter and dataset specs: pure pydantic, shared by the trainer, the API and the CLI.

This module must never import TensorFlow or NumPy (an import-linter contract checks it): the API
validates submitted jobs with these models without loading the trainer.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)

from tass.contract.architecture import (
    ArchitectureError,
    architecture_input_shape,
    check_architecture,
    parse_architecture,
)

# the built-in families (two AlexNets, three Keras Applications built from scratch) and
# "keras-json": the user's own architecture, sent as data in `architecture`
APPLICATIONS = ("resnet50", "mobilenetv3-small", "efficientnetv2-b0")
MODEL_NAMES = ("alexnet-cifar", "alexnet-seed", *APPLICATIONS, "keras-json")

ModelName = Literal[
    "alexnet-cifar", "alexnet-seed", "resnet50", "mobilenetv3-small", "efficientnetv2-b0",
    "keras-json",
]  # fmt: skip
FREEZE_ALL_BUT_HEAD = "all-but-head"
DataSource = Literal["cifar10", "cifar10-python", "image-folder", "synthetic", "dataset"]
OptimizerName = Literal["adam", "adamw", "sgd"]
ScheduleName = Literal["constant", "cosine", "one-cycle"]
Toggle = Literal["auto", "on", "off"]

# C0 controls and DEL: no name, id or path has a use for them, and PostgreSQL stores NUL in
# neither text nor jsonb (a 500 there, while SQLite stored it)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"


def _no_control_characters(value: str) -> str:
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters (U+0000 to U+001F, U+007F)")
    return value


SingleLine = Annotated[
    str,
    AfterValidator(_no_control_characters),
    Field(json_schema_extra={"pattern": NO_CONTROL_CHARACTERS}),
]
"""A name, id or path: printable text, no control characters (the API's identifiers)."""


class _Strict(BaseModel):
    """Unknown fields are refused, and so are numbers given as strings or booleans and
    booleans given as anything else (pydantic's strict mode); a float field still takes an
    integer. Command lines convert their text flags to the field's type first."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Augmentation(_Strict):
    """On-the-fly training augmentation (never applied to validation or evaluation data)."""

    horizontal_flip: bool = Field(True, description="Mirror images left-right at random.")
    crop_padding: int = Field(
        2,
        ge=0,
        le=16,
        description="Pad by this many pixels (reflect) and crop back at random; 0 off.",
    )
    translate: float = Field(
        0.0,
        ge=0.0,
        le=0.5,
        description="Random translation as a fraction of the image size; 0 off.",
    )


class MlflowTarget(_Strict):
    """Where a job's MLflow run goes (the server is TASS_MLFLOW_TRACKING_URI)."""

    experiment: str = Field("tass", min_length=1, max_length=200, description="Experiment name.")


class Tracking(_Strict):
    """Experiment trackers a job reports to, besides tass itself (worker/mlflow_tracking.py)."""

    mlflow: MlflowTarget | None = None


class TrainSpec(_Strict):
    """Every hyperparameter of one training run; each field is bounded."""

    model: ModelName = Field(
        "alexnet-cifar",
        description="Architecture, looked up by name; keras-json: the one in `architecture`.",
    )
    architecture: dict[str, Any] | None = Field(
        None,
        description="model keras-json only: a Keras model config (what model.to_json() writes), "
        "as a JSON object or string. Built-in layers only (no Lambda, no custom objects), "
        "bounded in size, layers, parameters and FLOPs per image.",
    )
    image_size: StrictInt = Field(
        32,
        ge=16,
        le=512,
        description="Square input size in pixels: images are resized to it. keras-json: "
        "defaults to the architecture's own input size.",
    )
    channels: StrictInt = Field(
        3, ge=1, le=3, description="Colour channels: 3 (RGB) or 1 (grayscale)."
    )
    init_from: StrictStr | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Fine-tune: start from this model's weights (a model id, NAME@ALIAS or "
        "NAME:VERSION); the API records the model id it names at submit. A new head is "
        "trained when the class count differs.",
    )
    freeze: list[StrictStr] | Literal["all-but-head"] | None = Field(
        None,
        description="Layers kept frozen while fine-tuning: a list of layer names, or "
        "all-but-head (needs init_from).",
    )
    weights: Literal["imagenet"] | None = Field(
        None,
        description="Keras Applications only: start from ImageNet weights (the worker must "
        "be able to download them).",
    )
    width: float = Field(
        1.0, ge=0.125, le=4.0, description="Channel width multiplier (alexnet-cifar only)."
    )
    # 32: on a 2-core CPU the default spec reaches 85.6% validation accuracy with test-time
    # flips (84.2% without) in 17.6 minutes of training (docs/benchmarks.md, issue 16)
    epochs: int = Field(32, ge=1, le=500, description="Number of passes over the training data.")
    batch_size: int = Field(256, ge=1, le=8192, description="Images per training step.")
    optimizer: OptimizerName = Field("sgd", description="adam, adamw or sgd.")
    learning_rate: float = Field(
        0.2, gt=0.0, le=10.0, description="Peak learning rate (after warmup)."
    )
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum (sgd only).")
    nesterov: bool = Field(True, description="Nesterov momentum (sgd only).")
    schedule: ScheduleName = Field("one-cycle", description="Learning-rate schedule.")
    warmup_epochs: float = Field(
        0.0, ge=0.0, le=100.0, description="Linear warmup length in epochs (constant and cosine)."
    )
    weight_decay: float = Field(
        2.5e-3, ge=0.0, le=1.0, description="Decoupled weight decay applied by the optimizer."
    )
    l1: float = Field(0.0, ge=0.0, le=1.0, description="L1 kernel regularisation factor.")
    l2: float = Field(0.0, ge=0.0, le=1.0, description="L2 kernel regularisation factor.")
    dropout: float = Field(0.25, ge=0.0, lt=1.0, description="Dropout rate in the dense head.")
    batch_norm: bool = Field(True, description="BatchNormalization after each convolution.")
    augmentation: Augmentation = Field(default_factory=Augmentation)
    label_smoothing: float = Field(0.1, ge=0.0, le=0.5, description="Label smoothing factor.")
    validation_split: float = Field(
        0.1, ge=0.0, le=0.5, description="Stratified share of the training data held out."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed for shuffling, splits and init.")
    early_stopping_patience: int | None = Field(
        None, ge=1, le=500, description="Stop after this many epochs without val_loss improving."
    )
    mixed_precision: Toggle = Field(
        "auto", description="float16/bfloat16 compute: auto uses it on GPUs that support it."
    )
    jit_compile: Toggle = Field("auto", description="XLA compilation: auto picks what is fastest.")
    deterministic: bool = Field(
        False,
        description="Deterministic kernels: GPU runs (and resumes) repeat bitwise; turns XLA "
        "off. CPU runs repeat bitwise either way.",
    )
    max_runtime_seconds: int | None = Field(
        None,
        ge=10,
        le=30 * 24 * 3600,
        description="Service deadline: past it the job fails with reason timeout "
        "(unset: the server default). The trainer itself ignores it.",
    )

    tracking: Tracking | None = Field(
        None, description="Report to MLflow too: {mlflow: {experiment}}. The trainer ignores it."
    )

    @model_validator(mode="before")
    @classmethod
    def _architecture_input(cls, data: Any) -> Any:
        """A keras-json spec without image_size/channels takes the architecture's input size."""
        if not isinstance(data, dict) or data.get("architecture") is None:
            return data
        try:
            architecture = parse_architecture(data["architecture"])
        except ArchitectureError as exc:
            raise ValueError(f"architecture {exc}") from exc
        data = {**data, "architecture": architecture}
        declared = architecture_input_shape(architecture) or (None, None, None)
        if "image_size" not in data and declared[0] is not None and declared[0] == declared[1]:
            data["image_size"] = declared[0]
        if "channels" not in data and declared[2] is not None:
            data["channels"] = declared[2]
        return data

    @model_validator(mode="after")
    def _check_model_options(self) -> TrainSpec:
        if self.channels == 2:
            raise ValueError("channels must be 1 (grayscale) or 3 (RGB)")
        if self.model == "keras-json":
            if self.architecture is None:
                raise ValueError("architecture is required for model 'keras-json'")
            try:
                check_architecture(self.architecture, self.image_size, self.channels)
            except ArchitectureError as exc:
                raise ValueError(f"architecture {exc}") from exc
        elif self.architecture is not None:
            raise ValueError(f"architecture is for model 'keras-json', not {self.model!r}")
        if self.model in APPLICATIONS and self.image_size < 32:
            raise ValueError(f"model {self.model!r} needs image_size 32 or more")
        if self.weights is not None and self.model not in APPLICATIONS:
            raise ValueError(f"weights 'imagenet' is for {', '.join(APPLICATIONS)} only")
        if self.weights is not None and self.channels != 3:
            raise ValueError("weights 'imagenet' needs channels 3 (RGB)")
        if self.weights is not None and self.init_from is not None:
            raise ValueError("weights and init_from both name starting weights; choose one")
        if self.freeze is not None and self.init_from is None and self.weights is None:
            raise ValueError("freeze needs starting weights: init_from or weights")
        return self

    @model_validator(mode="after")
    def _check_consistency(self) -> TrainSpec:
        if self.warmup_epochs >= self.epochs and self.warmup_epochs > 0:
            raise ValueError("warmup_epochs must be smaller than epochs")
        if self.early_stopping_patience is not None and self.validation_split == 0:
            raise ValueError("early_stopping_patience needs validation_split > 0")
        return self


# Named starting points for a spec; explicit fields override them. `cpu` is the TrainSpec
# defaults, measured on 2 cores (docs/benchmarks.md). `gpu` is sized for one H100/H200-class GPU
# (AlexNet's channel widths, bfloat16 and XLA under `auto`, a batch that fills the card) and has
# not been measured yet: benchmarks/gpu.sh measures it on the first GPU machine available.
PROFILES: dict[str, dict[str, object]] = {
    "cpu": {},
    "gpu": {"width": 4.0, "batch_size": 512, "epochs": 30, "learning_rate": 0.4},
}


def profile_fields(profile: str | None, fields: dict[str, object]) -> dict[str, object]:
    """The fields of `profile` overlaid with `fields` (ValueError naming an unknown profile)."""
    if profile is None:
        return dict(fields)
    if profile not in PROFILES:
        raise ValueError(f"profile: unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    return {**PROFILES[profile], **fields}


@dataclass(frozen=True)
class SpecFlag:
    """A TrainSpec field that a command line sets with one flag (`--batch-size`, `--translate`).

    Both command lines (`python -m tass.trainer train` and `tass submit train`) generate their
    hyperparameter flags from `spec_flags()`, so a new field is a new flag in both.
    """

    path: str  # where the value goes in a spec: "epochs", "augmentation.translate"
    name: str  # the field's own name, which names the flag
    type: type  # bool, int, float or str (a Literal's values are strings)
    help: str  # the field's description and its default
    choices: tuple[str, ...] | None  # a Literal's values

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _flag_type(annotation: object) -> tuple[type, tuple[str, ...] | None]:
    """bool/int/float/str for a field's annotation (`X | None` as X), with a Literal's values."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is Annotated:  # StrictInt, StrictStr
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is Literal:
        return str, tuple(str(value) for value in get_args(annotation))
    if isinstance(annotation, type) and annotation in (bool, int, float, str):
        return annotation, None
    raise TypeError(f"no command-line flag for a field of type {annotation!r}")


# fields a flag cannot carry: a nested model, a JSON config (--architecture FILE reads one),
# a list of layer names (--freeze, comma-separated, sets it)
_NO_FLAG = ("augmentation", "architecture", "freeze", "tracking")  # set in spec files only


def spec_flags() -> list[SpecFlag]:
    """One flag per TrainSpec field, the nested Augmentation's fields by their own names."""
    flags = []
    for model, prefix in ((TrainSpec, ""), (Augmentation, "augmentation.")):
        for name, info in model.model_fields.items():
            if name in _NO_FLAG:
                continue
            flag_type, choices = _flag_type(info.annotation)
            default = info.get_default(call_default_factory=True)
            default = "unset" if default is None else default
            flags.append(
                SpecFlag(
                    path=prefix + name,
                    name=name,
                    type=flag_type,
                    help=f"{info.description} (default {default})",
                    choices=choices,
                )
            )
    return flags


class DatasetSpec(_Strict):
    """Where the images come from; labels follow the sorted class names."""

    source: DataSource = Field(
        description="cifar10, cifar10-python, image-folder, synthetic, or dataset (uploaded)."
    )
    path: SingleLine | None = Field(
        None,
        max_length=4096,
        description="Folder, .tar.gz or .zip (image-folder; or an s3:// archive in the "
        "service's bucket) or cifar-10-batches-py folder.",
    )
    id: SingleLine | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The uploaded dataset's id (source dataset; see POST /v1/datasets).",
    )
    sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="The uploaded dataset's digest (source dataset): recorded by the server at "
        "submit; one sent must match.",
    )
    split: Literal["train", "test"] = Field("train", description="Which split to read.")
    limit: int | None = Field(
        None, ge=1, le=10_000_000, description="Use only the first N examples (after shuffling)."
    )
    num_examples: int = Field(
        2000, ge=10, le=200_000, description="How many images the synthetic source generates."
    )
    num_classes: int = Field(10, ge=2, le=100, description="Classes of the synthetic source.")

    @model_validator(mode="after")
    def _check_path(self) -> DatasetSpec:
        needs_path = self.source in ("cifar10-python", "image-folder")
        if needs_path and not self.path:
            raise ValueError(f"path is required for source {self.source!r}")
        if not needs_path and self.path:
            raise ValueError(f"source {self.source!r} takes no path")
        if self.source == "dataset" and not self.id:
            raise ValueError("id is required for source 'dataset' (an uploaded dataset's id)")
        if self.source != "dataset" and (self.id or self.sha256):
            raise ValueError(f"source {self.source!r} takes no id or sha256")
        return self
