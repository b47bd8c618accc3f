"""The training selector's clients as columns: one row per client in registration order, and the id → row mapping.

Rows are what the selector computes with (numpy arrays over all clients); ids are what callers see. Integer ids are
mapped without a Python object per client: when they are 0..n-1 in registration order a row is its id, otherwise a
sorted copy of the ids is searched. Any other hashable id switches the table to a dict, with the dict's equality
(so ``1``, ``1.0`` and ``True`` are one client, as keys of a dict are).
"""

from __future__ import annotations

import operator
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np

_INT64_MAX = np.iinfo(np.int64).max


def _as_int_array(values: Any) -> np.ndarray | None:
    """``values`` as an int64 array when every one is an integer (bools excluded), else None."""
    if isinstance(values, np.ndarray):
        array = values
    else:
        items = values if isinstance(values, (list, tuple, range)) else list(values)
        if not isinstance(items, range) and any(type(item) is bool for item in items):
            return None
        try:
            array = np.asarray(items)
        except (OverflowError, ValueError):
            return None
    if array.ndim != 1:
        return None  # e.g. tuples of integers: each tuple is one id
    if array.dtype.kind == "u" and array.size and array.max() > _INT64_MAX:
        return None
    if array.dtype.kind not in "iu":
        return None if array.size else np.empty(0, dtype=np.int64)
    return array.astype(np.int64, copy=False)


def _is_int_id(client_id: Hashable) -> bool:
    return (type(client_id) is int or isinstance(client_id, np.integer)) and -_INT64_MAX - 1 <= client_id <= _INT64_MAX


class SortedDurations:
    """A sorted copy of the duration column, patched on updates rather than sorted again every round."""

    def __init__(self) -> None:
        self._sorted: np.ndarray | None = None
        self._removed: list[float] = []
        self._added: list[float] = []

    def replace(self, old: float, new: float) -> None:
        if self._sorted is not None and old != new:
            self._removed.append(old)
            self._added.append(new)

    def extend(self, values: np.ndarray) -> None:
        if self._sorted is not None:
            self._added.extend(values.tolist())

    def value_at(self, column: np.ndarray, index: int) -> float:
        """The value ``sorted(column)[index]`` (a full stable sort's, down to the sign of a zero)."""
        if self._sorted is None or len(self._added) > len(column) // 16 + 64:
            # Zeros are made positive (x + 0.0), so that removing a value removes an equal one; see below.
            self._sorted = np.sort(column + 0.0)
        elif self._added:
            self._patch()
        self._removed, self._added = [], []
        value = float(self._sorted[index])
        if value == 0.0 and np.any((column == 0.0) & np.signbit(column)):
            # Which zero a sort puts at `index` depends on the order of -0.0 and 0.0; a stable sort is sorted()'s.
            value = float(np.sort(column, kind="stable")[index])
        return value

    def _patch(self) -> None:
        assert self._sorted is not None
        # Insert first: a value set and replaced again since the last patch is removed after it was added.
        added = np.sort(np.asarray(self._added, dtype=np.float64) + 0.0)
        self._sorted = np.insert(self._sorted, np.searchsorted(self._sorted, added), added)
        removed = np.sort(np.asarray(self._removed, dtype=np.float64) + 0.0)
        if removed.size:
            # Equal removed values take consecutive places among the equal values of the sorted copy.
            first = np.searchsorted(removed, removed, side="left")
            places = np.searchsorted(self._sorted, removed, side="left") + (np.arange(removed.size) - first)
            self._sorted = np.delete(self._sorted, places)


