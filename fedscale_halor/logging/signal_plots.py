"""Pictures of an Auxo run's client signals (``signal_rounds``): one PNG per saved round, the signals in two
dimensions, a colour per cohort.

The signals are seen as Auxo's cosine clustering sees them: centred (what all clients share removed) and scaled to
unit length, then projected on their first two principal components. Each axis is turned so that the round's
lowest client id lies on its positive side, so that the same signals always give the same picture. When the run
has planted label groups (``label_groups`` > 1 in its config.yml: client c in group c % label_groups), a marker
shape per group shows them, and the title gives the cohorts' purity: the share of clients in their cohort's
majority group.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize

from fedscale_halor.auxo.signal_log import RoundSignals, read_round_signals, saved_signal_files
from fedscale_halor.logging.plots import saved_job_settings

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")


@dataclass(frozen=True)
class SignalPicture:
    round: int
    clients: tuple[int, ...]
    cohorts: tuple[int, ...]
    groups: tuple[int, ...] | None  # each client's planted group; None: the run has no label groups
    coordinates: np.ndarray  # (clients, 2): the first two principal components
    explained: tuple[float, float]  # the share of the variance along each axis
    purity: float | None  # None without label groups


def projected(signals: RoundSignals, label_groups: int = 1) -> SignalPicture:
    """The round's signals on their first two principal components, with the clients' cohorts and groups."""
    matrix = signals.signals.astype(np.float64)
    unit = normalize(matrix - matrix.mean(axis=0), norm="l2", axis=1)
    coordinates = np.zeros((len(unit), 2))
    explained = [0.0, 0.0]
    # a round of one client, or signals of one value, have fewer than two components
    components = min(2, *unit.shape)
    if components > 0 and len(unit) > 1:
        pca = PCA(n_components=components, svd_solver="full")
        coordinates[:, :components] = pca.fit_transform(unit)
        explained[:components] = [float(share) for share in pca.explained_variance_ratio_]
    coordinates = _oriented(coordinates)
    clients = tuple(int(client) for client in signals.clients)
    cohorts = tuple(int(cohort) for cohort in signals.cohorts)
    groups = tuple(client % label_groups for client in clients) if label_groups > 1 else None
    return SignalPicture(signals.round, clients, cohorts, groups, coordinates, (explained[0], explained[1]),
                         None if groups is None else purity(cohorts, groups))


def _oriented(coordinates: np.ndarray) -> np.ndarray:
    """Each axis flipped, if need be, so that the first client off its origin lies on its positive side: a
    principal component's sign is arbitrary."""
    turned = coordinates.copy()
    for axis in range(turned.shape[1]):
        off_origin = np.flatnonzero(np.abs(turned[:, axis]) > 1e-12)
        if len(off_origin) and turned[off_origin[0], axis] < 0:
            turned[:, axis] = -turned[:, axis]
    return turned


def purity(cohorts: Sequence[int], groups: Sequence[int]) -> float:
    """The share of clients in their cohort's majority group: 1 when every cohort holds a single group."""
    if not cohorts:
        return 0.0
    by_cohort: dict[int, Counter[int]] = {}
    for cohort, group in zip(cohorts, groups, strict=True):
        by_cohort.setdefault(cohort, Counter())[group] += 1
    return sum(max(counts.values()) for counts in by_cohort.values()) / len(cohorts)


def draw_signals(picture: SignalPicture) -> Any:
    """A matplotlib figure of one round: a scatter per cohort (and group), coloured by cohort, shaped by group."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed or assumed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.5, 5.5))
    colours = plt.get_cmap("tab10")
    groups = picture.groups or (0,) * len(picture.clients)
    for cohort, group in sorted(set(zip(picture.cohorts, groups, strict=True))):
        chosen = [index for index, (c, g) in enumerate(zip(picture.cohorts, groups, strict=True))
                  if (c, g) == (cohort, group)]
        label = f"cohort {cohort}" if picture.groups is None else f"cohort {cohort}, group {group}"
        axes.scatter(picture.coordinates[chosen, 0], picture.coordinates[chosen, 1], color=colours(cohort % 10),
                     marker=_MARKERS[group % len(_MARKERS)], label=label, alpha=0.8)
    axes.set_xlabel(f"principal component 1 ({picture.explained[0]:.0%} of the variance)")
    axes.set_ylabel(f"principal component 2 ({picture.explained[1]:.0%} of the variance)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    title = f"round {picture.round}: {len(picture.clients)} clients' signals"
    if picture.purity is not None:
        title += f", purity {picture.purity:.3f}"
    axes.set_title(title)
    figure.tight_layout()
    return figure


def plot_signals(run_dir: Path) -> list[Path]:
    """Write ``round_<r>.png`` beside each of the run's saved rounds (``<run>/auxo_signals/``)."""
    files = saved_signal_files(run_dir)
    if not files:
        raise FileNotFoundError(f"{run_dir}: no saved signals in auxo_signals/ (the job's signal_rounds key lists "
                                "the rounds whose signals an Auxo job saves)")
    groups = saved_job_settings(run_dir).get("label_groups")
    label_groups = groups if isinstance(groups, int) and not isinstance(groups, bool) else 1
    import matplotlib.pyplot as plt

    written = []
    for path in files:
        figure = draw_signals(projected(read_round_signals(path), label_groups))
        out = path.with_suffix(".png")
        figure.savefig(out, dpi=120)
        plt.close(figure)
        written.append(out)
    return written
