"""Pure partition functions: (labels, config values, seed) -> one array of sample indices per client.

Scheme codes are Halor's:
  -1 IID: a random permutation cut into equal parts (sizes differ by at most one).
   0 real clients: client k owns the samples whose owner is k (``owners``, e.g. FEMNIST writers, speech speakers);
     there are max(owners) + 1 clients and ``num_clients`` is not used.
   1 non-IID uniform: each client draws ``classes_per_client`` classes (every class is drawn by about as many clients
     as any other) and gets an equal share of each drawn class, so clients hold few labels and similar sizes.
   2 Zipf: IID labels; client k gets one sample plus a multinomial share of the rest with weight
     (k + 1) ** -zipf_param, so sizes fall with k in expectation (client 0 largest).
   3 balanced: samples sorted by label are cut into ``shards_per_client`` shards per client, dealt at random; every
     client holds the same number of samples (up to one).
   8 Halor's Dirichlet: every client draws label shares from Dir(dirichlet_alpha) and takes about
     ``samples_per_client`` samples with those shares, drawn from each label's whole pool, so clients have about the
     same size and may share samples (see label_shares.py).
   9 Dirichlet label split: for each class, the shares of the clients are drawn from Dir(dirichlet_alpha) and the
     class's samples are cut accordingly, so sizes vary and no sample is shared.

Guarantees: except under scheme 8, every sample goes to at most one client (schemes -1, 0, 2, 3 and 9 use every
sample; scheme 1 leaves out the classes no client drew, which happens only when num_clients * classes_per_client <
number of classes). When there are at least as many samples as clients, every client of schemes -1, 1, 2, 3 and 9
gets at least one sample (for 1 and 9, clients left empty by the draw take one sample each from the largest
clients). With fewer samples than clients, the surplus clients get empty arrays; ``filter_clients(...,
filter_less=1, ...)`` drops them. Each returned array is sorted ascending, which keeps reads of memory-mapped rows
sequential.

REFL's class filters (``removed_classes`` > 0) apply to the generated non-IID schemes 1, 2, 3, 8 and 9, as REFL and
Halor apply them to all their label-share schemes: scheme 8 zeroes the removed classes' shares before drawing; 1, 2,
3 and 9, whose splits are not label shares, drop the removed classes' samples from each finished client. IID and the
real mapping take no class filter, as in REFL and Halor.
"""

from __future__ import annotations

import heapq

import numpy as np

from fedscale_halor.data.label_shares import dirichlet_shares, draw_kept_classes, halor_dirichlet, remove_client_classes
from fedscale_halor.seeding import numpy_rng

IID = -1
REAL_CLIENTS = 0
NON_IID_UNIFORM = 1
ZIPF = 2
BALANCED = 3
HALOR_DIRICHLET = 8
DIRICHLET_LABEL_SPLIT = 9
SCHEME_NAMES = {
    IID: "IID",
    REAL_CLIENTS: "real client mapping",
    NON_IID_UNIFORM: "non-IID uniform",
    ZIPF: "Zipf",
    BALANCED: "balanced",
    HALOR_DIRICHLET: "Halor's Dirichlet",
    DIRICHLET_LABEL_SPLIT: "Dirichlet label split",
}
CLASS_FILTER_SCHEMES = frozenset({NON_IID_UNIFORM, ZIPF, BALANCED, HALOR_DIRICHLET, DIRICHLET_LABEL_SPLIT})
# The label split was code 8 before Halor's scheme took that code; its stream keeps the old name, so that the same
# seed still gives the same partition.
_RNG_PURPOSES = {DIRICHLET_LABEL_SPLIT: "partition/8", HALOR_DIRICHLET: "partition/halor-dirichlet"}
UNASSIGNED = -1


def partition_rng(seed: int, scheme: int) -> np.random.Generator:
    """The generator a generated scheme draws from: a function of the seed and the scheme only."""
    return numpy_rng(seed, 0, _RNG_PURPOSES.get(scheme, f"partition/{scheme}"))


def even_sizes(total: int, parts: int) -> np.ndarray:
    """``total`` split into ``parts`` integers that differ by at most one, larger ones first."""
    return total // parts + (np.arange(parts) < total % parts).astype(np.int64)


def group_by_client(assignment: np.ndarray, num_clients: int) -> list[np.ndarray]:
    """Client of each sample (UNASSIGNED for none) -> ascending sample indices of each client."""
    order = np.argsort(assignment, kind="stable")
    assigned = assignment[order]
    first_assigned = int(np.searchsorted(assigned, 0))
    counts = np.bincount(assignment[assignment >= 0], minlength=num_clients)
    bounds = first_assigned + np.concatenate([[0], np.cumsum(counts)])
    return [order[bounds[client]:bounds[client + 1]].astype(np.int64) for client in range(num_clients)]


