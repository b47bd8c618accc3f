"""The metrics seam: sinks receive one RoundMetrics per round and close at the end of the job."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from fedscale_halor.types import RoundMetrics


class MetricsSink(ABC):
    @abstractmethod
    def on_round(self, metrics: RoundMetrics) -> None: ...

    def close(self) -> None:  # noqa: B027
        """Flush and release files; sinks without any need nothing."""


class FanOutSink(MetricsSink):
    """Forwards every round to several sinks, in order."""

    def __init__(self, sinks: Sequence[MetricsSink]) -> None:
        self._sinks = tuple(sinks)

    def on_round(self, metrics: RoundMetrics) -> None:
        for sink in self._sinks:
            sink.on_round(metrics)

    def close(self) -> None:
        for sink in self._sinks:
            sink.close()
