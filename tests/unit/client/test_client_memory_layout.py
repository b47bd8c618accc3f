import torch
from torch import nn

from fedscale_halor.client import LocalTrainer, evaluate
from fedscale_halor.client.batching import batch_indices
from fedscale_halor.client.memory_layout import prefer_channels_last
from fedscale_halor.models import build_model
from fedscale_halor.seeding import torch_generator
from fedscale_halor.types import ClientData, TrainTask


def test_convolutional_models_on_a_cpu_store_their_kernels_channels_last() -> None:
    # Prepare
    convolutional = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 2))
    dense = nn.Sequential(nn.Linear(4, 4))
    lazy = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(2))

    # Execute
    prefer_channels_last(convolutional, torch.device("cpu"))
    prefer_channels_last(dense, torch.device("cpu"))
    prefer_channels_last(lazy, torch.device("cpu"))

    # Assert
    assert convolutional[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not convolutional[0].weight.is_contiguous()
    assert dense[0].weight.is_contiguous()
    assert lazy[0].weight.is_contiguous()


def test_the_trainer_matches_a_plain_pytorch_loop_and_hands_back_contiguous_weights() -> None:
    # Prepare: the FEMNIST CNN on 12x12 images; plain SGD, so dense layers step inside backward and convolutions
    # run channels-last
    torch.manual_seed(3)
    model = build_model("femnist_cnn", 7, (1, 12, 12))
    start = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    features, labels = torch.randn(30, 1, 12, 12), torch.randint(0, 7, (30,))
    task = TrainTask(round=1, client_id=4, model_version=1, learning_rate=0.05, local_steps=6, batch_size=10,
                     seed=21)

    # Execute
    result = LocalTrainer(momentum=0.0, weight_decay=0.0).train(model, start, ClientData(4, features, labels), task)
    reference = build_model("femnist_cnn", 7, (1, 12, 12))
    reference.load_state_dict(start)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.05)
    for batch in batch_indices(30, 10, 6, torch_generator(21)):
        optimizer.zero_grad()
        nn.functional.cross_entropy(reference(features[batch]), labels[batch]).backward()
        optimizer.step()

    # Assert
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    for name, tensor in reference.state_dict().items():
        assert result.weights[name].is_contiguous(), name
        assert torch.allclose(result.weights[name], tensor, atol=1e-5), name
    assert not torch.allclose(result.weights["7.weight"], start["7.weight"])


def test_evaluation_gives_the_same_sums_in_either_layout() -> None:
    # Prepare
    torch.manual_seed(4)
    model = build_model("femnist_cnn", 7, (1, 12, 12))
    weights = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    features, labels = torch.randn(40, 1, 12, 12), torch.randint(0, 7, (40,))
    with torch.no_grad():
        expected_logits = model(features)

    # Execute
    result = evaluate(model, weights, features, labels, batch_size=16)

    # Assert
    expected_loss = nn.functional.cross_entropy(expected_logits, labels, reduction="sum").item()
    assert abs(result.loss_sum - expected_loss) < 1e-3
    assert result.top1_correct == int((expected_logits.argmax(dim=1) == labels).sum())
