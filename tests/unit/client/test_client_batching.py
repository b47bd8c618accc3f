import pytest
import torch

from fedscale_halor.client.batching import batch_indices


def test_each_pass_is_a_permutation_cut_into_full_batches() -> None:
    # Prepare: 10 samples in batches of 4 give 2 full batches per pass (2 samples left out of each pass)
    generator = torch.Generator().manual_seed(0)

    # Execute
    batches = list(batch_indices(10, 4, 5, generator))

    # Assert
    assert [len(batch) for batch in batches] == [4] * 5
    for first, second in ((batches[0], batches[1]), (batches[2], batches[3])):
        within_pass = torch.cat([first, second])
        assert len(set(within_pass.tolist())) == 8
        assert all(0 <= index < 10 for index in within_pass.tolist())


def test_a_client_smaller_than_a_batch_uses_all_its_samples_every_step() -> None:
    # Execute
    batches = list(batch_indices(3, 10, 4, torch.Generator().manual_seed(1)))

    # Assert
    assert len(batches) == 4
    assert all(sorted(batch.tolist()) == [0, 1, 2] for batch in batches)


def test_the_same_generator_seed_gives_the_same_schedule() -> None:
    # Execute
    first = list(batch_indices(20, 6, 9, torch.Generator().manual_seed(5)))
    second = list(batch_indices(20, 6, 9, torch.Generator().manual_seed(5)))

    # Assert
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_zero_steps_yield_nothing_and_no_samples_is_an_error() -> None:
    # Execute / Assert
    assert list(batch_indices(5, 2, 0, torch.Generator())) == []
    with pytest.raises(ValueError, match="0 samples"):
        list(batch_indices(0, 2, 3, torch.Generator()))
