"""Chained (ring) masking of label histograms (docs/halor.md, "One round"): keys, link seeds, masks, masking and
unmasking.

The server learns H = Σ h_i over a round's clients and nothing else about any single h_i. Neighbours c_i and
c_{i+1} share the mask r_i of link i, derived from their X25519 agreement; c_i uploads y_i = h_i + r_{i-1} - r_i
(mod 2^b) and the masks cancel around the ring. ring.py holds the order, the dropout correction and its derivation.

Encodings and primitives:
- link seed: HKDF-SHA256 (no salt, that is RFC 5869's zero salt) over the X25519 shared secret, 32 bytes, with
  info = b"halor" ‖ round (8 bytes, big-endian, unsigned) ‖ link index (4 bytes, big-endian, unsigned); the round in
  the info makes every round's masks fresh although the key pairs stay.
- mask: AES-256-CTR keystream under the link seed as key with an all-zero initial counter block, read as C
  little-endian 64-bit words and reduced mod 2^b by keeping the low b bits; 2^b divides 2^64, so the words stay
  uniform. Each seed keys exactly one stream, so the fixed counter block never repeats under a key.
- arithmetic: uint64 arrays, which wrap mod 2^64, then the low b bits; results are exact mod 2^b, so b must leave
  room for the largest possible sum (K times the largest class count).
- signed words (for histograms carrying noise, docs/halor.md "Privacy over a whole run"): a signed value v travels as
  v mod 2^b (two's complement in b bits) and a sum is lifted back to the centered range [-2^(b-1), 2^(b-1)), exact
  while the true signed sum stays inside it.
- noise seed: HKDF-SHA256 over the client's raw X25519 private key with info = b"halor-noise" ‖ round (8 bytes), so
  the noise is as secret as the key and fresh every round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from fedscale_halor.halor.ring import (
    HalorProtocolError,
    MaskRequest,
    NotEnoughSurvivorsError,
    RecoveryPlan,
    RingTooSmallError,
    check_ring,
    check_ring_size,
    encode_unsigned,
    plan_recovery,
    recovery_requests,
    ring_order,
)

__all__ = [
    "ClientKeys",
    "ClientRingSide",
    "HalorProtocolError",
    "MaskAlreadyRevealedError",
    "MaskRequest",
    "NotALinkEndError",
    "NotEnoughSurvivorsError",
    "RecoveryPlan",
    "RingTooSmallError",
    "apply_ring_masks",
    "encode_signed",
    "lift_signed",
    "link_mask",
    "link_seed",
    "noise_seed",
    "plan_recovery",
    "recovery_requests",
    "ring_order",
    "simulated_client_keys",
    "sum_masked",
    "unmask",
]

KEY_BYTES = 32
SEED_BYTES = 32
_WORD_BYTES = 8


class MaskAlreadyRevealedError(HalorProtocolError):
    """The client already revealed a mask this round; a second one could unmask its own histogram."""


class NotALinkEndError(HalorProtocolError, ValueError):
    """The client was asked for the mask of a link it is not an end of."""


@dataclass(frozen=True)
class ClientKeys:
    """A client's X25519 key pair; ``public_key`` is the raw 32-byte encoding that travels."""

    private_key: X25519PrivateKey = field(repr=False, compare=False)
    public_key: bytes

    @classmethod
    def from_private_key(cls, private_key: X25519PrivateKey) -> ClientKeys:
        return cls(private_key, private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @classmethod
    def generate(cls) -> ClientKeys:
        """Fresh keys from the operating system's randomness, as a real device makes them."""
        return cls.from_private_key(X25519PrivateKey.generate())

    def shared_secret(self, peer_public: bytes) -> bytes:
        if len(peer_public) != KEY_BYTES:
            raise ValueError(f"an X25519 public key has {KEY_BYTES} bytes, got {len(peer_public)}")
        return self.private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))


def simulated_client_keys(job_seed: int, client_id: int) -> ClientKeys:
    """Reproducible keys for simulation: the private key is SHA-256 of (job seed, client id).

    Anyone who knows the job seed knows every key, so this is for simulation only; a real deployment generates the
    key on the device (ClientKeys.generate) and only the public key leaves it.
    """
    if isinstance(job_seed, bool) or not isinstance(job_seed, int):
        raise TypeError(f"job_seed must be an int, got {type(job_seed).__name__}")
    material = hashlib.sha256(
        b"halor-simulated-x25519"
        + job_seed.to_bytes(16, "big", signed=True)
        + encode_unsigned(client_id, 8, "client_id")
    ).digest()
    return ClientKeys.from_private_key(X25519PrivateKey.from_private_bytes(material))


