"""Per-client state (FedDC's drift down with the task, theta - w back with the update) over the wire."""

import pytest
import torch

from fedscale_halor.transport import serde
from fedscale_halor.transport.messages import ClientTrain, ClientUpdate
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.types import TrainResult, TrainTask

DRIFT = {"conv.weight": torch.arange(54, dtype=torch.float32).reshape(2, 3, 3, 3) / 7,
         "conv.bias": torch.tensor([-0.5, 0.25]), "head.weight": torch.tensor([[1e-30, -3.0e38]])}


def task(client_id: int, state: dict[str, torch.Tensor]) -> TrainTask:
    return TrainTask(round=4, client_id=client_id, model_version=3, learning_rate=0.05, local_steps=10,
                     batch_size=8, seed=99, client_state=state)


def assert_same(received: dict[str, torch.Tensor], sent: dict[str, torch.Tensor]) -> None:
    assert list(received) == list(sent)
    for name, tensor in sent.items():
        assert received[name].dtype == tensor.dtype and torch.equal(received[name], tensor), name


def test_each_task_carries_its_own_client_state_and_an_empty_one_stays_empty() -> None:
    # Prepare: client 2 trained before (it has a drift), client 5 never did
    other = {name: tensor + 1 for name, tensor in DRIFT.items()}
    event = ClientTrain(round=4, model_version=3, tasks=(task(2, DRIFT), task(5, {}), task(9, other)))

    # Execute
    received = serde.event_from_bytes(serde.event_to_bytes(event))

    # Assert
    assert isinstance(received, ClientTrain)
    assert received.tasks == event.tasks  # identity fields (the state is payload, compared below)
    assert_same(dict(received.tasks[0].client_state), DRIFT)
    assert received.tasks[1].client_state == {}
    assert_same(dict(received.tasks[2].client_state), other)


def test_an_empty_client_state_costs_no_blob() -> None:
    # Prepare
    blobs: list = []

    # Execute
    message = serde.event_to_proto(ClientTrain(round=1, model_version=0, tasks=(task(1, {}),)), blobs)

    # Assert
    assert blobs == [] and not message.client_train.tasks[0].HasField("client_state")


def test_the_update_brings_the_client_state_back() -> None:
    # Prepare
    weights = {name: tensor * 2 for name, tensor in DRIFT.items()}
    weights["bn.num_batches_tracked"] = torch.tensor(5)
    result = TrainResult(client_id=2, round=4, model_version=3, weights=weights, num_samples=40, num_steps=10,
                         loss_mean=0.5, loss_square_mean=0.3, wall_time_s=0.2, client_state=DRIFT)

    # Execute
    received = serde.completion_from_bytes(serde.completion_to_bytes(ClientUpdate(result)))

    # Assert
    assert isinstance(received, ClientUpdate)
    assert_same(dict(received.result.weights), weights)
    assert_same(dict(received.result.client_state), DRIFT)


def test_a_client_state_whose_names_do_not_match_its_tensors_is_malformed() -> None:
    # Prepare: a header listing a name the blob does not hold
    blobs: list = []
    message = serde.event_to_proto(ClientTrain(round=1, model_version=0, tasks=(task(1, DRIFT),)), blobs)
    message.client_train.tasks[0].client_state.names.append("ghost")
    views = [memoryview(bytearray(b"".join(bytes(part) for part in blob))) for blob in blobs]

    # Execute / Assert
    with pytest.raises(serde.MalformedMessageError, match=r"client 1\.client_state"):
        serde.event_from_proto(pb.Event.FromString(message.SerializeToString()), views)