class ClientTable:
    """Per-client columns (reward, duration, last involved round, participations, available) and the id mapping."""

    def __init__(self) -> None:
        self._size = 0
        self._reward = np.empty(0, dtype=np.float64)
        self._duration = np.empty(0, dtype=np.float64)
        self._last_round = np.empty(0, dtype=np.int64)
        self._participations = np.empty(0, dtype=np.int64)
        self._available = np.empty(0, dtype=bool)
        # Integer mode: the ids by row; None once some id is not an integer (then _objects holds them).
        self._int_ids: np.ndarray | None = np.empty(0, dtype=np.int64)
        self._objects: list[Hashable] = []
        self._identity = True  # integer ids that are 0..n-1 in registration order
        self._row_of: dict[Hashable, int] | None = None  # built on demand in integer mode, always in dict mode
        self._search: tuple[np.ndarray, np.ndarray | None] | None = None  # (sorted ids, their rows or None if same)
        self.sorted_durations = SortedDurations()

    def __len__(self) -> int:
        return self._size

    # ----- columns (views over the registered rows; do not keep them across registrations) --------------------------

    @property
    def reward(self) -> np.ndarray:
        return self._reward[: self._size]

    @property
    def duration(self) -> np.ndarray:
        return self._duration[: self._size]

    @property
    def last_round(self) -> np.ndarray:
        return self._last_round[: self._size]

    @property
    def participations(self) -> np.ndarray:
        return self._participations[: self._size]

    @property
    def available(self) -> np.ndarray:
        return self._available[: self._size]

    # ----- ids and rows ----------------------------------------------------------------------------------------------

    def row(self, client_id: Hashable) -> int | None:
        """The row of a registered client, None for an unknown one."""
        if self._int_ids is not None and self._identity and _is_int_id(client_id):
            row = operator.index(client_id)  # type: ignore[arg-type]
            return row if 0 <= row < self._size else None
        return self._dict().get(client_id)

    def rows(self, client_ids: Iterable[Hashable]) -> np.ndarray:
        """Rows of the registered clients among ``client_ids`` (unknown ones left out, repeats kept)."""
        ints = _as_int_array(client_ids) if self._int_ids is not None else None
        if ints is None:
            row_of = self._dict()
            items = client_ids.tolist() if isinstance(client_ids, np.ndarray) else client_ids
            found = [row_of.get(client_id) for client_id in items]
            return np.asarray([row for row in found if row is not None], dtype=np.int64)
        if self._identity:
            return ints[(ints >= 0) & (ints < self._size)]
        sorted_ids, sorted_rows = self._searchable()
        if not sorted_ids.size:
            return np.empty(0, dtype=np.int64)
        places = np.minimum(np.searchsorted(sorted_ids, ints), sorted_ids.size - 1)
        places = places[sorted_ids[places] == ints]
        return places if sorted_rows is None else sorted_rows[places]

    def ids(self, rows: np.ndarray | Sequence[int]) -> list[Hashable]:
        """The client ids of ``rows``, in their order."""
        if self._int_ids is not None:
            return self._int_ids[np.asarray(rows, dtype=np.int64)].tolist()
        return [self._objects[row] for row in np.asarray(rows, dtype=np.int64).tolist()]

    def _dict(self) -> dict[Hashable, int]:
        if self._row_of is None:
            assert self._int_ids is not None
            self._row_of = dict(zip(self._int_ids[: self._size].tolist(), range(self._size), strict=True))
        return self._row_of

    def _searchable(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self._search is None:
            assert self._int_ids is not None
            ids = self._int_ids[: self._size]
            if ids.size < 2 or bool(np.all(ids[1:] > ids[:-1])):
                self._search = (ids.copy(), None)
            else:
                order = np.argsort(ids, kind="stable")
                self._search = (ids[order], order)
        return self._search

    # ----- registration ----------------------------------------------------------------------------------------------

    def fresh(self, client_ids: Any) -> tuple[np.ndarray | list[Hashable], np.ndarray]:
        """The ids as this table keys them (int64 array or list) and the positions of those not registered yet, first
        occurrences only, in order."""
        ints = _as_int_array(client_ids) if self._int_ids is not None else None
        if ints is None:
            items = client_ids.tolist() if isinstance(client_ids, np.ndarray) else list(client_ids)
            known, seen = self._dict(), set()
            positions = []
            for position, client_id in enumerate(items):
                if client_id not in known and client_id not in seen:
                    seen.add(client_id)
                    positions.append(position)
            return items, np.asarray(positions, dtype=np.int64)
        if ints.size < 2 or bool(np.all(ints[1:] > ints[:-1])):
            first = np.arange(ints.size)
        else:
            # Each id's first position: a stable sort puts it first among its equals.
            order = np.argsort(ints, kind="stable")
            ordered = ints[order]
            first = np.sort(order[np.concatenate(([True], ordered[1:] != ordered[:-1]))])
        if self._size:
            registered = np.zeros(len(first), dtype=bool)
            registered[self._positions_of_registered(ints[first])] = True
            first = first[~registered]
        return ints, first

    def _positions_of_registered(self, ints: np.ndarray) -> np.ndarray:
        if self._identity:
            return np.flatnonzero((ints >= 0) & (ints < self._size))
        sorted_ids, _ = self._searchable()
        places = np.minimum(np.searchsorted(sorted_ids, ints), sorted_ids.size - 1)
        return np.flatnonzero(sorted_ids[places] == ints)

    def append(self, client_ids: np.ndarray | list[Hashable], rewards: np.ndarray, durations: np.ndarray,
               last_round: int) -> None:
        """Add new clients (ids not registered yet, distinct) with their first reward and duration."""
        count = len(client_ids)
        if count == 0:
            return
        self._reserve(self._size + count)
        start, end = self._size, self._size + count
        if isinstance(client_ids, np.ndarray) and self._int_ids is not None:
            # Strictly ascending from `start` to `end - 1` means start, start + 1, ..., end - 1.
            if self._identity and not (client_ids[0] == start and client_ids[-1] == end - 1
                                       and (count == 1 or bool(np.all(client_ids[1:] > client_ids[:-1])))):
                self._identity = False
            self._int_ids[start:end] = client_ids
            if self._row_of is not None:
                self._row_of.update(zip(client_ids.tolist(), range(start, end), strict=True))
        else:
            self._to_objects()
            ids = client_ids.tolist() if isinstance(client_ids, np.ndarray) else list(client_ids)
            self._objects.extend(ids)
            self._row_of.update(zip(ids, range(start, end), strict=True))  # type: ignore[union-attr]
        self._search = None
        self._reward[start:end] = rewards
        self._duration[start:end] = durations
        self._last_round[start:end] = last_round
        self._participations[start:end] = 0
        self._available[start:end] = True
        self._size = end
        self.sorted_durations.extend(self._duration[start:end])

    def append_one(self, client_id: Hashable, reward: float, duration: float, last_round: int) -> None:
        """``append`` for one new client, without building arrays (registration one by one stays cheap)."""
        row = self._size
        self._reserve(row + 1)
        if self._int_ids is not None and _is_int_id(client_id):
            self._int_ids[row] = client_id
            if self._identity and client_id != row:
                self._identity = False
            if self._row_of is not None:
                self._row_of[operator.index(client_id)] = row  # type: ignore[arg-type]
        else:
            self._to_objects()
            self._objects.append(client_id)
            self._row_of[client_id] = row  # type: ignore[index]
        self._search = None
        self._reward[row], self._duration[row] = reward, duration
        self._last_round[row], self._participations[row], self._available[row] = last_round, 0, True
        self._size = row + 1
        self.sorted_durations.extend(self._duration[row : row + 1])

    def set_duration(self, row: int, duration: float) -> None:
        self.sorted_durations.replace(float(self._duration[row]), duration)
        self._duration[row] = duration

    def _to_objects(self) -> None:
        if self._int_ids is None:
            return
        row_of = self._dict()
        self._objects = self._int_ids[: self._size].tolist()
        self._int_ids, self._identity, self._row_of = None, False, row_of

    def _reserve(self, size: int) -> None:
        capacity = len(self._reward)
        if size <= capacity:
            return
        capacity = max(size, 2 * capacity, 1024)
        for name in ("_reward", "_duration", "_last_round", "_participations", "_available", "_int_ids"):
            column = getattr(self, name)
            if column is None:
                continue
            grown = np.zeros(capacity, dtype=column.dtype)
            grown[: self._size] = column[: self._size]
            setattr(self, name, grown)
