"""Checking a sweep's search space against TrainSpec: every parameter must name a field
(dotted for nested ones) and every value or range end it can produce must be a valid spec.
Each failure is a 422 naming the parameter."""

from __future__ import annotations

import math
import types
import typing
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, ValidationError

from tass.api.errors import invalid
from tass.api.sweep_schemas import RangeParameter, SweepCreate, ValuesParameter
from tass.contract.spec import TrainSpec
from tass.core.sweeps import get_dotted, with_params


def _param_error(name: str, message: str) -> HTTPException:
    return invalid(["body", "parameters", name], f"parameters.{name}: {message}")


def field_annotation(name: str) -> Any:
    """The annotation of the (dotted) TrainSpec field, or None when there is no such field."""
    model: type[BaseModel] = TrainSpec
    *parents, leaf = name.split(".")
    for part in parents:
        info = model.model_fields.get(part)
        nested = info.annotation if info is not None else None
        if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
            return None
        model = nested
    info = model.model_fields.get(leaf)
    if info is None:
        return None
    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
        return None  # a group of fields: sweep its members by their dotted names
    return info.annotation


def _numeric_kind(annotation: Any) -> type | None:
    """int or float for (optional) numeric fields; None for booleans, literals and the rest."""
    options = (
        typing.get_args(annotation)
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
        else (annotation,)
    )
    kinds = {option for option in options if option in (int, float)}
    return kinds.pop() if len(kinds) == 1 else None


def _check_value(base: dict[str, Any], name: str, value: Any) -> None:
    try:
        TrainSpec.model_validate(with_params(base, {name: value}))
    except ValidationError as exc:
        reason = "; ".join(error["msg"] for error in exc.errors())
        raise _param_error(name, f"value {value!r} is not allowed: {reason}") from exc


def _check_range(base: dict[str, Any], name: str, param: RangeParameter, kind: type) -> None:
    if not (math.isfinite(param.min) and math.isfinite(param.max)) or param.min >= param.max:
        raise _param_error(name, "min must be smaller than max")
    if param.distribution == "log_uniform" and param.min <= 0:
        raise _param_error(name, "log_uniform needs min > 0")
    if param.distribution == "int_uniform":
        if not (param.min.is_integer() and param.max.is_integer()):
            raise _param_error(name, "int_uniform needs whole-number min and max")
    elif kind is int:
        raise _param_error(name, "an integer field takes int_uniform or values")
    for end in (param.min, param.max):
        _check_value(base, name, int(end) if param.distribution == "int_uniform" else end)


def check_parameters(body: SweepCreate) -> None:
    """Raise a 422 naming the first parameter that TrainSpec would not accept."""
    base = body.spec.model_dump(mode="json")
    for name, param in body.parameters.items():
        annotation = field_annotation(name)
        if annotation is None:
            raise _param_error(name, "not a TrainSpec field (nested fields are dotted)")
        if isinstance(param, ValuesParameter):
            for value in param.values:
                _check_value(base, name, value)
            continue
        kind = _numeric_kind(annotation)
        if kind is None:
            raise _param_error(name, "not a numeric field: give its values instead")
        _check_range(base, name, param, kind)


def check_sweep(body: SweepCreate) -> None:
    """Every rule of a sweep request beyond its field types."""
    check_parameters(body)
    if body.method == "grid":
        axes: list[int] = []
        for name, param in body.parameters.items():
            if not isinstance(param, ValuesParameter):
                raise _param_error(name, "a grid sweep takes values lists only")
            axes.append(len(param.values))
        size = math.prod(axes)
        if size > body.max_trials:
            raise invalid(
                ["body", "max_trials"],
                f"max_trials: the grid over {', '.join(sorted(body.parameters))} has {size} "
                f"points, more than max_trials {body.max_trials}",
            )
    metric = body.objective.metric
    no_validation = body.spec.validation_split == 0 and "validation_split" not in body.parameters
    if metric.startswith("val_") and no_validation:
        raise invalid(
            ["body", "objective", "metric"],
            f"objective.metric: {metric} needs spec.validation_split > 0",
        )
    stopping = body.early_stopping
    fixed_epochs = "epochs" not in body.parameters
    if stopping is not None and fixed_epochs and stopping.min_epochs >= body.spec.epochs:
        raise invalid(
            ["body", "early_stopping", "min_epochs"],
            f"early_stopping.min_epochs must be smaller than spec.epochs ({body.spec.epochs})",
        )


def _as_the_spec_reads_it(base: dict[str, Any], name: str, value: Any) -> Any:
    """`value` as TrainSpec stores it (e.g. the integer 1 for a float field becomes 1.0), so
    trials, their jobs and the decisions all see one type."""
    spec = TrainSpec.model_validate(with_params(base, {name: value}))
    return get_dotted(spec.model_dump(mode="json"), name)


def config_parameters(body: SweepCreate) -> dict[str, dict[str, Any]]:
    base = body.spec.model_dump(mode="json")
    stored = {}
    for name, param in body.parameters.items():
        stored[name] = param.model_dump(mode="json")
        if isinstance(param, ValuesParameter):
            stored[name]["values"] = [_as_the_spec_reads_it(base, name, v) for v in param.values]
    return stored


def sweep_config(
    body: SweepCreate, dataset: dict[str, Any], scheduling: dict[str, Any]
) -> dict[str, Any]:
    """What the sweep row stores and the decisions read; `scheduling` is the trials' checked
    `priority` (the int) and `resources` (api.job_scheduling.checked_scheduling)."""
    return {
        **scheduling,
        "spec": body.spec.model_dump(mode="json"),
        "dataset": dataset,
        "method": body.method,
        "parameters": config_parameters(body),
        "objective": body.objective.model_dump(mode="json"),
        "max_trials": body.max_trials,
        "max_parallel": body.max_parallel,
        "early_stopping": body.early_stopping.model_dump(mode="json")
        if body.early_stopping
        else None,
    }
