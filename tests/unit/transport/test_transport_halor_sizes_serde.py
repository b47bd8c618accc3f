"""Halor's resampled-size exchange survives the wire: the question with its target, the answer with its sizes."""

from fedscale_halor.transport.messages import HalorSizes, ResampledSizes
from fedscale_halor.transport.serde import completion_from_bytes, completion_to_bytes, event_from_bytes, event_to_bytes
from fedscale_halor.types import ResampleTarget


def test_the_size_question_round_trips() -> None:
    question = HalorSizes(0, ResampleTarget((0.5, 0.25, 0.25), "under"), (3, 1, 40000))

    assert event_from_bytes(event_to_bytes(question)) == question


def test_the_size_answer_round_trips_with_its_declined_clients() -> None:
    answer = ResampledSizes(0, ((3, 17), (1, 0), (40000, 123456)), declined=(8,))

    decoded = completion_from_bytes(completion_to_bytes(answer))

    assert decoded == answer
    assert isinstance(decoded, ResampledSizes) and decoded.by_client() == {3: 17, 1: 0, 40000: 123456}
