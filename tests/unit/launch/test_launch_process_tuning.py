"""Training processes flush denormal floats to zero (and keep large freed blocks in malloc's heap)."""

import torch

from fedscale_halor.launch.process_tuning import tune_process_for_training


def test_denormal_results_are_flushed_to_zero_after_tuning() -> None:
    # Prepare: 1e-39 is below float32's smallest normal number (about 1.18e-38); other tests may have tuned already
    torch.set_flush_denormal(False)
    tiny = torch.tensor([1e-39], dtype=torch.float32)
    assert (tiny * 1.0).item() > 0.0  # without flushing, the denormal survives
    try:
        # Execute
        tune_process_for_training()
        product = tiny * 1.0

        # Assert
        assert product.item() == 0.0
    finally:
        torch.set_flush_denormal(False)
