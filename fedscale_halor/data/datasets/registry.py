"""Data set name -> loader that reads the raw files of ``data_dir`` into a RawDataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.data.datasets import cifar10, digits, fashion_mnist, femnist, google_speech, synthetic
from fedscale_halor.data.datasets.base import RawDataset

Loader = Callable[[Path], RawDataset]

LOADERS: dict[str, Loader] = {
    "digits": digits.load,
    "cifar10": cifar10.load,
    "fashion_mnist": fashion_mnist.load,
    "femnist": femnist.load,
    "google_speech": google_speech.load,
    "synthetic": synthetic.load,
}


def loader_for(name: str) -> Loader:
    if name not in LOADERS:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(sorted(LOADERS))}")
    return LOADERS[name]
