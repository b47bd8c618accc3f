"""The errors of payloads that cannot be taken from the wire, shared by the decoder (serde.py) and the reassembly of
chunks (chunks.py); every undecodable input ends as one of these, never as an error from deep inside a library."""

from __future__ import annotations

# Protobuf cannot serialize or parse a message of 2 GiB or more, so this is the largest limit that means anything.
DEFAULT_MAX_MESSAGE_BYTES = 2**31 - 1


class MalformedMessageError(ValueError):
    """A payload from the wire that cannot be decoded into a protocol message."""


class MessageTooLargeError(MalformedMessageError):
    """A payload over the configured maximum size, refused before it is assembled."""
