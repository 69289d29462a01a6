"""Fixtures for the trainer unit tests."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from tass.trainer.data import Dataset
from tass.trainer.data.synthetic import synthetic_dataset


@pytest.fixture(scope="session")
def easy_data() -> Dataset:
    """600 images of 10 easily told apart synthetic classes."""
    return synthetic_dataset(600, 10, "train", seed=0)
