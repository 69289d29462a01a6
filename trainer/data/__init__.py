"""Datasets in memory (uint8 images, integer labels) and the loaders for each source."""

from tass.trainer.data.dataset import Dataset, stratified_split
from tass.trainer.data.loader import CIFAR10_CLASSES, load_dataset

__all__ = ["CIFAR10_CLASSES", "Dataset", "load_dataset", "stratified_split"]
