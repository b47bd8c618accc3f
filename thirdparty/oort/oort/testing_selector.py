"""Oort's testing selector (Lai et al., OSDI'21): how many, and which, clients to evaluate on.

``select_by_deviation`` sizes a random testing cohort with a Hoeffding bound. ``select_by_category`` chooses clients
and how many samples of each category each one tests, so that per-category requests are met while the slowest chosen
client finishes early: by a greedy heuristic (numpy only), or exactly as a MILP through ``scipy.optimize.milp``.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

ClientId = Hashable
# A client without a profile costs 1 ms per sample and transfers nothing: selection then only counts samples.
_DEFAULT_MS_PER_SAMPLE = 1.0
_DEFAULT_BANDWIDTH_KBPS = math.inf


class CategorySelection(NamedTuple):
    """What ``select_by_category`` returns; it unpacks like Oort's (assignment, test duration, solver time) triple.

    ``assignment`` maps each selected client to the number of samples of every category it tests; Oort returns the
    same numbers as a clients × categories matrix whose rows lost the client ids.
    """

    assignment: dict[ClientId, list[int]]
    test_duration: float
    solve_seconds: float

    @property
    def selected_clients(self) -> list[ClientId]:
        return list(self.assignment)


def hoeffding_sample_size(
    dev_target: float, range_of_capacity: float, total_num_clients: int, confidence: float = 0.8
) -> float:
    """Clients to sample so that their mean is within ``dev_target`` of the population mean with ``confidence``.

    Hoeffding: P(|mean - E| >= ε) <= exp(-2 n ε² / R²) gives n0 = R² ln(1 / (1 - confidence)) / (2 ε²) for an
    infinite population; sampling without replacement from N clients needs n = n0 (N + 1) / (N + n0).
    """
    if dev_target <= 0 or range_of_capacity <= 0:
        raise ValueError("oort: dev_target and range_of_capacity must be positive")
    if total_num_clients < 1:
        raise ValueError(f"oort: total_num_clients must be at least 1, got {total_num_clients}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"oort: confidence must lie in (0, 1), got {confidence}")
    infinite_population = range_of_capacity**2 * math.log(1.0 / (1.0 - confidence)) / (2.0 * dev_target**2)
    return infinite_population * (total_num_clients + 1.0) / (total_num_clients + infinite_population)


class TestingSelector:
    """Oort's testing selector over the clients described by ``data_distribution`` and ``client_info``.

    data_distribution: per-client sample counts per category, a mapping client id -> counts, or a
        clients × categories array whose row indices are the client ids.
    client_info: per-client (milliseconds per sample, bandwidth in kbit/s), a mapping keyed by client id or a
        sequence in the rows' order; clients without one cost 1 ms per sample and no transfer.
    model_size: data sent to each tested client, in kbit (transfer time = model_size / bandwidth seconds).
    """

    __test__ = False  # a library class whose name happens to start with "Test"

    def __init__(
        self,
        data_distribution: Mapping[ClientId, Sequence[int]] | Sequence[Sequence[int]] | np.ndarray | None = None,
        client_info: Mapping[ClientId, Sequence[float]] | Sequence[Sequence[float]] | None = None,
        model_size: float | None = None,
    ) -> None:
        self.model_size = float(model_size or 0.0)
        self._client_ids: list[ClientId] = []
        self._counts = np.zeros((0, 0), dtype=np.int64)
        if data_distribution is not None:
            self._client_ids, self._counts = _as_count_matrix(data_distribution)
        self._profiles: dict[ClientId, tuple[float, float]] = {}
        if client_info is not None:
            ids = client_info.keys() if isinstance(client_info, Mapping) else self._client_ids
            profiles = client_info.values() if isinstance(client_info, Mapping) else client_info
            if not isinstance(client_info, Mapping) and len(client_info) != len(self._client_ids):
                raise ValueError("oort: client_info as a sequence needs one (ms_per_sample, kbps) per client row")
            self.update_client_info(list(ids), list(profiles))

    def update_client_info(self, client_ids: Sequence[ClientId], client_profile: Sequence[Sequence[float]]) -> None:
        """Set or replace clients' (milliseconds per sample, bandwidth in kbit/s)."""
        if len(client_ids) != len(client_profile):
            raise ValueError(f"oort: {len(client_ids)} client ids but {len(client_profile)} profiles")
        for client_id, profile in zip(client_ids, client_profile, strict=True):
            ms_per_sample, bandwidth = (float(value) for value in profile[:2])
            if ms_per_sample < 0 or bandwidth <= 0:
                raise ValueError(f"oort: client {client_id!r} needs ms_per_sample >= 0 and bandwidth > 0")
            self._profiles[client_id] = (ms_per_sample, bandwidth)

    def select_by_deviation(
        self,
        dev_target: float,
        range_of_capacity: float,
        total_num_clients: int,
        confidence: float = 0.8,
        overcommit: float = 1.1,
    ) -> int:
        """Number of clients to test at random (over-committed for stragglers, at most ``total_num_clients``)."""
        if overcommit <= 0:
            raise ValueError(f"oort: overcommit must be positive, got {overcommit}")
        needed = hoeffding_sample_size(dev_target, range_of_capacity, total_num_clients, confidence)
        return min(total_num_clients, math.ceil(needed * overcommit))

    def select_by_category(
        self,
        request_list: Sequence[int],
        max_num_clients: int | None = None,
        greedy_heuristic: bool = True,
        *,
        time_limit_s: float | None = None,
    ) -> CategorySelection:
        """Meet ``request_list[c]`` samples of every category c with at most ``max_num_clients`` clients.

        greedy_heuristic=True: repeatedly take the client that covers the most of what is still requested per second
        of its testing time. False: the MILP minimizing the slowest client's time (scipy), falling back to the greedy
        heuristic with a warning when scipy is missing. Raises ValueError when the request cannot be met.
        """
        requests = self._check_request(request_list, max_num_clients)
        started = time.perf_counter()
        if not greedy_heuristic:
            milp = _load_milp()
            if milp is not None:
                assignment = self._solve_milp(milp, requests, max_num_clients, time_limit_s)
                return CategorySelection(assignment, self._test_duration(assignment), time.perf_counter() - started)
            warnings.warn(
                "oort: scipy.optimize.milp is not importable (pip install 'scipy>=1.9'); using the greedy heuristic",
                RuntimeWarning,
                stacklevel=2,
            )
        assignment = self._solve_greedy(requests, max_num_clients)
        return CategorySelection(assignment, self._test_duration(assignment), time.perf_counter() - started)

    # ----- solvers --------------------------------------------------------------------------------------------------

    def _check_request(self, request_list: Sequence[int], max_num_clients: int | None) -> np.ndarray:
        if not self._client_ids:
            raise ValueError("oort: select_by_category needs the clients' data_distribution")
        requests = np.asarray(request_list, dtype=np.int64)
        if requests.shape != (self._counts.shape[1],) or (requests < 0).any():
            expected = self._counts.shape[1]
            raise ValueError(f"oort: request_list needs {expected} non-negative counts, got {request_list}")
        if max_num_clients is not None and max_num_clients < 0:
            raise ValueError(f"oort: max_num_clients must not be negative, got {max_num_clients}")
        short = np.flatnonzero(self._counts.sum(axis=0) < requests)
        if short.size:
            raise ValueError(f"oort: all clients together hold too few samples of categories {short.tolist()}")
        return requests

    def _costs(self) -> tuple[np.ndarray, np.ndarray]:
        """Seconds per tested sample and seconds of transfer, per client row."""
        profiles = [self._profiles.get(c, (_DEFAULT_MS_PER_SAMPLE, _DEFAULT_BANDWIDTH_KBPS)) for c in self._client_ids]
        seconds_per_sample = np.array([ms / 1000.0 for ms, _ in profiles])
        transfer_seconds = np.array([self.model_size / bandwidth for _, bandwidth in profiles])
        return seconds_per_sample, transfer_seconds

    def _test_duration(self, assignment: Mapping[ClientId, Sequence[int]]) -> float:
        seconds_per_sample, transfer_seconds = self._costs()
        row_of = {client_id: row for row, client_id in enumerate(self._client_ids)}
        durations = [
            sum(samples) * seconds_per_sample[row_of[c]] + transfer_seconds[row_of[c]]
            for c, samples in assignment.items()
        ]
        return float(max(durations, default=0.0))

    def _solve_greedy(self, requests: np.ndarray, max_num_clients: int | None) -> dict[ClientId, list[int]]:
        seconds_per_sample, transfer_seconds = self._costs()
        remaining = requests.copy()
        unused = np.ones(len(self._client_ids), dtype=bool)
        assignment: dict[ClientId, list[int]] = {}
        while remaining.sum() > 0:
            if max_num_clients is not None and len(assignment) >= max_num_clients:
                raise ValueError(f"oort: the greedy heuristic cannot meet the request with {max_num_clients} clients")
            takes = np.minimum(self._counts, remaining) * unused[:, None]
            covered = takes.sum(axis=1)
            seconds = covered * seconds_per_sample + transfer_seconds
            if covered.max() == 0:
                raise ValueError("oort: the remaining clients hold none of the samples still requested")
            rate = np.where(covered > 0, covered / np.maximum(seconds, 1e-12), -1.0)
            # Highest coverage rate; ties go to the client covering more, then to the earlier row.
            row = int(np.lexsort((-np.arange(len(rate)), covered, rate))[-1])
            assignment[self._client_ids[row]] = takes[row].astype(int).tolist()
            remaining -= takes[row]
            unused[row] = False
        return assignment

    def _solve_milp(
        self, milp: Any, requests: np.ndarray, max_num_clients: int | None, time_limit_s: float | None
    ) -> dict[ClientId, list[int]]:
        """Variables: samples q[i, c] (integer), chosen s[i] (binary), slowest time T; minimize T."""
        from scipy.optimize import Bounds, LinearConstraint
        from scipy.sparse import coo_array

        clients, categories = self._counts.shape
        seconds_per_sample, transfer_seconds = self._costs()
        n_q = clients * categories
        s_col, t_col = n_q, n_q + clients

        def q_col(i: int, c: int) -> int:
            return i * categories + c

        rows, cols, vals = [], [], []
        lower, upper = [], []

        def add_row(entries: list[tuple[int, float]], low: float, high: float) -> None:
            index = len(lower)
            for col, val in entries:
                rows.append(index)
                cols.append(col)
                vals.append(val)
            lower.append(low)
            upper.append(high)

        for c in range(categories):
            add_row([(q_col(i, c), 1.0) for i in range(clients)], float(requests[c]), np.inf)
        for i in range(clients):
            tested = [(q_col(i, c), 1.0) for c in range(categories)]
            # A client tests samples only when chosen, and a chosen client pays its transfer time.
            add_row([*tested, (s_col + i, -float(self._counts[i].sum()))], -np.inf, 0.0)
            timed = [(col, seconds_per_sample[i]) for col, _ in tested]
            add_row([*timed, (s_col + i, float(transfer_seconds[i])), (t_col, -1.0)], -np.inf, 0.0)
        if max_num_clients is not None:
            add_row([(s_col + i, 1.0) for i in range(clients)], 0.0, float(max_num_clients))

        matrix = coo_array((vals, (rows, cols)), shape=(len(lower), t_col + 1)).tocsr()
        objective = np.zeros(t_col + 1)
        objective[t_col] = 1.0
        integrality = np.ones(t_col + 1)
        integrality[t_col] = 0
        upper_bounds = np.concatenate([self._counts.reshape(-1).astype(float), np.ones(clients), [np.inf]])
        options = {} if time_limit_s is None else {"time_limit": float(time_limit_s)}
        result = milp(
            objective,
            constraints=LinearConstraint(matrix, lower, upper),
            integrality=integrality,
            bounds=Bounds(np.zeros(t_col + 1), upper_bounds),
            options=options,
        )
        if result.x is None:
            raise ValueError(f"oort: the MILP found no selection meeting the request ({result.message})")
        quantities = np.rint(result.x[:n_q]).astype(np.int64).reshape(clients, categories)
        return {
            self._client_ids[i]: quantities[i].tolist() for i in range(clients) if quantities[i].sum() > 0
        }


def _as_count_matrix(
    data_distribution: Mapping[ClientId, Sequence[int]] | Sequence[Sequence[int]] | np.ndarray,
) -> tuple[list[ClientId], np.ndarray]:
    if isinstance(data_distribution, Mapping):
        client_ids = list(data_distribution)
        counts = np.asarray([list(data_distribution[c]) for c in client_ids], dtype=np.int64)
    else:
        counts = np.asarray(data_distribution, dtype=np.int64)
        client_ids = list(range(len(counts)))
    if counts.ndim != 2 or (counts < 0).any():
        raise ValueError("oort: data_distribution must be non-negative counts, one row of categories per client")
    return client_ids, counts


def _load_milp() -> Any | None:
    try:
        from scipy.optimize import milp
    except ImportError:
        return None
    return milp


def create_testing_selector(
    data_distribution: Mapping[ClientId, Sequence[int]] | Sequence[Sequence[int]] | np.ndarray | None = None,
    client_info: Mapping[ClientId, Sequence[float]] | Sequence[Sequence[float]] | None = None,
    model_size: float | None = None,
) -> TestingSelector:
    """Oort's entry point for the testing selector."""
    return TestingSelector(data_distribution, client_info, model_size)
