"""Job request bodies from CLI flags and spec files, as plain dicts: the server validates them.

Field names follow `tass.contract.spec`'s TrainSpec and DatasetSpec (the train flags are
generated from it, see `train_options`); the bodies are validated by the server alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tass.client.errors import UsageError

Json = dict[str, Any]

# Sources whose `SOURCE:VALUE` form names a path (synthetic's names a number of examples).
SYNTHETIC = "synthetic"


class _SpecLoader(yaml.SafeLoader):
    """YAML with YAML 1.2 scalars: only true/false are booleans, so `jit_compile: off` stays the
    string "off", and `1e-3` is a float (PyYAML's 1.1 rules read it as a string)."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_SpecLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"""^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?
            |[-+]?[0-9]+[eE][-+]?[0-9]+
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def load_spec_file(path: Path) -> Json:
    """A JSON or YAML mapping from `path` (`.json` is read as JSON, anything else as YAML)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        if path.suffix.lower() == ".json":
            document = json.loads(text)
        else:
            document = yaml.load(text, Loader=_SpecLoader)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise UsageError(f"{path} is not valid {kind}: {exc}") from exc
    if not isinstance(document, dict):
        raise UsageError(f"{path} must hold a mapping of field names to values")
    return document


def split_spec_document(document: Mapping[str, Any], path: Path | str = "spec file") -> Json:
    """A spec file as a partial train body.

    The file is either a whole job body (`spec`, `dataset`, `name`, `tags` at the top) or just
    the training hyperparameters (TrainSpec fields at the top).
    """
    if "spec" in document or "dataset" in document:
        body = dict(document)
        job_type = body.get("type", "train")
        if job_type != "train":
            raise UsageError(f"{path} describes a {job_type!r} job; `submit train` needs 'train'")
        body["type"] = "train"
        return body
    return {"type": "train", "spec": dict(document)}


def parse_data(value: str) -> Json:
    """`--data SOURCE[:PATH]` as a DatasetSpec dict.

    `synthetic` or `synthetic:N` (N examples), `cifar10`, `cifar10-python:PATH`,
    `image-folder:PATH`, `dataset:ID` (an uploaded dataset, see `tass datasets`). Paths are
    the server's paths (or s3:// archives in the service's bucket) and are sent as given.
    """
    source, sep, rest = value.partition(":")
    source = source.strip()
    if not source:
        raise UsageError(f"--data {value!r}: expected SOURCE[:PATH], e.g. image-folder:/data/pets")
    if source == SYNTHETIC:
        if not sep:
            return {"source": source}
        try:
            return {"source": source, "num_examples": int(rest)}
        except ValueError:
            raise UsageError(f"--data {value!r}: synthetic:N takes a number of examples") from None
    if not sep:
        return {"source": source}
    if not rest:
        raise UsageError(f"--data {value!r}: the path after {source}: is empty")
    if source == "dataset":
        return {"source": source, "id": rest}
    return {"source": source, "path": rest}


def parse_tags(values: Iterable[str]) -> dict[str, str]:
    """`--tag key=value` flags as a dict (a later flag wins)."""
    tags: dict[str, str] = {}
    for value in values:
        key, sep, tag = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--tag {value!r}: expected KEY=VALUE")
        tags[key.strip()] = tag
    return tags


def parse_assignment(value: str) -> tuple[list[str], Any]:
    """`--set a.b=VALUE`: the dotted field path, and VALUE parsed as JSON when it is JSON
    (numbers, true/false, null, lists), else kept as a string (`--set schedule=cosine`)."""
    key, sep, raw = value.partition("=")
    parts = [part.strip() for part in key.split(".")]
    if not sep or not all(parts):
        raise UsageError(f"--set {value!r}: expected FIELD=VALUE, e.g. augmentation.translate=0.1")
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        parsed = raw
    return parts, parsed


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> Json:
    """`base` with `override` on top; nested mappings are merged, anything else replaced."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def nest_dotted(values: Mapping[str, Any]) -> Json:
    """Dotted field paths as nested mappings: {"augmentation.translate": 0.1} becomes
    {"augmentation": {"translate": 0.1}}."""
    nested: Json = {}
    for path, value in values.items():
        nested = deep_merge(nested, _nest(path.split("."), value))
    return nested


