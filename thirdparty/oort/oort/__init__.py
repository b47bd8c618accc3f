"""Oort: guided participant selection for federated learning (Lai et al., OSDI'21).

``create_training_selector(args)`` picks training participants by statistical and system utility;
``create_testing_selector(...)`` sizes or composes testing cohorts.
"""

from __future__ import annotations

from oort.testing_selector import CategorySelection, TestingSelector, create_testing_selector, hoeffding_sample_size
from oort.training_selector import TrainingSelector, TrainingSelectorConfig, create_training_selector

__all__ = [
    "CategorySelection",
    "TestingSelector",
    "TrainingSelector",
    "TrainingSelectorConfig",
    "create_testing_selector",
    "create_training_selector",
    "hoeffding_sample_size",
]
