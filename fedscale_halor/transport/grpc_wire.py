"""What the gRPC server and client must agree on: the metadata key of the job token and the channel options."""

from __future__ import annotations

TOKEN_METADATA_KEY = "x-fedscale-token"

# Only chunks (and the small Register messages) cross the wire, so the per-message limit follows the chunk size;
# it never drops below gRPC's own default, so peers configured with slightly different chunk sizes still talk.
_GRPC_DEFAULT_MESSAGE_BYTES = 4 * 1024 * 1024
_CHUNK_ENVELOPE_BYTES = 64 * 1024

# Executors ping during calls so a silently dropped connection fails in seconds, not at TCP's timeout (minutes);
# the server accepts pings at that rate instead of answering them with GOAWAY "too_many_pings".
_CLIENT_KEEPALIVE_MS = 30_000
_KEEPALIVE_TIMEOUT_MS = 20_000


def message_limit(chunk_bytes: int) -> int:
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    return max(chunk_bytes + _CHUNK_ENVELOPE_BYTES, _GRPC_DEFAULT_MESSAGE_BYTES)


def _message_limit_options(chunk_bytes: int) -> list[tuple[str, int]]:
    limit = message_limit(chunk_bytes)
    return [("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)]


def server_options(chunk_bytes: int) -> list[tuple[str, int]]:
    return [
        *_message_limit_options(chunk_bytes),
        ("grpc.http2.min_ping_interval_without_data_ms", _CLIENT_KEEPALIVE_MS // 2),
        ("grpc.so_reuseport", 0),  # two aggregators on one port must fail to bind, not share the traffic
    ]


def client_options(chunk_bytes: int, reconnect_backoff_max_ms: int) -> list[tuple[str, int]]:
    return [
        *_message_limit_options(chunk_bytes),
        ("grpc.keepalive_time_ms", _CLIENT_KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", _KEEPALIVE_TIMEOUT_MS),
        # an executor started before its aggregator should notice it within about a second of it coming up
        ("grpc.initial_reconnect_backoff_ms", min(100, reconnect_backoff_max_ms)),
        ("grpc.max_reconnect_backoff_ms", reconnect_backoff_max_ms),
    ]
