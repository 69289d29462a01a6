"""Command line: `python -m tass.trainer train ...` and `python -m tass.trainer evaluate ...`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tass.contract.artifacts import MODEL_FILE
from tass.contract.spec import (
    PROFILES,
    DatasetSpec,
    SpecFlag,
    TrainSpec,
    profile_fields,
    spec_flags,
)

EXIT_USAGE = 2
EXIT_FAILED = 1


class UsageError(Exception):
    """Bad command-line input: printed without a traceback, exit code 2."""


def _add_spec_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainSpec (and Augmentation) field; values are validated by the spec."""
    group = parser.add_argument_group("hyperparameters (TrainSpec fields; default: the spec's)")
    for flag in spec_flags():
        if flag.type is bool:
            group.add_argument(
                flag.flag,
                dest=f"spec:{flag.path}",
                action=argparse.BooleanOptionalAction,
                default=None,
                help=flag.help,
            )
        else:
            metavar = "{" + ",".join(flag.choices) + "}" if flag.choices else None
            group.add_argument(
                flag.flag, dest=f"spec:{flag.path}", default=None, metavar=metavar, help=flag.help
            )


def parse_data(text: str, split: str, limit: int | None) -> DatasetSpec:
    """`cifar10`, `synthetic[:N]`, `cifar10-python:PATH` or `image-folder:PATH`."""
    source, _, rest = text.partition(":")
    fields: dict[str, Any] = {"source": source, "split": split, "limit": limit}
    if source == "synthetic" and rest:
        try:
            fields["num_examples"] = int(rest)
        except ValueError:
            raise UsageError(f"--data {text!r}: synthetic:N takes a number of examples") from None
    elif rest:
        fields["path"] = rest
    return DatasetSpec.model_validate(fields)


def _flag_value(flag: SpecFlag, value: object) -> object:
    """A flag's text as its field's type: the spec is strict (it takes 0.1, not "0.1")."""
    if not isinstance(value, str) or flag.type in (str, bool):
        return value
    try:
        return flag.type(value)
    except ValueError:
        kind = "an integer" if flag.type is int else "a number"
        raise UsageError(f"{flag.path}: {flag.flag} takes {kind}, not {value!r}") from None


def build_spec(args: argparse.Namespace) -> TrainSpec:
    """--spec file (JSON) overlaid with the explicit flags."""
    values: dict[str, Any] = {}
    if args.spec:
        try:
            values = json.loads(Path(args.spec).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"--spec {args.spec}: cannot read JSON ({exc})") from exc
        if not isinstance(values, dict):
            raise UsageError(f"--spec {args.spec}: expected a JSON object of TrainSpec fields")
    augmentation = dict(values.get("augmentation") or {})
    flags = {flag.path: flag for flag in spec_flags()}
    for key, value in vars(args).items():
        if not key.startswith("spec:") or value is None:
            continue
        name = key.removeprefix("spec:")
        value = _flag_value(flags[name], value)
        if name.startswith("augmentation."):
            augmentation[name.removeprefix("augmentation.")] = value
        else:
            values[name] = value
    if augmentation:
        values["augmentation"] = augmentation
    if args.architecture:
        values.setdefault("model", "keras-json")
        try:
            values["architecture"] = json.loads(Path(args.architecture).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"--architecture {args.architecture}: cannot read JSON ({exc})"
            ) from exc
    if args.freeze:
        names = [name.strip() for name in args.freeze.split(",") if name.strip()]
        values["freeze"] = "all-but-head" if names == ["all-but-head"] else names
    return TrainSpec.model_validate(profile_fields(args.profile, values))


