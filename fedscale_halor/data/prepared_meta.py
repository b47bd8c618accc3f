"""The fields of a prepared folder's meta.json, each checked, so a damaged file is named instead of crashing later."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedscale_halor.errors import InputFileError

# The files a checksum may name; anything else in "sha256" is not something prepare wrote.
_CHECKSUMMED_FILES = frozenset({"train_x.npy", "train_y.npy", "test_x.npy", "test_y.npy", "train_owner.npy"})


@dataclass(frozen=True)
class PreparedMeta:
    name: str
    num_classes: int
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    feature_dtype: np.dtype
    feature_scale: float
    channel_mean: tuple[float, ...]
    channel_std: tuple[float, ...]
    num_train: int
    num_test: int
    num_owners: int
    checksums: dict[str, str] | None  # None: written before prepare recorded checksums


class _Fields:
    """Reads keys of one meta.json, raising InputFileError that names the file and the key."""

    def __init__(self, meta: dict[str, Any], path: Path, remedy: str) -> None:
        self._meta = meta
        self._path = path
        self._remedy = remedy

    def fail(self, key: str, expected: str) -> InputFileError:
        if key not in self._meta:
            return InputFileError(self._path, f"key {key!r} is missing (expected {expected})", self._remedy)
        return InputFileError(self._path, f"key {key!r} is {self._meta[key]!r}, expected {expected}", self._remedy)

    def integer(self, key: str, minimum: int, default: int | None = None) -> int:
        value = self._meta.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"an integer >= {minimum}")
        return value

    def number(self, key: str) -> float:
        value = self._meta.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(key, "a finite number")
        return float(value)

    def text(self, key: str) -> str:
        value = self._meta.get(key)
        if not isinstance(value, str) or not value:
            raise self.fail(key, "a non-empty string")
        return value

    def numbers(self, key: str, length: int, positive: bool = False) -> tuple[float, ...]:
        value = self._meta.get(key)
        expected = f"a list of {length} finite {'positive ' if positive else ''}numbers"
        if not isinstance(value, list) or len(value) != length:
            raise self.fail(key, expected)
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item) or (
                    positive and item <= 0):
                raise self.fail(key, expected)
        return tuple(float(item) for item in value)


def describe_meta(meta: dict[str, Any], path: Path, remedy: str) -> PreparedMeta:
    """The checked fields of ``meta`` (read from ``path``)."""
    fields = _Fields(meta, path, remedy)
    num_classes = fields.integer("num_classes", 1)
    shape = meta.get("input_shape")
    if not isinstance(shape, list) or not shape or any(
            isinstance(side, bool) or not isinstance(side, int) or side < 1 for side in shape):
        raise fields.fail("input_shape", "a list of positive integers")
    names = meta.get("class_names")
    if not isinstance(names, list) or len(names) != num_classes:
        raise fields.fail("class_names", f"a list of num_classes ({num_classes}) names")
    try:
        feature_dtype = np.dtype(fields.text("feature_dtype"))
    except TypeError:
        raise fields.fail("feature_dtype", "a NumPy dtype name such as 'uint8'") from None
    if feature_dtype.hasobject:
        raise fields.fail("feature_dtype", "a numeric NumPy dtype")
    channels = int(shape[0])
    return PreparedMeta(
        name=fields.text("name"),
        num_classes=num_classes,
        input_shape=tuple(int(side) for side in shape),
        class_names=tuple(str(name) for name in names),
        feature_dtype=feature_dtype,
        feature_scale=fields.number("feature_scale"),
        channel_mean=fields.numbers("channel_mean", channels),
        channel_std=fields.numbers("channel_std", channels, positive=True),
        num_train=fields.integer("num_train", 0),
        num_test=fields.integer("num_test", 0),
        num_owners=fields.integer("num_owners", 0, default=0),
        checksums=_checksums(meta, fields),
    )


def _checksums(meta: dict[str, Any], fields: _Fields) -> dict[str, str] | None:
    if "sha256" not in meta:
        return None
    value = meta["sha256"]
    expected = "a map from array file name to its sha256 in hex"
    if not isinstance(value, dict) or not value:
        raise fields.fail("sha256", expected)
    for name, digest in value.items():
        if name not in _CHECKSUMMED_FILES or not isinstance(digest, str) or len(digest) != 64:
            raise fields.fail("sha256", expected)
    return dict(value)
