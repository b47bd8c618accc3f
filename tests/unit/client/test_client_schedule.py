import pytest

from fedscale_halor.client import learning_rate_at


@pytest.mark.parametrize(
    ("round_index", "expected"),
    [
        (0, 0.1),     # 0 // 10 = 0 decays
        (9, 0.1),
        (10, 0.05),   # 0.1 * 0.5
        (29, 0.025),  # 0.1 * 0.5^2
        (100, 0.001),  # 0.1 * 0.5^10 = 9.8e-5, under the floor
    ],
)
def test_step_decay_with_a_floor(round_index: int, expected: float) -> None:
    # Execute
    rate = learning_rate_at(round_index, base=0.1, decay_factor=0.5, decay_round=10, minimum=0.001)

    # Assert
    assert rate == pytest.approx(expected)


def test_a_non_positive_decay_round_is_rejected() -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="decay_round"):
        learning_rate_at(3, base=0.1, decay_factor=0.5, decay_round=0, minimum=0.0)
