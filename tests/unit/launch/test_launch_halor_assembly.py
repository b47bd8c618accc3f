"""A job's Halor step is built from its config, and refused when masked sums could wrap around."""

import pytest

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.halor.factory import halor_coordinator
from fedscale_halor.launch.jobfile import job_with
from fedscale_halor.server.board import WorkBoard


def test_no_coordinator_without_halor() -> None:
    assert halor_coordinator(job_with(halor=False), WorkBoard(), num_classes=10, total_samples=100) is None


def test_a_sum_that_could_reach_two_to_the_bits_is_refused_naming_the_key() -> None:
    # 2^8 = 256: 255 samples in all fit, 256 could wrap to 0
    job = job_with(halor=True, halor_mask_bits=8)

    assert halor_coordinator(job, WorkBoard(), num_classes=10, total_samples=255) is not None
    with pytest.raises(ConfigError, match="halor_mask_bits 8 is too small: the clients hold 256 samples"):
        halor_coordinator(job, WorkBoard(), num_classes=10, total_samples=256)
