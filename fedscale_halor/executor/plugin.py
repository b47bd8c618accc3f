"""The executor's side of a plug-in: it answers the plug-in's own questions (events in envelopes) and may choose
the samples each client trains on from the hints that come with a round's tasks. The executor names no plug-in."""

from __future__ import annotations

from abc import ABC
from collections.abc import Sequence

import numpy as np

from fedscale_halor.types import TrainTask


class ExecutorPlugin(ABC):  # noqa: B024 - every hook has a default: a plug-in overrides the ones it needs
    #: the payload types of the events this plug-in answers
    questions: tuple[type, ...] = ()

    def answer(self, question: object) -> object:
        """The payload sent back for one of ``questions``."""
        raise TypeError(f"{type(self).__name__} answers no {type(question).__name__}")

    def training_positions(self, task: TrainTask, hints: Sequence[object]) -> np.ndarray | None:
        """The positions, in the client's own data, of the samples it trains on for ``task``; None: all of them."""
        return None
