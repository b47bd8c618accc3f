"""The clients' side of Halor on an executor: resampled training data and the one-mask-per-round rule."""

import numpy as np
import torch

from fedscale_halor.halor.executor_plugin import HalorClients, training_data
from fedscale_halor.halor.messages import HalorKeys, HalorSizes, LabelStats, ResampledSizes, RevealMasks
from fedscale_halor.halor.ring import MaskRequest
from fedscale_halor.halor.session import RingSeat
from fedscale_halor.types import ClientData, ResampleTarget, TrainTask

# client 0 holds classes 0,0,0,0,1,1,2: counts [4, 2, 1]
LABELS = np.array([0, 0, 0, 0, 1, 1, 2])


class FakeClientStore:
    """One client's labels; client_data returns the rows picked so a test can read them back."""

    def client_labels(self, client_id: int) -> np.ndarray:
        return LABELS

    def label_counts(self, client_id: int) -> np.ndarray:
        return np.bincount(LABELS, minlength=3)

    def client_data(self, client_id: int, positions: np.ndarray | None = None) -> ClientData:
        rows = np.arange(LABELS.size) if positions is None else np.asarray(positions)
        return ClientData(client_id, torch.from_numpy(rows).float().unsqueeze(1), torch.from_numpy(LABELS[rows]))


def _task(round_index: int) -> TrainTask:
    return TrainTask(round=round_index, client_id=0, model_version=0, learning_rate=0.1, local_steps=1,
                     batch_size=10, seed=1000 + round_index)


def _class_counts(data: ClientData) -> list[int]:
    return np.bincount(data.labels.numpy(), minlength=3).tolist()


def test_under_keeps_the_pivot_class_whole_and_cuts_the_others() -> None:
    # g = (0.5, 0.25, 0.25); g/n = (0.125, 0.125, 0.25): pivot class 2 keeps its 1 sample;
    # class 0 keeps min(4, floor(0.5/0.25 * 1)) = 2, class 1 keeps min(2, floor(0.25/0.25 * 1)) = 1
    data = training_data(FakeClientStore(), _task(1), ResampleTarget((0.5, 0.25, 0.25), "under"))  # type: ignore[arg-type]

    assert _class_counts(data) == [2, 1, 1]
    assert len(data) == 4  # smaller than the batch of 10: the trainer still runs on it


def test_over_keeps_the_clients_size_in_proportion_to_the_distribution() -> None:
    # N = 7; quotas 3.5, 1.75, 1.75 floor to 3, 1, 1; the 2 left over go to the largest remainders (classes 1, 2)
    data = training_data(FakeClientStore(), _task(1), ResampleTarget((0.5, 0.25, 0.25), "over"))  # type: ignore[arg-type]

    assert _class_counts(data) == [3, 2, 2]


def test_which_samples_are_drawn_changes_with_the_round_but_not_the_counts() -> None:
    target = ResampleTarget((0.5, 0.25, 0.25), "under")
    store = FakeClientStore()

    draws = [tuple(training_data(store, _task(round_index), target).features.flatten().tolist())  # type: ignore[arg-type]
             for round_index in range(1, 9)]

    assert len(set(draws)) > 1
    assert all(len(draw) == 4 for draw in draws)
    assert draws[0] == tuple(training_data(store, _task(1), target).features.flatten().tolist())  # type: ignore[arg-type]


def test_without_a_target_the_client_trains_on_all_its_data() -> None:
    data = training_data(FakeClientStore(), _task(1), None)  # type: ignore[arg-type]

    assert _class_counts(data) == [4, 2, 1]


def _seated_clients() -> tuple[HalorClients, list[RingSeat]]:
    clients = HalorClients("executor_0", job_seed=9, dataset=FakeClientStore())  # type: ignore[arg-type]
    keys = dict(clients.public_keys(HalorKeys(1, (0, 1, 2))).keys)
    seats = [RingSeat(1, client, position, 3, keys[(client + 2) % 3], keys[(client + 1) % 3], 16, 3)
             for position, client in enumerate((0, 1, 2))]
    return clients, seats


def test_a_client_reveals_one_mask_per_round_and_declines_a_second() -> None:
    # Prepare
    clients, seats = _seated_clients()
    uploads = clients.masked_histograms(LabelStats(1, tuple(seats)))

    # Execute
    first = clients.revealed_masks(RevealMasks(1, (MaskRequest(1, 1),)))
    second = clients.revealed_masks(RevealMasks(1, (MaskRequest(1, 0),)))

    # Assert
    assert len(uploads.uploads) == 3 and uploads.declined == ()
    assert [mask.link_index for mask in first.masks] == [1] and first.declined == ()
    assert second.masks == () and second.declined == (1,)


def test_a_client_that_never_uploaded_here_declines_to_reveal() -> None:
    clients, _ = _seated_clients()

    answer = clients.revealed_masks(RevealMasks(1, (MaskRequest(2, 2),)))

    assert answer.masks == () and answer.declined == (2,)


def test_a_second_upload_in_the_same_round_is_declined() -> None:
    clients, seats = _seated_clients()
    clients.masked_histograms(LabelStats(1, tuple(seats)))

    again = clients.masked_histograms(LabelStats(1, (seats[0],)))

    assert again.uploads == () and again.declined == (0,)


class LabelsOnly(FakeClientStore):
    """Client 0 holds LABELS, client 1 only class 1 (three samples); any other client is unknown. Reading a client's
    features fails: the size question must be answered from labels alone."""

    def label_counts(self, client_id: int) -> np.ndarray:
        return {0: np.bincount(LABELS, minlength=3), 1: np.array([0, 3, 0])}[client_id]

    def client_data(self, client_id: int, positions: np.ndarray | None = None) -> ClientData:
        raise AssertionError("the size question read a client's features")


def test_resampled_sizes_follow_the_training_rule_from_labels_alone() -> None:
    # Prepare: g = (0.5, 0.25, 0.25). Under: client 0 keeps [2, 1, 1] (see above) = 4; client 1 keeps its single
    # class whole = 3. Over keeps each client's size: 7 and 3. Client 9 is not on this executor's data.
    clients = HalorClients("executor_0", job_seed=9, dataset=LabelsOnly())  # type: ignore[arg-type]

    # Execute
    under = clients.answer(HalorSizes(0, ResampleTarget((0.5, 0.25, 0.25), "under"), (0, 1, 9)))
    over = clients.answer(HalorSizes(0, ResampleTarget((0.5, 0.25, 0.25), "over"), (0, 1)))

    # Assert
    assert under == ResampledSizes(0, ((0, 4), (1, 3)), declined=(9,))
    assert over == ResampledSizes(0, ((0, 7), (1, 3)))
