"""Fixtures shared by the data package's tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from data_format_writers import write_synthetic_spec


@pytest.fixture
def synthetic_dir(tmp_path: Path) -> Callable[..., Path]:
    """A factory: synthetic_dir(**spec) -> a data folder with that synthetic.json."""
    counter = iter(range(1_000))

    def make(**spec: object) -> Path:
        return write_synthetic_spec(tmp_path / f"synthetic_{next(counter)}", **spec)

    return make
