"""derive_seeds: the vectorized seed-sequence hash gives exactly the seeds derive_seed gives one by one."""

from __future__ import annotations

import numpy as np
import pytest

from fedscale_halor.seeding import derive_seed, derive_seeds


@pytest.mark.parametrize("trial", range(20))
def test_derive_seeds_equals_derive_seed_one_by_one(trial: int) -> None:
    # Prepare
    rng = np.random.default_rng(trial)
    job_seed, round_index = int(rng.integers(0, 2**40)), int(rng.integers(0, 2**33))
    extras = [int(extra) for extra in rng.integers(0, 2**32, size=int(rng.integers(1, 300)))]
    extras += [0, 1, 2**32 - 1]
    # Execute
    seeds = derive_seeds(job_seed, round_index, "train", extras)
    # Assert
    assert seeds == [derive_seed(job_seed, round_index, "train", extra) for extra in extras]


def test_derive_seeds_matches_numpy_seed_sequence_directly() -> None:
    # the definition derive_seed documents: two 32-bit words of SeedSequence(job seed, round, crc32(purpose), extra)
    import zlib

    sequence = np.random.SeedSequence([7, 3, zlib.crc32(b"train"), 41])
    high, low = (int(word) for word in sequence.generate_state(2, np.uint32))
    assert derive_seeds(7, 3, "train", [41]) == [(high << 31) ^ low]


def test_purpose_and_round_change_every_seed() -> None:
    extras = list(range(100))
    base = derive_seeds(0, 1, "train", extras)
    assert len(set(base)) == 100
    assert not set(base) & set(derive_seeds(0, 2, "train", extras))
    assert not set(base) & set(derive_seeds(0, 1, "dropout", extras))


def test_extras_beyond_one_word_take_the_scalar_path() -> None:
    extras = [5, 2**32, 2**40 + 3]
    assert derive_seeds(1, 2, "train", extras) == [derive_seed(1, 2, "train", extra) for extra in extras]


def test_no_extras_give_no_seeds() -> None:
    assert derive_seeds(1, 2, "train", []) == []


def test_negative_extras_are_refused_as_derive_seed_refuses_them() -> None:
    with pytest.raises(ValueError):
        derive_seeds(1, 2, "train", [3, -1])
