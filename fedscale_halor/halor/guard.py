"""Halor's guard: selection leaves out clients whose resampled size is below a floor (the job's ``filter_less``).

``under`` keeps about a fifth of a skewed client's samples, so a client that passed filter_less on its own data may
train on one or two samples once resampled. Halor's client manager therefore filters on the size a client reports
after its data reshape; the guard does the same with the sizes it learns: each client's answer to the size question
(halor_distribution all), and the size of each training result (what the client actually trained on).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class ResampledSizeGuard:
    """Which clients selection may pick. A client whose resampled size is not known yet stays selectable: its first
    training result tells. A floor of 0 admits every client."""

    def __init__(self, floor: int, sizes: Mapping[int, int] | None = None) -> None:
        if floor < 0:
            raise ValueError(f"floor must be >= 0, got {floor}")
        self.floor = floor
        self._sizes: dict[int, int] = {}
        for client, size in (sizes or {}).items():
            self.record(client, size)

    @property
    def active(self) -> bool:
        return self.floor > 0

    def record(self, client_id: int, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"client {client_id}: a resampled size is a count of samples, got {size!r}")
        self._sizes[int(client_id)] = size

    def admits(self, client_id: int) -> bool:
        size = self._sizes.get(client_id)
        return size is None or size >= self.floor

    def admitted(self, client_ids: Iterable[int]) -> list[int]:
        """The clients of ``client_ids``, in their order, that the guard lets selection pick."""
        return [client for client in client_ids if self.admits(client)]

    def sizes(self) -> dict[int, int]:
        """Every known resampled size (client id -> samples), for the checkpoint."""
        return dict(sorted(self._sizes.items()))
