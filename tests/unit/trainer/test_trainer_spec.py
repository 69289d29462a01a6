"""Invalid hyperparameters fail with an error that names the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tass.contract.spec import PROFILES, DatasetSpec, TrainSpec, profile_fields


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("epochs", 501),
        ("dropout", 1.0),
        ("width", 8.0),
        ("model", "resnet"),
        ("optimizer", "lamb"),
        ("validation_split", 0.9),
    ],
)
def test_out_of_range_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        TrainSpec.model_validate({field: value})
    assert [e["loc"][0] for e in info.value.errors()] == [field]


def test_unknown_fields_and_inconsistent_values_are_rejected() -> None:
    with pytest.raises(ValidationError, match="batchsize"):
        TrainSpec.model_validate({"batchsize": 32})
    with pytest.raises(ValidationError, match="warmup_epochs"):
        TrainSpec(epochs=2, warmup_epochs=2)
    with pytest.raises(ValidationError, match="crop_padding"):
        TrainSpec.model_validate({"augmentation": {"crop_padding": 99}})
    with pytest.raises(ValidationError, match="path is required"):
        DatasetSpec(source="image-folder")


def test_profiles_are_starting_points_that_explicit_fields_override() -> None:
    gpu = TrainSpec.model_validate(profile_fields("gpu", {"epochs": 3}))
    assert gpu.epochs == 3  # the explicit field wins
    assert gpu.width == PROFILES["gpu"]["width"] and gpu.batch_size == PROFILES["gpu"]["batch_size"]
    assert TrainSpec.model_validate(profile_fields("cpu", {})) == TrainSpec()
    assert profile_fields(None, {"seed": 4}) == {"seed": 4}
    with pytest.raises(ValueError, match="profile: unknown profile 'tpu'"):
        profile_fields("tpu", {})


def test_image_size_channels_and_starting_weights_are_strict_and_consistent() -> None:
    from pydantic import ValidationError

    from tass.contract.spec import TrainSpec

    assert (TrainSpec().image_size, TrainSpec().channels) == (32, 3)  # nothing changes
    assert TrainSpec(image_size=224, channels=1).image_size == 224
    for bad, field in [
        ({"image_size": "64"}, "image_size"),  # strict: no strings ...
        ({"image_size": 64.0}, "image_size"),  # ... nor floats
        ({"image_size": 8}, "image_size"),
        ({"image_size": 1024}, "image_size"),
        ({"channels": 2}, r"channels must be 1 \(grayscale\) or 3"),
        ({"model": "resnet50", "image_size": 16}, "needs image_size 32 or more"),
        ({"model": "resnet50", "weights": "imagenet", "channels": 1}, "needs channels 3"),
        ({"weights": "imagenet"}, "weights 'imagenet' is for"),
        ({"freeze": "all-but-head"}, "freeze needs starting weights"),
        ({"init_from": ""}, "init_from"),
        ({"init_from": "m", "weights": "imagenet", "model": "resnet50"}, "choose one"),
    ]:
        with pytest.raises(ValidationError, match=field):
            TrainSpec.model_validate(bad)
    tuned = TrainSpec(init_from="cats@prod", freeze=["conv1", "conv2"])
    assert tuned.freeze == ["conv1", "conv2"]
