import pytest
import torch
from torch import nn

from fedscale_halor.client.fedprox import ProximalTerm
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.launch.components import build_trainer


def test_proximal_term_value_and_gradient_by_hand() -> None:
    # Prepare: Linear(2, 1) has 3 parameters; moving each by +1 from the anchor gives ||w - w0||^2 = 3
    model = nn.Linear(2, 1)
    term = ProximalTerm(model, mu=4.0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)

    # Execute
    value = term()
    value.backward()

    # Assert: (4 / 2) * 3 = 6, and the gradient mu * (w - w0) is 4 everywhere
    assert float(value.detach()) == pytest.approx(6.0)
    assert torch.allclose(model.weight.grad, torch.full((1, 2), 4.0))
    assert torch.allclose(model.bias.grad, torch.full((1,), 4.0))


def test_negative_mu_is_rejected() -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="mu"):
        ProximalTerm(nn.Linear(2, 1), mu=-1.0)


def test_the_job_enables_the_proximal_term_only_under_fed_prox() -> None:
    # Prepare
    prox_job = JobConfig(gradient_policy="fed-prox", proxy_mu=0.3, momentum=0.5, weight_decay=1e-3)
    avg_job = JobConfig(gradient_policy="fedavg", proxy_mu=0.3)

    # Execute
    prox_trainer = build_trainer(prox_job, "cpu")
    avg_trainer = build_trainer(avg_job, "cpu")

    # Assert
    assert (prox_trainer.proximal_mu, prox_trainer.momentum, prox_trainer.weight_decay) == (0.3, 0.5, 1e-3)
    assert avg_trainer.proximal_mu == 0.0
