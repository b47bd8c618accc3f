"""Halor's pre-round sessions: a whole round moved message by message between ServerMaskingRound and
ClientMaskingSession, the refusals of each side, and the plain-data shape of what crosses the wire."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pytest

from fedscale_halor.halor.secret_sharing import MaskAlreadyRevealedError, NotALinkEndError
from fedscale_halor.halor.session import (
    ClientMaskingSession,
    HalorSessionError,
    LateUploadError,
    MaskedUpload,
    RevealedMask,
    RingSeat,
    RoundSum,
    ServerMaskingRound,
)

JOB_SEED = 233
ROUND = 7
CLIENT_IDS = (3, 17, 42, 58, 61, 99, 104, 230, 512, 777)  # K = 10
NUM_CLASSES = 35
BITS = 32


def _histograms(client_ids: Iterable[int], seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {client: rng.integers(0, 500, size=NUM_CLASSES, dtype=np.int64) for client in client_ids}


def _clients(client_ids: Iterable[int]) -> dict[int, ClientMaskingSession]:
    return {client: ClientMaskingSession(JOB_SEED, client) for client in client_ids}


def _server(clients: dict[int, ClientMaskingSession], round_index: int = ROUND) -> ServerMaskingRound:
    public_keys = {client: session.public_key for client, session in clients.items()}
    return ServerMaskingRound(round_index, list(clients), public_keys, NUM_CLASSES, BITS)


def _uploads(
    server: ServerMaskingRound, clients: dict[int, ClientMaskingSession], histograms: dict[int, np.ndarray]
) -> dict[int, MaskedUpload]:
    return {client: clients[client].upload(seat, histograms[client]) for client, seat in server.seats().items()}


def _play_round(dropped_positions: Iterable[int]) -> tuple[ServerMaskingRound, RoundSum, dict[int, np.ndarray], int]:
    """One round moved message by message; clients at ``dropped_positions`` of the ring never upload."""
    clients = _clients(CLIENT_IDS)
    histograms = _histograms(CLIENT_IDS)
    server = _server(clients)
    dropped = {server.ring[position] for position in dropped_positions}
    for client, upload in _uploads(server, clients, histograms).items():
        if client not in dropped:
            server.accept_upload(upload)
    requests = server.close_uploads()
    for request in requests:
        server.accept_reveal(clients[request.client_id].reveal(ROUND, request.link_index))
    return server, server.result(), histograms, len(requests)


def _plain(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_plain(item) for item in value)
    return isinstance(value, (int, bytes)) and not isinstance(value, bool)


# --- whole rounds ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dropped_positions", "expected_requests"),
    [
        ((), 0),
        ((4,), 2),
        ((2, 3, 4), 2),
        ((9, 0), 2),  # a run that wraps past the end of the ring
        ((1, 5, 6), 4),  # two runs
    ],
)
def test_a_round_gives_the_true_sum_of_the_survivors(
    dropped_positions: tuple[int, ...], expected_requests: int
) -> None:
    # Prepare / Execute
    server, outcome, histograms, requests = _play_round(dropped_positions)

    # Assert
    dropped = {server.ring[position] for position in dropped_positions}
    survivors = tuple(client for client in server.ring if client not in dropped)
    assert outcome.contributors == survivors
    assert outcome.histogram_sum == tuple(int(v) for v in sum(histograms[client] for client in survivors))
    assert requests == expected_requests
    assert outcome.reason == "" and outcome.round_index == ROUND


def test_a_survivor_between_two_dropouts_is_left_out_of_the_sum() -> None:
    # Prepare / Execute: positions 1 and 3 drop, so position 2 would have to reveal both its masks.
    server, outcome, histograms, _ = _play_round((1, 3))

    # Assert
    lone = server.ring[2]
    expected = [client for position, client in enumerate(server.ring) if position not in (1, 2, 3)]
    assert lone not in outcome.contributors and list(outcome.contributors) == expected
    assert outcome.histogram_sum == tuple(int(v) for v in sum(histograms[client] for client in expected))


def test_every_upload_differs_from_its_clients_histogram() -> None:
    # Prepare
    clients = _clients(CLIENT_IDS)
    histograms = _histograms(CLIENT_IDS)
    server = _server(clients)

    # Execute
    uploads = _uploads(server, clients, histograms)

    # Assert: no word of any upload equals the count it hides.
    for client, upload in uploads.items():
        assert all(word != int(count) for word, count in zip(upload.words, histograms[client], strict=True))


def test_seats_carry_only_the_neighbours_keys_and_the_masks_cancel() -> None:
    # Prepare
    clients = _clients(CLIENT_IDS)
    histograms = _histograms(CLIENT_IDS)
    server = _server(clients)

    # Execute
    seats = server.seats()
    uploads = _uploads(server, clients, histograms)

    # Assert
    ring, size = server.ring, len(server.ring)
    assert [field.name for field in dataclasses.fields(RingSeat)] == [
        "round_index", "client_id", "position", "ring_size", "predecessor_public", "successor_public", "bits",
        "num_classes",
    ]  # fmt: skip
    for client, seat in seats.items():
        assert ring[seat.position] == client and seat.ring_size == size
        assert seat.predecessor_public == clients[ring[(seat.position - 1) % size]].public_key
        assert seat.successor_public == clients[ring[(seat.position + 1) % size]].public_key
    masked_total = np.sum([upload.words for upload in uploads.values()], axis=0, dtype=np.uint64) % (1 << BITS)
    np.testing.assert_array_equal(masked_total, sum(histograms.values()))


def test_every_message_is_plain_data() -> None:
    # Prepare / Execute: a round with a dropout, so requests and reveals travel too.
    clients = _clients(CLIENT_IDS)
    server = _server(clients)
    uploads = _uploads(server, clients, _histograms(CLIENT_IDS))
    for client, upload in uploads.items():
        if client != server.ring[5]:
            server.accept_upload(upload)
    requests = server.close_uploads()
    reveals = [clients[request.client_id].reveal(ROUND, request.link_index) for request in requests]

    # Assert
    messages = [*server.seats().values(), *uploads.values(), *reveals]
    for message in messages:
        assert all(_plain(getattr(message, field.name)) for field in dataclasses.fields(message))
    assert all(_plain(tuple(request)) for request in requests)


# --- the server's refusals ---------------------------------------------------------------------------------------


def test_fewer_than_three_contributors_give_no_sum_and_no_request() -> None:
    # Prepare
    clients = _clients(CLIENT_IDS)
    server = _server(clients)
    uploads = _uploads(server, clients, _histograms(CLIENT_IDS))
    for client in server.ring[:2]:
        server.accept_upload(uploads[client])

    # Execute
    requests = server.close_uploads()

    # Assert
    outcome = server.result()
    assert requests == ()
    assert outcome.histogram_sum is None and outcome.contributors == ()
    assert "at least 3" in outcome.reason


def test_a_ring_of_two_seats_nobody_and_gives_no_sum() -> None:
    # Prepare
    clients = _clients((3, 17))

    # Execute
    server = _server(clients)

    # Assert
    assert server.seats() == {} and server.close_uploads() == ()
    outcome = server.result()
    assert outcome.histogram_sum is None and "at least 3" in outcome.reason


def test_a_late_upload_is_refused_and_not_summed() -> None:
    # Prepare
    clients = _clients(CLIENT_IDS)
    histograms = _histograms(CLIENT_IDS)
    server = _server(clients)
    uploads = _uploads(server, clients, histograms)
    late = server.ring[4]
    for client, upload in uploads.items():
        if client != late:
            server.accept_upload(upload)
    requests = server.close_uploads()

    # Execute
    with pytest.raises(LateUploadError, match=f"client {late}"):
        server.accept_upload(uploads[late])
    with pytest.raises(HalorSessionError, match=f"client {server.ring[0]} already uploaded"):
        server.accept_upload(uploads[server.ring[0]])  # a resend, not a late upload
    for request in requests:
        server.accept_reveal(clients[request.client_id].reveal(ROUND, request.link_index))

    # Assert
    outcome = server.result()
    assert server.late_uploads == (late,) and late not in outcome.contributors
    on_time = [client for client in CLIENT_IDS if client != late]
    assert outcome.histogram_sum == tuple(int(v) for v in sum(histograms[client] for client in on_time))


def test_bad_uploads_are_refused_by_client() -> None:
    # Prepare
    clients = _clients(CLIENT_IDS)
    server = _server(clients)
    uploads = _uploads(server, clients, _histograms(CLIENT_IDS))
    first = server.ring[0]
    server.accept_upload(uploads[first])
    words = uploads[server.ring[1]].words

    # Execute / Assert
    with pytest.raises(HalorSessionError, match=f"client {first} already uploaded"):
        server.accept_upload(uploads[first])
    with pytest.raises(HalorSessionError, match="not a word in"):
        server.accept_upload(MaskedUpload(ROUND, server.ring[1], (1 << BITS, *words[1:])))
    with pytest.raises(HalorSessionError, match="has 34 words, expected 35"):
        server.accept_upload(MaskedUpload(ROUND, server.ring[1], words[1:]))
    with pytest.raises(HalorSessionError, match="for round 8, this is round 7"):
        server.accept_upload(MaskedUpload(ROUND + 1, server.ring[1], words))
    with pytest.raises(HalorSessionError, match="client 5, who is not in the ring"):
        server.accept_upload(MaskedUpload(ROUND, 5, words))
    server.accept_upload(uploads[server.ring[1]])  # the refusals left the client free to upload properly


def test_reveals_are_accepted_only_as_requested_and_once() -> None:
    # Prepare: position 4 drops, so positions 3 (link 3) and 5 (link 4) are asked.
    clients = _clients(CLIENT_IDS)
    server = _server(clients)
    ring = server.ring
    for client, upload in _uploads(server, clients, _histograms(CLIENT_IDS)).items():
        if client != ring[4]:
            server.accept_upload(upload)
    requests = server.close_uploads()
    asked = {request.link_index: request.client_id for request in requests}
    assert asked == {3: ring[3], 4: ring[5]}

    # Execute / Assert
    with pytest.raises(HalorSessionError, match="not requested"):
        server.accept_reveal(clients[ring[6]].reveal(ROUND, 6))
    with pytest.raises(HalorSessionError, match="not requested"):
        server.accept_reveal(RevealedMask(ROUND, ring[3], 2, (0,) * NUM_CLASSES))
    first = clients[ring[3]].reveal(ROUND, 3)
    server.accept_reveal(first)
    with pytest.raises(HalorSessionError, match="already revealed link 3"):
        server.accept_reveal(first)
    with pytest.raises(HalorSessionError, match="waiting for masks"):
        server.result()
    server.accept_reveal(clients[ring[5]].reveal(ROUND, 4))
    assert server.result().histogram_sum is not None


def test_result_before_close_raises() -> None:
    server = _server(_clients(CLIENT_IDS))
    with pytest.raises(HalorSessionError, match="uploads are still open"):
        server.result()


def test_close_uploads_is_single_shot() -> None:
    server = _server(_clients(CLIENT_IDS))
    server.close_uploads()
    with pytest.raises(HalorSessionError, match="already closed"):
        server.close_uploads()


def test_abandon_ends_the_round_without_a_sum() -> None:
    # Prepare: a dropout, and one of the two requested reveals never comes.
    clients = _clients(CLIENT_IDS)
    server = _server(clients)
    for client, upload in _uploads(server, clients, _histograms(CLIENT_IDS)).items():
        if client != server.ring[4]:
            server.accept_upload(upload)
    first, _ = server.close_uploads()
    server.accept_reveal(clients[first.client_id].reveal(ROUND, first.link_index))

    # Execute
    server.abandon("client did not reveal in time")

    # Assert
    outcome = server.result()
    assert outcome.histogram_sum is None and outcome.contributors == ()
    assert outcome.reason == "client did not reveal in time"
    with pytest.raises(HalorSessionError, match="already over"):
        server.abandon("again")


# --- the client's refusals ---------------------------------------------------------------------------------------


def test_a_client_refuses_the_seat_of_another_client() -> None:
    clients = _clients(CLIENT_IDS)
    seats = _server(clients).seats()
    with pytest.raises(HalorSessionError, match="client 3 was given the seat of client 17"):
        clients[3].upload(seats[17], np.ones(NUM_CLASSES, dtype=np.int64))


def test_a_client_reveals_at_most_one_mask_per_round() -> None:
    # Prepare
    clients = _clients(CLIENT_IDS)
    seat = _server(clients).seats()[42]
    clients[42].upload(seat, np.ones(NUM_CLASSES, dtype=np.int64))
    clients[42].reveal(ROUND, seat.position)

    # Execute / Assert
    with pytest.raises(MaskAlreadyRevealedError):
        clients[42].reveal(ROUND, (seat.position - 1) % seat.ring_size)
    with pytest.raises(HalorSessionError, match="holds no upload of round 8"):
        clients[42].reveal(ROUND + 1, seat.position)


def test_a_client_refuses_a_link_it_does_not_end() -> None:
    clients = _clients(CLIENT_IDS)
    seat = _server(clients).seats()[42]
    clients[42].upload(seat, np.ones(NUM_CLASSES, dtype=np.int64))
    with pytest.raises(NotALinkEndError):
        clients[42].reveal(ROUND, (seat.position + 3) % seat.ring_size)


def test_a_client_uploads_once_per_round_even_after_forgetting_it() -> None:
    # Prepare: a client that keeps two rounds.
    clients = _clients(CLIENT_IDS)
    session = clients[42]
    seats = {round_index: _server(clients, round_index).seats()[42] for round_index in (1, 2, 3)}
    histogram = np.ones(NUM_CLASSES, dtype=np.int64)
    session.upload(seats[1], histogram)

    # Execute / Assert
    with pytest.raises(HalorSessionError, match="already uploaded in round 1"):
        session.upload(seats[1], histogram + 1)
    session.upload(seats[2], histogram)
    session.upload(seats[3], histogram)  # round 1 is forgotten now
    with pytest.raises(HalorSessionError, match="already uploaded in round 1"):
        session.upload(seats[1], histogram)
    with pytest.raises(HalorSessionError, match="holds no upload of round 1"):
        session.reveal(1, seats[1].position)


def test_a_refused_histogram_can_be_sent_again() -> None:
    clients = _clients(CLIENT_IDS)
    seat = _server(clients).seats()[42]
    with pytest.raises(HalorSessionError, match="the seat asks for 35 classes"):
        clients[42].upload(seat, [1, 2, 3])
    with pytest.raises(ValueError, match=r"histogram must hold values in \[0, 2\^32\)"):
        clients[42].upload(seat, [-1] * NUM_CLASSES)
    assert len(clients[42].upload(seat, [1] * NUM_CLASSES).words) == NUM_CLASSES
