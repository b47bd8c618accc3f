"""Halor's Dirichlet partition (its ``partitioning: 8``) and REFL's per-client class filters.

Halor's scheme, as Halor builds it (REFL's label-share partitions work the same way): every client draws label
shares p ~ Dir(alpha, ..., alpha) over the ``num_classes`` classes, then takes floor(samples_per_client * p_c)
samples of class c, at most the whole class, drawn without replacement from the full pool of class c. Clients draw
independently of each other, so:

- every client holds about ``samples_per_client`` samples: the floor loses less than one sample per class, and a
  class smaller than the client's quota caps it (the client then holds fewer; nothing is redrawn elsewhere);
- a pool never runs dry: each client draws from every sample of a class, so a sample can belong to several clients
  and the clients together may hold more samples than the data set has.

REFL's class filters remove ``removed_classes`` classes, chosen at random, from each client. In Halor's scheme they
zero those classes' shares before the shares are normalised (as Halor and REFL do), so the client keeps its size;
applied to a finished partition (``remove_client_classes``), the client simply loses those classes' samples.

Order of the random draws (one generator): every client's shares (client 0 first), then every client's removed
classes, then each client's samples, class by class in ascending label order.
"""

from __future__ import annotations

import numpy as np

from fedscale_halor.config.errors import ConfigError


def dirichlet_shares(parts: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """One Dir(alpha, ..., alpha) draw; if every gamma draw underflows (tiny alpha), one random part gets all."""
    draws = rng.gamma(alpha, size=parts)
    total = draws.sum()
    if total <= 0.0 or not np.isfinite(total):
        draws = np.zeros(parts)
        draws[rng.integers(parts)] = 1.0
        total = 1.0
    return draws / total


def samples_per_client(used_samples: int, num_samples: int, num_clients: int, batch_size: int) -> int:
    """Halor's and REFL's ``used_samples`` rule: > 0 as given; 0 the training set split evenly (rounded down);
    < 0 one batch plus one sample (batch_size + 1)."""
    if used_samples > 0:
        return used_samples
    if used_samples < 0:
        return batch_size + 1
    if num_clients < 1 or num_samples < num_clients:
        raise ConfigError(f"used_samples 0 splits the {num_samples} training samples evenly over total_clients "
                         f"({num_clients}): that leaves less than one sample per client; set used_samples or "
                         f"lower total_clients")
    return num_samples // num_clients


def removed_class_count(filter_class: int, filter_class_ratio: float, num_classes: int) -> int:
    """How many classes REFL removes from each client: ``filter_class`` when > 0, else
    round(num_classes * (1 - filter_class_ratio)) when the ratio is > 0 (Python's round: halves go to the even
    number), else none. A ratio of 1 keeps every class."""
    if filter_class > 0:
        removed, key, value = filter_class, "filter_class", f"{filter_class}"
    elif filter_class_ratio > 0:
        removed = round(num_classes * (1.0 - filter_class_ratio))
        key, value = "filter_class_ratio", f"{filter_class_ratio:g}"
    else:
        return 0
    if removed >= num_classes:
        raise ConfigError(f"{key} {value} removes {removed} of the {num_classes} classes from every client, which "
                         f"leaves a client no class; keep at least one")
    return removed


def draw_kept_classes(num_clients: int, num_classes: int, removed_classes: int,
                      rng: np.random.Generator) -> np.ndarray:
    """(num_clients, num_classes) booleans: False for the ``removed_classes`` classes drawn for each client."""
    kept = np.ones((num_clients, num_classes), dtype=bool)
    if removed_classes:
        for client in range(num_clients):
            kept[client, rng.choice(num_classes, removed_classes, replace=False)] = False
    return kept


def remove_client_classes(partitions: list[np.ndarray], labels: np.ndarray, kept: np.ndarray) -> list[np.ndarray]:
    """Each client's indices without the samples of the classes ``kept`` marks False for it (order preserved)."""
    return [part[kept[client, labels[part]]] for client, part in enumerate(partitions)]


def draw_label_shares(num_clients: int, num_classes: int, alpha: float, removed_classes: int,
                      rng: np.random.Generator) -> np.ndarray:
    """(num_clients, num_classes) label shares, each row a Dir(alpha) draw with the client's removed classes zeroed
    and renormalised. A row whose kept shares all underflowed to zero gives everything to one random kept class
    (Halor would divide by zero there)."""
    shares = np.stack([dirichlet_shares(num_classes, alpha, rng) for _ in range(num_clients)])
    if not removed_classes:
        return shares
    kept = draw_kept_classes(num_clients, num_classes, removed_classes, rng)
    shares = np.where(kept, shares, 0.0)
    totals = shares.sum(axis=1)
    for client in np.flatnonzero(totals <= 0.0):
        shares[client, rng.choice(np.flatnonzero(kept[client]))] = 1.0
        totals[client] = 1.0
    return shares / totals[:, None]


def halor_label_counts(shares: np.ndarray, per_client: int, pool_sizes: np.ndarray) -> np.ndarray:
    """Samples of each class each client takes: floor(per_client * share), capped at the size of the class."""
    return np.minimum(np.floor(per_client * shares).astype(np.int64), np.asarray(pool_sizes, dtype=np.int64)[None, :])


def halor_dirichlet(labels: np.ndarray, num_clients: int, num_classes: int, alpha: float, per_client: int,
                    removed_classes: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Halor's partition (see the module docstring): ascending sample indices of each client."""
    shares = draw_label_shares(num_clients, num_classes, alpha, removed_classes, rng)
    pools = [np.flatnonzero(labels == label) for label in range(num_classes)]
    counts = halor_label_counts(shares, per_client, np.array([len(pool) for pool in pools]))
    partitions = []
    for client in range(num_clients):
        drawn = [rng.choice(pools[label], counts[client, label], replace=False)
                 for label in np.flatnonzero(counts[client])]
        partitions.append(np.sort(np.concatenate(drawn)).astype(np.int64) if drawn else np.empty(0, dtype=np.int64))
    return partitions
