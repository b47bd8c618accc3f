"""Updates that do not fit the global model are refused client by client, before the fold sees them."""

import threading
from dataclasses import replace

import pytest
import torch

from fedscale_halor.aggregation.update_check import update_mismatch
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.transport.messages import ClientUpdate, Idle
from fedscale_halor.types import TrainResult, TrainTask

MODEL = {"fc.weight": torch.zeros(3, 2), "fc.bias": torch.zeros(3), "bn.num_batches_tracked": torch.tensor(0)}


def _result(client_id: int = 4, **changes: object) -> TrainResult:
    result = TrainResult(client_id=client_id, round=1, model_version=2,
                         weights={name: tensor.clone() for name, tensor in MODEL.items()}, num_samples=5,
                         num_steps=1, loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0)
    return replace(result, **changes)


def _with_tensor(name: str, tensor: object) -> dict[str, object]:
    return {**{key: value.clone() for key, value in MODEL.items()}, name: tensor}


def test_an_update_with_the_models_tensors_fits() -> None:
    assert update_mismatch(_result(), MODEL, model_version=2) is None
    assert update_mismatch(_result(weights={}, num_samples=0), MODEL, model_version=2) is None
    assert update_mismatch(_result(client_state={"fc.bias": torch.ones(3)}), MODEL, model_version=2) is None


@pytest.mark.parametrize(("changes", "problem"), [
    ({"model_version": 1}, "trained on model version 1, but the round's model is version 2"),
    ({"weights": _with_tensor("fc.weight", torch.zeros(2, 3))},
     "tensor 'fc.weight' has shape (2, 3) where the model has (3, 2)"),
    ({"weights": _with_tensor("fc.bias", torch.zeros(3, dtype=torch.float64))},
     "tensor 'fc.bias' has dtype torch.float64 where the model has torch.float32"),
    ({"weights": _with_tensor("fc.bias", [0.0, 0.0, 0.0])}, "tensor 'fc.bias' is a list, not a tensor"),
    ({"weights": {"fc.weight": torch.zeros(3, 2)}},
     "the update lacks the model's tensors 'bn.num_batches_tracked', 'fc.bias'"),
    ({"weights": _with_tensor("extra", torch.zeros(1))}, "the update has tensors the model does not: 'extra'"),
    ({"client_state": {"fc.bias": torch.zeros(4)}},
     "client state tensor 'fc.bias' has shape (4,) where the model has (3,)"),
    ({"client_state": {"other": torch.zeros(1)}}, "the client state has tensors the model does not: 'other'"),
])
def test_a_mismatch_is_described(changes: dict[str, object], problem: str) -> None:
    assert update_mismatch(_result(**changes), MODEL, model_version=2) == problem


def test_the_board_counts_a_misfit_update_as_a_failed_client_and_keeps_the_others() -> None:
    # Prepare: a round of two clients on model version 2
    board = WorkBoard(long_poll_s=0.01)
    board.add_executor("executor_0")
    board.set_model(2, MODEL)
    tasks = [TrainTask(round=1, client_id=client, model_version=2, learning_rate=0.1, local_steps=1, batch_size=2,
                       seed=client) for client in (4, 5)]
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(board.run_round(1, tasks)), daemon=True)
    thread.start()
    while isinstance(board.next_event("executor_0"), Idle):
        pass

    # Execute: client 4 sends a wrong shape, client 5 a good update
    board.submit("executor_0", ClientUpdate(_result(4, weights=_with_tensor("fc.weight", torch.zeros(1)))))
    board.submit("executor_0", ClientUpdate(_result(5)))
    thread.join(timeout=5)

    # Assert
    assert [result.client_id for result in outcome[0].results] == [5]
    assert [(failure.client_id, failure.error) for failure in outcome[0].failures] == [
        (4, "its update from executor_0 does not fit the global model: tensor 'fc.weight' has shape (1,) where the "
            "model has (3, 2)")]
