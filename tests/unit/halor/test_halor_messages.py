"""Halor's messages survive the registry and the wire unchanged, as envelopes; a malformed one is refused with the
kind and the field named."""

import json

import pytest

from fedscale_halor.halor.messages import (
    HALOR_CODECS,
    HalorKeys,
    HalorSizes,
    LabelStats,
    MaskedHistograms,
    PublicKeys,
    ResampledSizes,
    RevealedMasks,
    RevealMasks,
)
from fedscale_halor.halor.ring import MaskRequest
from fedscale_halor.halor.session import MaskedUpload, RevealedMask, RingSeat
from fedscale_halor.plugin.payloads import MalformedPayloadError, PayloadRegistry
from fedscale_halor.transport import serde
from fedscale_halor.transport.messages import ClientTrain, Envelope
from fedscale_halor.types import ResampleTarget, TrainTask

REGISTRY = PayloadRegistry(HALOR_CODECS)
_TASK = TrainTask(round=3, client_id=8, model_version=2, learning_rate=0.1, local_steps=5, batch_size=10, seed=77)


@pytest.mark.parametrize("question", [
    HalorKeys(3, (1, 5, 2**40)),
    LabelStats(3, (RingSeat(3, 5, 1, 4, b"p" * 32, b"s" * 32, 64, 62), RingSeat(3, 6, 2, 4, b"q" * 32, b"r" * 32,
                                                                                   64, 62))),
    RevealMasks(3, (MaskRequest(5, 0), MaskRequest(9, 3))),
    HalorSizes(0, ResampleTarget((0.5, 0.25, 0.25), "under"), (3, 1, 40000)),
], ids=["keys", "label_stats", "reveal", "sizes"])
def test_halor_questions_cross_the_wire_as_envelopes(question: object) -> None:
    envelope = REGISTRY.wrap(question)

    received = serde.event_from_bytes(serde.event_to_bytes(envelope))

    assert isinstance(received, Envelope) and received.kind.startswith("halor.")
    assert REGISTRY.unwrap(received) == question


@pytest.mark.parametrize("answer", [
    PublicKeys(3, ((1, b"k" * 32), (2, b"j" * 32)), declined=(4,)),
    MaskedHistograms(3, (MaskedUpload(3, 1, (2**64 - 1, 0, 5)),), declined=(9,)),
    RevealedMasks(3, (RevealedMask(3, 1, 2, (1, 2**63)),)),
    ResampledSizes(0, ((3, 17), (1, 0), (40000, 123456)), declined=(8,)),
], ids=["keys", "uploads", "masks", "sizes"])
def test_halor_answers_cross_the_wire_as_envelopes(answer: object) -> None:
    received = serde.completion_from_bytes(serde.completion_to_bytes(REGISTRY.wrap(answer)))

    assert isinstance(received, Envelope)
    assert REGISTRY.unwrap(received) == answer


def test_the_resampling_target_travels_as_a_hint_of_the_training_event() -> None:
    target = ResampleTarget((0.25, 0.5, 0.25), "over")
    event = ClientTrain(3, 2, (_TASK,), hints=(REGISTRY.wrap(target),))

    received = serde.event_from_bytes(serde.event_to_bytes(event))

    assert received == event
    assert isinstance(received, ClientTrain) and [REGISTRY.unwrap(hint) for hint in received.hints] == [target]


def test_words_and_keys_are_decoded_as_python_ints_and_bytes() -> None:
    # the sessions check word types: no float, numpy or protobuf container may reach them
    decoded = REGISTRY.unwrap(REGISTRY.wrap(MaskedHistograms(3, (MaskedUpload(3, 1, (7, 2**64 - 1)),))))
    keys = REGISTRY.unwrap(REGISTRY.wrap(PublicKeys(3, ((1, b"\x00" * 32),))))

    assert isinstance(decoded, MaskedHistograms) and type(decoded.uploads[0].words) is tuple
    assert [type(word) for word in decoded.uploads[0].words] == [int, int]
    assert isinstance(keys, PublicKeys) and keys.keys == ((1, b"\x00" * 32),)


@pytest.mark.parametrize(("body", "message"), [
    (b'{"round": 1, "uploads": [{"round_index": 1, "client_id": 2, "words": [1, 2.5]}]}',
     r"halor.masked_histograms\.uploads\[0\]\.words\[1\]: expected an integer"),
    (b'{"round": 1, "uploads": [{"round_index": 1, "client_id": 2}]}', "missing field 'words'"),
    (b'{"round": 1, "uploads": [], "extra": 3}', r"unknown field\(s\) \['extra'\]"),
    (b'{"round": 1, "uploads": [{"round_index": 1, "cli', "halor.masked_histograms payload is not JSON"),
    (b'{"round": true, "uploads": []}', r"\.round: expected an integer"),
], ids=["float-word", "missing-field", "unknown-field", "truncated", "bool-for-int"])
def test_a_malformed_upload_is_refused_with_its_kind_and_field(body: bytes, message: str) -> None:
    with pytest.raises(MalformedPayloadError, match=message):
        REGISTRY.unwrap(Envelope("halor.masked_histograms", body))


def test_a_key_that_is_not_base64_is_refused() -> None:
    body = json.dumps({"round": 1, "keys": [[1, "not base64!"]]}).encode()

    with pytest.raises(MalformedPayloadError, match=r"halor.public_keys\.keys\[0\]\[1\]: not base64"):
        REGISTRY.unwrap(Envelope("halor.public_keys", body))


def test_a_job_without_halor_refuses_its_messages_by_kind() -> None:
    plain = PayloadRegistry()

    with pytest.raises(MalformedPayloadError, match=r"unknown payload kind 'halor.keys' \(this job knows: none\)"):
        plain.unwrap(REGISTRY.wrap(HalorKeys(1, (2,))))
    with pytest.raises(TypeError, match="no payload codec is registered for HalorKeys"):
        plain.wrap(HalorKeys(1, (2,)))