def drop_none(values: Mapping[str, Any]) -> Json:
    """Only the flags the user gave (None means "not given": the server's default applies)."""
    return {key: value for key, value in values.items() if value is not None}


def model_options(architecture: Path | None, freeze: str | None) -> Json:
    """The spec fields of `--architecture FILE` (the JSON that keras.Model.to_json() wrote;
    it makes the model keras-json) and `--freeze` (all-but-head, or layer names,
    comma-separated)."""
    fields: Json = {}
    if architecture is not None:
        try:
            fields["architecture"] = json.loads(architecture.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read {architecture}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise UsageError(f"--architecture {architecture} is not valid JSON: {exc}") from exc
        fields["model"] = "keras-json"
    if freeze is not None:
        names = [name.strip() for name in freeze.split(",") if name.strip()]
        fields["freeze"] = "all-but-head" if names == ["all-but-head"] else names
    return fields


def build_train_body(
    *,
    spec_file: Path | None = None,
    spec: Mapping[str, Any] | None = None,
    assignments: Iterable[str] = (),
    data: str | None = None,
    dataset: Mapping[str, Any] | None = None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Json:
    """The POST /v1/jobs body for a training job; flags override the spec file.

    `spec` holds TrainSpec fields from flags (None values already dropped), `assignments` are
    `--set FIELD=VALUE` strings applied last, `data` the `--data` value (it replaces the file's
    dataset) and `dataset` DatasetSpec fields from flags (`split`, `limit`, ...).
    """
    body: Json = {"type": "train", "spec": {}}
    if spec_file is not None:
        body = split_spec_document(load_spec_file(spec_file), spec_file)
    file_spec = body.get("spec") or {}
    if not isinstance(file_spec, Mapping):
        raise UsageError(f"{spec_file}: `spec` must be a mapping of TrainSpec fields")
    merged = deep_merge(file_spec, spec or {})
    for value in assignments:
        parts, parsed = parse_assignment(value)
        merged = deep_merge(merged, _nest(parts, parsed))
    body["spec"] = merged
    body["dataset"] = _dataset(body.get("dataset"), data, dataset)
    if name is not None:
        body["name"] = name
    body.setdefault("name", None)
    file_tags = body.get("tags") or {}
    if not isinstance(file_tags, Mapping):
        raise UsageError(f"{spec_file}: `tags` must be a mapping of strings")
    body["tags"] = {**file_tags, **(tags or {})}
    return body


def build_evaluate_body(
    model_id: str,
    *,
    data: str,
    dataset: Mapping[str, Any] | None = None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    test_time_flip: bool = False,
) -> Json:
    """The POST /v1/jobs body for evaluating a model on a dataset."""
    return {
        "type": "evaluate",
        "model_id": model_id,
        "dataset": _dataset(None, data, dataset),
        "name": name,
        "tags": dict(tags or {}),
        "test_time_flip": test_time_flip,
    }


def _dataset(from_file: Any, data: str | None, flags: Mapping[str, Any] | None) -> Json:
    if data is not None:
        base = parse_data(data)
    elif isinstance(from_file, Mapping):
        base = dict(from_file)
    elif from_file is None:
        raise UsageError("no dataset: pass --data SOURCE[:PATH] (or a `dataset` in --spec)")
    else:
        raise UsageError("the spec file's `dataset` must be a mapping")
    return {**base, **(flags or {})}


def _nest(parts: list[str], value: Any) -> Json:
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    return nested


def with_scheduling(
    body: Json, *, priority: str | None, gpus: int | None, pool: str | None
) -> Json:
    """`body` with the flags' `priority` and `resources` (gpus, pool) over what it has."""
    if priority is not None:
        body["priority"] = priority
    if gpus is not None or pool is not None:
        resources = dict(body.get("resources") or {})
        if gpus is not None:
            resources["gpus"] = gpus
        if pool is not None:
            resources["pool"] = pool
        body["resources"] = resources
    return body
