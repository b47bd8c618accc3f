"""A plug-in's own messages: payload codecs, registered by kind, carried in the protocol's one generic envelope.

A plug-in declares its messages as frozen dataclasses in its own package and a codec for each (usually a
``DataclassCodec``); the launcher registers the job's plug-ins' codecs in one ``PayloadRegistry``, which the work
board and the executors use to wrap payloads into ``Envelope`` and back. The transports carry envelopes without
knowing what is in them. Bodies are JSON, so nothing from the network is unpickled; decoding checks every field's
type and names the kind and the field when one is wrong.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from fedscale_halor.transport.messages import Envelope
from fedscale_halor.transport.wire_errors import MalformedMessageError

_Payload = TypeVar("_Payload")


class MalformedPayloadError(MalformedMessageError):
    """An envelope whose kind no codec knows, or whose body its codec cannot decode."""


class PayloadCodec(ABC, Generic[_Payload]):
    """Turns one payload type into an envelope body and back; ``kind`` is unique within a registry."""

    kind: str
    payload_type: type[_Payload]

    @abstractmethod
    def encode(self, payload: _Payload) -> bytes: ...

    @abstractmethod
    def decode(self, body: bytes) -> _Payload:
        """Raise ``MalformedPayloadError`` for a body that is not a valid payload of this kind."""


class DataclassCodec(PayloadCodec[_Payload]):
    """JSON for a frozen dataclass whose fields are ints, floats, strings, bools, bytes (base64), optionals, tuples
    (``tuple[X, ...]`` or fixed), named tuples and such dataclasses, nested."""

    def __init__(self, kind: str, payload_type: type[_Payload]) -> None:
        if not dataclasses.is_dataclass(payload_type):
            raise TypeError(f"payload kind {kind!r}: {payload_type.__name__} is not a dataclass")
        _check_supported(payload_type, kind)
        self.kind = kind
        self.payload_type = payload_type

    def encode(self, payload: _Payload) -> bytes:
        if type(payload) is not self.payload_type:
            raise TypeError(f"payload kind {self.kind!r} encodes {self.payload_type.__name__}, "
                            f"not {type(payload).__name__}")
        return json.dumps(_to_json(payload), separators=(",", ":")).encode()

    def decode(self, body: bytes) -> _Payload:
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise MalformedPayloadError(f"the {self.kind} payload is not JSON: {error}") from None
        return typing.cast(_Payload, _from_json(document, self.payload_type, self.kind))


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _to_json(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple | list):
        return [_to_json(item) for item in value]
    return value


def _from_json(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return _from_json(value, inner, where)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise MalformedPayloadError(f"{where}: expected an object for {annotation.__name__}")
        hints = typing.get_type_hints(annotation)
        fields = {field.name: field for field in dataclasses.fields(annotation)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise MalformedPayloadError(f"{where}: unknown field(s) {unknown} for {annotation.__name__}")
        arguments = {}
        for name, field in fields.items():
            if name in value:
                arguments[name] = _from_json(value[name], hints[name], f"{where}.{name}")
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise MalformedPayloadError(f"{where}: missing field {name!r} of {annotation.__name__}")
        return annotation(**arguments)
    if _is_named_tuple(annotation):
        hints = typing.get_type_hints(annotation)
        if not isinstance(value, list) or len(value) != len(annotation._fields):
            raise MalformedPayloadError(f"{where}: expected a list of {len(annotation._fields)} items for "
                                        f"{annotation.__name__}")
        return annotation(*(_from_json(item, hints[name], f"{where}.{name}")
                            for name, item in zip(annotation._fields, value, strict=True)))
    if origin is tuple:
        arguments = typing.get_args(annotation)
        if not isinstance(value, list):
            raise MalformedPayloadError(f"{where}: expected a list")
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(_from_json(item, arguments[0], f"{where}[{index}]") for index, item in enumerate(value))
        if len(value) != len(arguments):
            raise MalformedPayloadError(f"{where}: expected {len(arguments)} items, got {len(value)}")
        return tuple(_from_json(item, argument, f"{where}[{index}]")
                     for index, (item, argument) in enumerate(zip(value, arguments, strict=True)))
    if annotation is bool:
        if not isinstance(value, bool):
            raise MalformedPayloadError(f"{where}: expected true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedPayloadError(f"{where}: expected an integer")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MalformedPayloadError(f"{where}: expected a number")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise MalformedPayloadError(f"{where}: expected a string")
        return value
    if annotation is bytes:
        if not isinstance(value, str):
            raise MalformedPayloadError(f"{where}: expected base64 bytes")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as error:
            raise MalformedPayloadError(f"{where}: not base64: {error}") from None
    raise TypeError(f"{where}: {annotation!r} is not a type payload codecs support")


_SCALARS = (bool, int, float, str, bytes)


def _is_named_tuple(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, tuple) and hasattr(annotation, "_fields")


def _check_supported(annotation: Any, where: str) -> None:
    """Refuse, when the codec is made, a field type that decoding would not know."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(annotation) if option is not type(None)]
        if len(options) != 1:
            raise TypeError(f"{where}: only optional types (X | None) are supported, not {annotation!r}")
        _check_supported(options[0], where)
    elif dataclasses.is_dataclass(annotation):
        for name, hint in typing.get_type_hints(annotation).items():
            if name in {field.name for field in dataclasses.fields(annotation)}:
                _check_supported(hint, f"{where}.{name}")
    elif _is_named_tuple(annotation):
        for name, hint in typing.get_type_hints(annotation).items():
            _check_supported(hint, f"{where}.{name}")
    elif origin is tuple:
        for argument in typing.get_args(annotation):
            if argument is not Ellipsis:
                _check_supported(argument, where)
    elif annotation not in _SCALARS:
        raise TypeError(f"{where}: {annotation!r} is not a type payload codecs support")


class PayloadRegistry:
    """The codecs of a job's plug-ins, by kind and by payload type."""

    def __init__(self, codecs: Iterable[PayloadCodec[Any]] = ()) -> None:
        self._by_kind: dict[str, PayloadCodec[Any]] = {}
        self._by_type: dict[type, PayloadCodec[Any]] = {}
        for codec in codecs:
            self.register(codec)

    def register(self, codec: PayloadCodec[Any]) -> None:
        if codec.kind in self._by_kind:
            raise ValueError(f"payload kind {codec.kind!r} is registered twice")
        if codec.payload_type in self._by_type:
            raise ValueError(f"{codec.payload_type.__name__} already has the payload kind "
                             f"{self._by_type[codec.payload_type].kind!r}")
        self._by_kind[codec.kind] = codec
        self._by_type[codec.payload_type] = codec

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_kind))

    def wrap(self, payload: object) -> Envelope:
        codec = self._by_type.get(type(payload))
        if codec is None:
            raise TypeError(f"no payload codec is registered for {type(payload).__name__}; the plug-in that sends it "
                            "must register its codecs with the job's payload registry")
        return Envelope(codec.kind, codec.encode(payload))

    def unwrap(self, envelope: Envelope) -> object:
        codec = self._by_kind.get(envelope.kind)
        if codec is None:
            known = ", ".join(self.kinds) or "none"
            raise MalformedPayloadError(f"unknown payload kind {envelope.kind!r} (this job knows: {known})")
        return codec.decode(envelope.body)
