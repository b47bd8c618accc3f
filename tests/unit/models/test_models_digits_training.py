import torch
import torch.nn.functional as F  # noqa: N812
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from fedscale_halor.models import build_model


def test_digits_cnn_trained_centrally_exceeds_95_percent_test_accuracy() -> None:
    # Prepare
    digits = load_digits()
    features = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(digits.target, dtype=torch.int64)
    train_x, test_x, train_y, test_y = train_test_split(features, labels, test_size=0.25, random_state=0,
                                                        stratify=labels)
    torch.manual_seed(0)
    model = build_model("digits_cnn", num_classes=10, input_shape=(1, 8, 8))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)

    # Execute
    model.train()
    for _epoch in range(8):
        for batch in torch.randperm(len(train_y), generator=generator).split(32):
            optimizer.zero_grad()
            F.cross_entropy(model(train_x[batch]), train_y[batch]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(test_x).argmax(dim=1) == test_y).float().mean().item()

    # Assert
    assert accuracy > 0.95