def fill_empty_clients(assignment: np.ndarray, num_clients: int, rng: np.random.Generator) -> np.ndarray:
    """Give each empty client one random sample of the currently largest client (when samples suffice)."""
    counts = np.bincount(assignment[assignment >= 0], minlength=num_clients)
    empty_clients = np.flatnonzero(counts == 0)
    if len(empty_clients) == 0 or counts.sum() < num_clients:
        return assignment
    filled = assignment.copy()
    donors = [(-int(count), int(client)) for client, count in enumerate(counts) if count > 1]
    heapq.heapify(donors)
    for client in empty_clients:
        negative_count, donor = heapq.heappop(donors)
        moved = rng.choice(np.flatnonzero(filled == donor))
        filled[moved] = client
        if -negative_count - 1 > 1:
            heapq.heappush(donors, (negative_count + 1, donor))
    return filled


def _iid(num_samples: int, num_clients: int, rng: np.random.Generator) -> np.ndarray:
    assignment = np.empty(num_samples, dtype=np.int64)
    assignment[rng.permutation(num_samples)] = np.repeat(np.arange(num_clients), even_sizes(num_samples, num_clients))
    return assignment


def _zipf(num_samples: int, num_clients: int, zipf_param: float, rng: np.random.Generator) -> np.ndarray:
    weights = np.arange(1, num_clients + 1, dtype=np.float64) ** -zipf_param
    weights /= weights.sum()
    guaranteed = 1 if num_samples >= num_clients else 0
    sizes = guaranteed + rng.multinomial(num_samples - guaranteed * num_clients, weights)
    assignment = np.empty(num_samples, dtype=np.int64)
    assignment[rng.permutation(num_samples)] = np.repeat(np.arange(num_clients), sizes)
    return assignment


def _balanced(labels: np.ndarray, num_clients: int, shards_per_client: int, rng: np.random.Generator) -> np.ndarray:
    # Random tie-breaks inside a label, so a shard is a random subset of its label, not the first rows.
    by_label = np.lexsort((rng.random(len(labels)), labels))
    client_sizes = even_sizes(len(labels), num_clients)
    shard_sizes = (client_sizes[:, None] // shards_per_client
                   + (np.arange(shards_per_client)[None, :] < client_sizes[:, None] % shards_per_client)).ravel()
    shard_owners = np.repeat(np.arange(num_clients), shards_per_client)
    deal = rng.permutation(len(shard_sizes))
    assignment = np.empty(len(labels), dtype=np.int64)
    assignment[by_label] = np.repeat(shard_owners[deal], shard_sizes[deal])
    return assignment