def _format_validation(exc: ValidationError, what: str) -> str:
    lines = [f"error: invalid {what}:"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(spec)"
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {field}: {message} (got {err.get('input')!r})")
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace) -> int:
    spec = build_spec(args)
    data_spec = parse_data(args.data, "train", args.limit)
    from tass.trainer.data import load_dataset
    from tass.trainer.hardware import environment
    from tass.trainer.saving import export_model
    from tass.trainer.train import train

    cache = Path(args.decoded_cache) if args.decoded_cache else None
    data = load_dataset(data_spec, seed=spec.seed, image_size=spec.image_size, decoded_cache=cache)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = train(
        spec,
        data,
        checkpoint_dir=out / "checkpoints",
        resume_from=args.resume,
        init_from=spec.init_from,  # here: a .keras file (the service records a model id)
        log=lambda line: print(line, flush=True),
    )
    model_path = export_model(result.model, out / MODEL_FILE, result.class_names)
    (out / "history.json").write_text(json.dumps(result.history, indent=2))
    summary = {
        "spec": spec.model_dump(mode="json"),
        "data": data_spec.model_dump(mode="json"),
        "class_names": result.class_names,
        "epochs_completed": result.epochs_completed,
        "stopped": result.stopped,
        "final_metrics": result.final_metrics,
        "training_flops_per_image": result.training_flops_per_image,
        "environment": environment(result.hardware),
    }
    (out / "run.json").write_text(json.dumps(summary, indent=2))
    print(f"saved {model_path} and {out / 'history.json'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    data_spec = parse_data(args.data, args.split, args.limit)
    from tass.trainer.data import load_dataset
    from tass.trainer.evaluate import evaluate
    from tass.trainer.saving import load_model, read_class_names

    model = load_model(args.model_file, compile=False)
    data = load_dataset(data_spec)
    classes = read_class_names(args.model_file)
    result = evaluate(model, data, batch_size=args.batch_size, class_names=classes, flip=args.flip)
    print(json.dumps(result.to_dict()) if args.json else result.format())
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tass.trainer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data_help = (
        "cifar10, synthetic[:N], cifar10-python:PATH or image-folder:PATH (folder or .tar.gz)"
    )

    train_p = sub.add_parser("train", help="train a model and save it with its history")
    train_p.add_argument("--data", required=True, help=data_help)
    train_p.add_argument(
        "--limit", type=int, default=None, help="use the first N images (shuffled)"
    )
    train_p.add_argument("--out", required=True, help="output folder")
    train_p.add_argument(
        "--decoded-cache",
        default=None,
        help="folder that keeps an archive's decoded pixels: the next run on it skips decoding",
    )
    train_p.add_argument("--resume", default=None, help="checkpoint epoch folder (or checkpoints/)")
    train_p.add_argument("--spec", default=None, help="JSON file of TrainSpec fields")
    train_p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help="start from a named spec (gpu: wide, large batch, unmeasured); flags override it",
    )
    train_p.add_argument(
        "--architecture",
        default=None,
        help="your own network: a JSON file written by keras.Model.to_json() (built-in layers "
        "only); sets --model keras-json",
    )
    train_p.add_argument(
        "--freeze",
        default=None,
        help="fine-tuning: layers kept frozen, comma-separated, or all-but-head",
    )
    _add_spec_flags(train_p)
    train_p.set_defaults(run=cmd_train)

    eval_p = sub.add_parser("evaluate", help="evaluate a saved model")
    eval_p.add_argument("--model-file", required=True, help="a .keras file")
    eval_p.add_argument("--data", required=True, help=data_help)
    eval_p.add_argument("--split", choices=["train", "test"], default="test")
    eval_p.add_argument("--limit", type=int, default=None)
    eval_p.add_argument("--batch-size", type=int, default=256)
    eval_p.add_argument(
        "--flip",
        action="store_true",
        help="test-time flip augmentation: average each image's outputs with its mirror's",
    )
    eval_p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    eval_p.set_defaults(run=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = make_parser().parse_args(argv)
    from tass.trainer.errors import TrainerError

    try:
        return args.run(args)
    except ValidationError as exc:
        what = "dataset" if exc.title == "DatasetSpec" else "spec"
        print(_format_validation(exc, what), file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TrainerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
