"""The question-and-answer steps of Halor's pre-round protocol: who gets which question, and what counts as settled."""

from fedscale_halor.halor.messages import HalorKeys, PublicKeys, RevealedMasks, RevealMasks
from fedscale_halor.halor.ring import MaskRequest
from fedscale_halor.halor.session import RevealedMask
from fedscale_halor.server.exchange import Exchange

KEY = b"k" * 32


def _key_exchange(clients: list[int]) -> Exchange:
    return Exchange(PublicKeys, 4, {client: client for client in clients},
                    lambda round_, ids: HalorKeys(round_, tuple(ids)))


def test_undirected_questions_are_shared_among_the_live_executors_in_order() -> None:
    # Prepare: 5 questions, 2 live executors
    exchange = _key_exchange([10, 11, 12, 13, 14])

    # Execute
    first = exchange.take("a", live_executors=2)
    second = exchange.take("b", live_executors=2)
    third = exchange.take("a", live_executors=2)
    fourth = exchange.take("b", live_executors=2)

    # Assert: ceil(5/2) = 3, then ceil(2/2) = 1 and 1, then nothing is left
    assert first == HalorKeys(4, (10, 11, 12))
    assert second == HalorKeys(4, (13,))
    assert third == HalorKeys(4, (14,))
    assert fourth is None


def test_answers_count_only_from_the_executor_asked_and_settle_the_step() -> None:
    # Prepare
    exchange = _key_exchange([1, 2])
    exchange.take("a", live_executors=1)

    # Execute: "b" answers for client 1 unasked; "a" answers for 1 and declines 2
    strays = exchange.accept("b", PublicKeys(4, ((1, KEY),)))
    settled_before = exchange.is_settled
    exchange.accept("a", PublicKeys(4, ((1, KEY),), declined=(2,)))

    # Assert
    assert strays == [1]
    assert not settled_before
    assert exchange.is_settled
    outcome = exchange.outcome()
    assert outcome.answers == {1: KEY}
    assert outcome.answered_by == {1: "a"}
    assert outcome.declined == (2,)
    assert outcome.unanswered == ()


def test_answers_of_another_round_or_kind_are_not_expected() -> None:
    exchange = _key_exchange([1])

    assert exchange.expects(PublicKeys(4, ()))
    assert not exchange.expects(PublicKeys(5, ()))
    assert not exchange.expects(RevealedMasks(4, ()))


def test_routed_questions_go_only_to_their_executor_and_die_with_it() -> None:
    # Prepare: client 7's reveal must come from "a", client 8's from "b"
    requests = {7: MaskRequest(7, 0), 8: MaskRequest(8, 2)}
    exchange = Exchange(RevealedMasks, 4, requests, lambda round_, asked: RevealMasks(round_, tuple(asked)),
                        route={7: "a", 8: "b"})

    # Execute
    to_c = exchange.take("c", live_executors=3)
    to_a = exchange.take("a", live_executors=3)
    exchange.executor_died("b")
    exchange.accept("a", RevealedMasks(4, (RevealedMask(4, 7, 0, (1, 2)),)))

    # Assert: "c" gets nothing; "b"'s question can never be answered, so the step settles without it
    assert to_c is None
    assert to_a == RevealMasks(4, (MaskRequest(7, 0),))
    assert exchange.is_settled
    assert exchange.outcome().declined == (8,)
    assert set(exchange.outcome().answers) == {7}


def test_a_dead_executors_undirected_questions_go_back_to_the_queue() -> None:
    # Prepare
    exchange = _key_exchange([1, 2, 3])
    exchange.take("a", live_executors=1)

    # Execute
    exchange.executor_died("a")
    retaken = exchange.take("b", live_executors=1)

    # Assert
    assert retaken == HalorKeys(4, (1, 2, 3))
    assert exchange.outcome().declined == ()
    assert exchange.outcome().unanswered == (1, 2, 3)