def link_seed(own: ClientKeys, peer_public: bytes, round_index: int, link_index: int) -> bytes:
    """The 32-byte seed of link ``link_index`` in round ``round_index``; both ends of the link derive the same."""
    info = b"halor" + encode_unsigned(round_index, 8, "round_index") + encode_unsigned(link_index, 4, "link_index")
    return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=info).derive(
        own.shared_secret(peer_public)
    )


def noise_seed(own: ClientKeys, round_index: int) -> bytes:
    """The 32-byte seed of the client's noise in round ``round_index``, derived from its private key alone.

    Nobody else holds the private key (in a real deployment it never leaves the device), so neither the server nor
    the ring neighbours can predict or subtract the noise; in simulation it follows from the job seed and client id
    like the key itself.
    """
    info = b"halor-noise" + encode_unsigned(round_index, 8, "round_index")
    secret = own.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=info).derive(secret)


def encode_signed(values: np.ndarray, bits: int) -> np.ndarray:
    """Signed integers as words mod 2^bits (two's complement); each must lie in [-2^(bits-1), 2^(bits-1))."""
    _check_bits(bits)
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        raise TypeError(f"signed values must be integers, got dtype {array.dtype}")
    half = 1 << (bits - 1)
    if array.size and (int(array.min()) < -half or int(array.max()) >= half):
        raise ValueError(f"signed values must lie in [-2^{bits - 1}, 2^{bits - 1}) to survive a lift from {bits}-bit "
                         "words")
    # int64 → uint64 wraps negatives to 2^64 - |v|; 2^bits divides 2^64, so the low bits are v mod 2^bits
    return array.astype(np.int64).astype(np.uint64) & _low_bits(bits)


def lift_signed(words: np.ndarray, bits: int) -> np.ndarray:
    """Words mod 2^bits back to signed integers in [-2^(bits-1), 2^(bits-1)) (int64): the inverse of encode_signed,
    and the exact signed sum of encoded values whenever that sum lies in the range."""
    _check_bits(bits)
    unsigned = np.asarray(words, dtype=np.uint64) & _low_bits(bits)
    if bits == 64:
        return unsigned.view(np.int64).copy()
    half = 1 << (bits - 1)
    signed = unsigned.astype(np.int64)
    # v - 2^bits written as (v - half) - half, which stays inside int64 for bits = 63
    return np.where(signed >= half, (signed - half) - half, signed)


