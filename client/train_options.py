"""`tass submit train`'s hyperparameter flags, generated from TrainSpec.

The flags come from `tass.contract.spec.spec_flags()`, the list the trainer's own command line
(`python -m tass.trainer train`) generates its flags from: a new TrainSpec field is a new flag in
both. `tass.contract.spec` is pure pydantic; importing it never loads TensorFlow.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from tass.client.specs import drop_none, nest_dotted
from tass.contract.spec import SpecFlag, spec_flags

R = TypeVar("R")

MODEL_PANEL = "Model"
OPTIMISATION_PANEL = "Optimisation"
REGULARISATION_PANEL = "Regularisation and augmentation"
DATA_PANEL = "Data"
JOB_PANEL = "Job"

# The help panel of each field (augmentation fields go with regularisation); the rest are
# optimisation.
_PANELS = {
    "model": MODEL_PANEL,
    "width": MODEL_PANEL,
    "batch_norm": MODEL_PANEL,
    "weight_decay": REGULARISATION_PANEL,
    "l1": REGULARISATION_PANEL,
    "l2": REGULARISATION_PANEL,
    "dropout": REGULARISATION_PANEL,
    "label_smoothing": REGULARISATION_PANEL,
    "max_runtime_seconds": JOB_PANEL,
}
# Short spellings kept for flags people type often.
_ALIASES = {"learning_rate": ("--lr",)}


def _panel(flag: SpecFlag) -> str:
    if flag.path.startswith("augmentation."):
        return REGULARISATION_PANEL
    return _PANELS.get(flag.name, OPTIMISATION_PANEL)


def _parameter(flag: SpecFlag) -> inspect.Parameter:
    """The typer option of one flag; None (not given) leaves the field to the spec file or the
    server's default."""
    if flag.type is bool:
        declarations = [f"{flag.flag}/--no-{flag.flag.removeprefix('--')}"]
    else:
        declarations = [flag.flag, *_ALIASES.get(flag.name, ())]
    option = typer.Option(
        *declarations,
        help=flag.help,
        metavar="[" + "|".join(flag.choices) + "]" if flag.choices else None,
        show_default=False,
        rich_help_panel=_panel(flag),
    )
    return inspect.Parameter(
        "spec_" + flag.path.replace(".", "_"),
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[flag.type | None, option],
    )


def train_spec_options(command: Callable[..., R]) -> Callable[..., R]:
    """Give a typer command one option per TrainSpec flag in place of its `spec` parameter;
    the command receives the flags given as `spec`, a partial (nested) TrainSpec dict."""
    flags = spec_flags()
    generated = [_parameter(flag) for flag in flags]
    parameters = {param.name: flag for param, flag in zip(generated, flags, strict=True)}
    signature = inspect.signature(command, eval_str=True)
    kept = [param for param in signature.parameters.values() if param.name != "spec"]

    @functools.wraps(command)
    def with_spec(*args: Any, **kwargs: Any) -> R:
        given = {parameters[name].path: kwargs.pop(name) for name in parameters}
        spec = nest_dotted(drop_none(given))
        return command(*args, spec=spec, **kwargs)

    # typer reads the options from inspect.signature, which returns __signature__ as it is
    new_signature = signature.replace(parameters=[*kept, *generated])
    with_spec.__signature__ = new_signature  # type: ignore[attr-defined]  # undeclared in typeshed
    with_spec.__annotations__ = {
        **{param.name: param.annotation for param in [*kept, *generated]},
        "return": signature.return_annotation,
    }
    return with_spec
