"""Payload codecs: a plug-in's frozen dataclasses in and out of JSON envelope bodies, checked field by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import pytest

from fedscale_halor.plugin.payloads import DataclassCodec, MalformedPayloadError, PayloadRegistry
from fedscale_halor.transport.messages import Envelope


class Pair(NamedTuple):
    left: int
    right: float


@dataclass(frozen=True)
class Inner:
    name: str
    blob: bytes


@dataclass(frozen=True)
class Outer:
    round: int
    weights: tuple[float, ...]
    pair: Pair
    fixed: tuple[int, str]
    inner: Inner | None
    flag: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class WithDict:
    table: dict[str, int]


def test_every_supported_field_type_round_trips() -> None:
    registry = PayloadRegistry([DataclassCodec("example.outer", Outer)])
    payload = Outer(round=7, weights=(0.1, 1e-300, 3.0), pair=Pair(2, 0.5), fixed=(9, "nine"),
                    inner=Inner("x", b"\x00\xff"), flag=True, tags=("a", "b"))

    envelope = registry.wrap(payload)
    decoded = registry.unwrap(envelope)

    assert envelope.kind == "example.outer"
    assert decoded == payload
    assert isinstance(decoded, Outer) and type(decoded.pair) is Pair and type(decoded.weights) is tuple


def test_optional_fields_and_defaults() -> None:
    codec = DataclassCodec("example.outer", Outer)

    decoded = codec.decode(b'{"round": 1, "weights": [1], "pair": [1, 2], "fixed": [3, "c"], "inner": null}')

    assert decoded == Outer(1, (1.0,), Pair(1, 2.0), (3, "c"), None)
    assert type(decoded.weights[0]) is float  # a JSON integer where a float is declared becomes a float


@pytest.mark.parametrize(("body", "message"), [
    (b'{"round": 1, "weights": [1], "pair": [1], "fixed": [3, "c"], "inner": null}',
     r"example.outer.pair: expected a list of 2 items for Pair"),
    (b'{"round": 1, "weights": [1], "pair": [1, 2], "fixed": [3, "c", 4], "inner": null}',
     r"example.outer.fixed: expected 2 items, got 3"),
    (b'{"round": 1, "weights": [1], "pair": [1, 2], "fixed": [3, 4], "inner": null}',
     r"example.outer.fixed\[1\]: expected a string"),
    (b'{"round": 1, "weights": ["1"], "pair": [1, 2], "fixed": [3, "c"], "inner": null}',
     r"example.outer.weights\[0\]: expected a number"),
    (b'{"round": 1, "weights": [1], "pair": [1, 2], "fixed": [3, "c"], "inner": {"name": "x", "blob": 5}}',
     r"example.outer.inner.blob: expected base64 bytes"),
    (b'[1, 2]', r"example.outer: expected an object for Outer"),
    (b'\xff\xfe', r"the example.outer payload is not JSON"),
], ids=["short-named-tuple", "long-fixed-tuple", "wrong-item-type", "string-number", "int-for-bytes", "not-object",
        "not-utf8"])
def test_a_malformed_body_names_its_field(body: bytes, message: str) -> None:
    with pytest.raises(MalformedPayloadError, match=message):
        DataclassCodec("example.outer", Outer).decode(body)


def test_a_field_type_the_codec_cannot_read_is_refused_when_the_codec_is_made() -> None:
    with pytest.raises(TypeError, match=r"example.dict.table: dict\[str, int\] is not a type payload codecs support"):
        DataclassCodec("example.dict", WithDict)


def test_a_kind_or_a_type_registered_twice_is_refused() -> None:
    registry = PayloadRegistry([DataclassCodec("example.inner", Inner)])

    with pytest.raises(ValueError, match=r"payload kind .example\.inner. is registered twice"):
        registry.register(DataclassCodec("example.inner", Outer))
    with pytest.raises(ValueError, match=r"Inner already has the payload kind .example\.inner."):
        registry.register(DataclassCodec("example.other", Inner))


def test_an_unknown_kind_names_the_kinds_the_job_knows() -> None:
    registry = PayloadRegistry([DataclassCodec("example.inner", Inner), DataclassCodec("example.outer", Outer)])

    with pytest.raises(MalformedPayloadError, match=r"'example.nope' \(this job knows: example.inner, example.outer\)"):
        registry.unwrap(Envelope("example.nope", b"{}"))