def link_mask(seed: bytes, num_classes: int, bits: int) -> np.ndarray:
    """``num_classes`` uniform words mod 2^bits (uint64) from the AES-256-CTR keystream under ``seed``."""
    _check_bits(bits)
    if len(seed) != SEED_BYTES:
        raise ValueError(f"a link seed has {SEED_BYTES} bytes, got {len(seed)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()
    keystream = encryptor.update(bytes(_WORD_BYTES * num_classes)) + encryptor.finalize()
    return np.frombuffer(keystream, dtype="<u8").astype(np.uint64) & _low_bits(bits)


def apply_ring_masks(histogram: np.ndarray, incoming: np.ndarray, outgoing: np.ndarray, bits: int) -> np.ndarray:
    """y = histogram + incoming - outgoing (mod 2^bits), elementwise: a client's upload from its two link masks."""
    _check_bits(bits)
    counts = _as_words(histogram, bits, "histogram")
    incoming_words = _as_words(incoming, bits, "incoming mask", length=len(counts))
    outgoing_words = _as_words(outgoing, bits, "outgoing mask", length=len(counts))
    return (counts + incoming_words - outgoing_words) & _low_bits(bits)


class ClientRingSide:
    """One client's part of the protocol in one round: its upload and at most one revealed mask."""

    def __init__(
        self,
        keys: ClientKeys,
        round_index: int,
        position: int,
        ring_size: int,
        predecessor_public: bytes,
        successor_public: bytes,
    ) -> None:
        check_ring_size(ring_size)
        if not 0 <= position < ring_size:
            raise ValueError(f"position must be in [0, {ring_size}), got {position}")
        self._keys = keys
        self.round_index = round_index
        self.position = position
        self.ring_size = ring_size
        self.incoming_link = (position - 1) % ring_size
        self.outgoing_link = position
        self._incoming_seed = link_seed(keys, predecessor_public, round_index, self.incoming_link)
        self._outgoing_seed = link_seed(keys, successor_public, round_index, self.outgoing_link)
        self._mask_shape: tuple[int, int] | None = None
        self._revealed_link: int | None = None

    @classmethod
    def for_ring(
        cls, keys: ClientKeys, round_index: int, ring: Sequence[int], client_id: int, public_keys: Mapping[int, bytes]
    ) -> ClientRingSide:
        """The side of ``client_id`` in ``ring``, with its neighbours' keys looked up in ``public_keys``."""
        check_ring(ring)
        if client_id not in ring:
            raise ValueError(f"client {client_id} is not in the ring {list(ring)}")
        position = list(ring).index(client_id)
        size = len(ring)
        predecessor, successor = ring[(position - 1) % size], ring[(position + 1) % size]
        return cls(keys, round_index, position, size, public_keys[predecessor], public_keys[successor])

    def masked_histogram(self, histogram: np.ndarray, bits: int) -> np.ndarray:
        """y_i = h_i + r_{i-1} - r_i (mod 2^bits) for a histogram of non-negative counts below 2^bits."""
        counts = _as_words(histogram, bits, "histogram")
        self._mask_shape = (len(counts), bits)
        incoming = link_mask(self._incoming_seed, len(counts), bits)
        outgoing = link_mask(self._outgoing_seed, len(counts), bits)
        return apply_ring_masks(counts, incoming, outgoing, bits)

    def reveal_mask(self, link_index: int) -> np.ndarray:
        """The mask of one of this client's two links, once per round; any later request is refused."""
        if self._revealed_link is not None:
            raise MaskAlreadyRevealedError(
                f"client at position {self.position} already revealed the mask of link {self._revealed_link} in "
                f"round {self.round_index}; it withdraws rather than reveal another"
            )
        if link_index not in (self.incoming_link, self.outgoing_link):
            raise NotALinkEndError(
                f"client at position {self.position} ends links {self.incoming_link} and {self.outgoing_link}, "
                f"not link {link_index}"
            )
        if self._mask_shape is None:
            raise HalorProtocolError("a client reveals a mask only after it uploaded its masked histogram")
        num_classes, bits = self._mask_shape
        self._revealed_link = link_index
        seed = self._incoming_seed if link_index == self.incoming_link else self._outgoing_seed
        return link_mask(seed, num_classes, bits)


def sum_masked(masked: Mapping[int, np.ndarray], ring: Sequence[int], bits: int) -> np.ndarray:
    """Σ y_i (mod 2^bits) over the given uploads of ring clients; equals H when every client of the ring uploaded."""
    _check_bits(bits)
    check_ring(ring)
    strangers = set(masked).difference(ring)
    if strangers:
        raise ValueError(f"uploads from clients outside the ring: {sorted(strangers)}")
    if not masked:
        raise ValueError("no uploads to sum")
    uploads = [_as_words(masked[client], bits, f"upload of client {client}") for client in masked]
    lengths = {len(upload) for upload in uploads}
    if len(lengths) != 1:
        raise ValueError(f"uploads differ in length: {sorted(lengths)}")
    return np.sum(np.stack(uploads), axis=0, dtype=np.uint64) & _low_bits(bits)


def unmask(
    masked: Mapping[int, np.ndarray], ring: Sequence[int], revealed: Mapping[int, np.ndarray], bits: int
) -> np.ndarray:
    """H = Σ h_i (mod 2^bits) over the contributors of plan_recovery(ring, masked): the survivors, less any whose
    two neighbours both dropped. ``revealed`` maps each requested link index to its mask.

    Raises NotEnoughSurvivorsError with fewer than three contributors (the round keeps the previous distribution).
    """
    plan = plan_recovery(ring, masked)
    needed = {request.link_index for request in plan.requests}
    if set(revealed) != needed:
        raise ValueError(
            f"revealed masks are for links {sorted(revealed)}, the recovery plan needs links {sorted(needed)}"
        )
    total = sum_masked({client: masked[client] for client in plan.contributors}, ring, bits)
    for link in plan.added_links:
        total = total + _as_words(revealed[link], bits, f"mask of link {link}", length=len(total))
    for link in plan.subtracted_links:
        total = total - _as_words(revealed[link], bits, f"mask of link {link}", length=len(total))
    return total & _low_bits(bits)


def _check_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64:
        raise ValueError(f"bits must be an int in [1, 64], got {bits!r}")


def _low_bits(bits: int) -> np.uint64:
    return np.uint64((1 << bits) - 1)


def _as_words(values: np.ndarray, bits: int, name: str, length: int | None = None) -> np.ndarray:
    """``values`` as uint64 words after checking they are integers in [0, 2^bits) of the expected length."""
    _check_bits(bits)
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.ndim != 1 or len(array) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if length is not None and len(array) != length:
        raise ValueError(f"{name} has {len(array)} entries, expected {length}")
    if int(array.min()) < 0 or int(array.max()) >= 1 << bits:
        raise ValueError(f"{name} must hold values in [0, 2^{bits})")
    return array.astype(np.uint64)