def _draw_client_classes(classes: np.ndarray, num_clients: int, per_client: int,
                         rng: np.random.Generator) -> np.ndarray:
    """(num_clients, per_client) distinct classes per row; consecutive permutations keep class popularity even."""
    num_permutations = -(-num_clients * per_client // len(classes)) + 1
    sequence = np.concatenate([rng.permutation(classes) for _ in range(num_permutations)])
    chosen = sequence[: num_clients * per_client].reshape(num_clients, per_client)
    # A row that straddles two permutations may repeat a class; swap repeats for classes the row lacks.
    sorted_rows = np.sort(chosen, axis=1)
    for row_index in np.flatnonzero((sorted_rows[:, 1:] == sorted_rows[:, :-1]).any(axis=1)):
        unique = np.unique(chosen[row_index])
        missing = rng.permutation(np.setdiff1d(classes, unique))[: per_client - len(unique)]
        chosen[row_index] = np.concatenate([unique, missing])
    return chosen


def _non_iid_uniform(labels: np.ndarray, num_clients: int, classes_per_client: int,
                     rng: np.random.Generator) -> np.ndarray:
    classes = np.unique(labels)
    chosen = _draw_client_classes(classes, num_clients, min(classes_per_client, len(classes)), rng)
    assignment = np.full(len(labels), UNASSIGNED, dtype=np.int64)
    for label in classes:
        members = rng.permutation(np.flatnonzero((chosen == label).any(axis=1)))
        if len(members) == 0:
            continue
        samples = rng.permutation(np.flatnonzero(labels == label))
        assignment[samples] = np.repeat(members, even_sizes(len(samples), len(members)))
    return fill_empty_clients(assignment, num_clients, rng)


def _dirichlet(labels: np.ndarray, num_clients: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    assignment = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        samples = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.floor(np.cumsum(dirichlet_shares(num_clients, alpha, rng)) * len(samples)).astype(np.int64)
        bounds[-1] = len(samples)
        counts = np.diff(np.concatenate([[0], bounds]))
        assignment[samples] = np.repeat(np.arange(num_clients), counts)
    return fill_empty_clients(assignment, num_clients, rng)


def _real_clients(labels: np.ndarray, owners: np.ndarray | None) -> list[np.ndarray]:
    if owners is None:
        raise ValueError("partition scheme 0 (real client mapping) needs owners: this data set has no real clients")
    owners = np.asarray(owners, dtype=np.int64)
    if owners.shape != labels.shape:
        raise ValueError(f"owners has shape {owners.shape}, labels {labels.shape}")
    if len(owners) and owners.min() < 0:
        raise ValueError(f"owners must be >= 0, found {owners.min()}")
    return group_by_client(owners, int(owners.max()) + 1 if len(owners) else 0)


def _check_class_settings(labels: np.ndarray, scheme: int, num_classes: int, removed_classes: int) -> int:
    """The number of classes the partition spans (at least every label present); bad settings raise."""
    spanned = max(num_classes, int(labels.max()) + 1 if len(labels) else 0, 1)
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, found {labels.min()}")
    if removed_classes < 0:
        raise ValueError(f"removed_classes must be >= 0, got {removed_classes}")
    if removed_classes and scheme not in CLASS_FILTER_SCHEMES:
        raise ValueError(f"partition scheme {scheme} ({SCHEME_NAMES[scheme]}) takes no class filter; schemes "
                         + ", ".join(str(code) for code in sorted(CLASS_FILTER_SCHEMES)) + " do")
    if removed_classes >= spanned:
        raise ValueError(f"removing {removed_classes} of {spanned} classes per client leaves no class")
    return spanned


def partition_indices(labels: np.ndarray, num_clients: int, scheme: int, seed: int, *, dirichlet_alpha: float = 0.5,
                      zipf_param: float = 1.95, owners: np.ndarray | None = None, classes_per_client: int = 2,
                      shards_per_client: int = 2, num_classes: int = 0, samples_per_client: int = 0,
                      removed_classes: int = 0) -> list[np.ndarray]:
    """The sample indices of each client under ``scheme`` (see the module docstring); same inputs, same output.

    ``num_classes`` (0: the largest label + 1) is the number of classes Halor's shares and the class filters span;
    ``samples_per_client`` is Halor's used_samples once resolved (0: the samples split evenly, rounded down);
    ``removed_classes`` is the number of classes REFL's filter removes from each client.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} and dtype {labels.dtype}")
    if scheme not in SCHEME_NAMES:
        raise ValueError(f"unknown partition scheme {scheme}; known: "
                         + ", ".join(f"{code} ({name})" for code, name in SCHEME_NAMES.items()))
    spanned_classes = _check_class_settings(labels, scheme, num_classes, removed_classes)
    if scheme == REAL_CLIENTS:
        return _real_clients(labels, owners)
    if num_clients < 1:
        raise ValueError(f"num_clients must be >= 1, got {num_clients}")
    if scheme in (HALOR_DIRICHLET, DIRICHLET_LABEL_SPLIT) and dirichlet_alpha <= 0:
        raise ValueError(f"dirichlet_alpha must be > 0, got {dirichlet_alpha}")
    rng = partition_rng(seed, scheme)
    if scheme == HALOR_DIRICHLET:
        if samples_per_client < 0:
            raise ValueError(f"samples_per_client must be >= 0, got {samples_per_client}")
        per_client = samples_per_client or len(labels) // num_clients
        return halor_dirichlet(labels, num_clients, spanned_classes, dirichlet_alpha, per_client, removed_classes,
                               rng)
    if scheme == IID:
        assignment = _iid(len(labels), num_clients, rng)
    elif scheme == ZIPF:
        if zipf_param <= 0:
            raise ValueError(f"zipf_param must be > 0, got {zipf_param}")
        assignment = _zipf(len(labels), num_clients, zipf_param, rng)
    elif scheme == BALANCED:
        if shards_per_client < 1:
            raise ValueError(f"shards_per_client must be >= 1, got {shards_per_client}")
        assignment = _balanced(labels, num_clients, shards_per_client, rng)
    elif scheme == NON_IID_UNIFORM:
        if classes_per_client < 1:
            raise ValueError(f"classes_per_client must be >= 1, got {classes_per_client}")
        assignment = _non_iid_uniform(labels, num_clients, classes_per_client, rng)
    else:
        assignment = _dirichlet(labels, num_clients, dirichlet_alpha, rng)
    partitions = group_by_client(assignment, num_clients)
    if removed_classes:
        # A stream of its own: the split is the one without the filter, less the removed classes' samples.
        filter_rng = numpy_rng(seed, 0, "partition/class-filter", scheme)
        kept = draw_kept_classes(num_clients, spanned_classes, removed_classes, filter_rng)
        partitions = remove_client_classes(partitions, labels, kept)
    return partitions


def filter_clients(partitions: list[np.ndarray], filter_less: int, filter_more: int) -> dict[int, np.ndarray]:
    """Client id (its position in ``partitions``) -> indices, for clients with filter_less <= size <= filter_more.

    ``filter_more`` of 0 sets no upper bound, as in FedScale's config.
    """
    if filter_less < 0 or filter_more < 0:
        raise ValueError(f"filter_less and filter_more must be >= 0, got {filter_less} and {filter_more}")
    return {
        client: indices
        for client, indices in enumerate(partitions)
        if len(indices) >= filter_less and (filter_more == 0 or len(indices) <= filter_more)
    }
