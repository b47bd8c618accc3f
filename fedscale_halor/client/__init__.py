"""Client-side computation: local training, evaluation, the learning-rate schedule."""

from fedscale_halor.client.base import Trainer
from fedscale_halor.client.evaluation import evaluate
from fedscale_halor.client.local import LocalTrainer, cpu_weights
from fedscale_halor.client.schedule import learning_rate_at

__all__ = ["LocalTrainer", "Trainer", "cpu_weights", "evaluate", "learning_rate_at"]
