"""What the gRPC server and client must agree on: the service's name, the metadata key of the job token, and the
channel options, among them the client's retry policy."""

from __future__ import annotations

import json

from fedscale_halor.transport.proto import aggregator_pb2 as pb

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["Aggregator"].full_name
TOKEN_METADATA_KEY = "x-fedscale-token"

# Transient failures are retried by gRPC itself, from this policy in the channel's service config: an aggregator
# that restarts its listener or sheds a call is tried again after 0.1, 0.2, 0.4 and 0.8 s (each delay drawn at
# random below that bound, as gRPC's backoff does), and the call fails only after the fifth attempt (gRPC allows no
# more). What this covers and what it does not:
# - Register (unary) is retried whole.
# - Submit (client streaming) is left out and sent again whole by GrpcTransport once the aggregator answers. gRPC
#   replays a streamed call from its per-call retry buffer (grpc.per_rpc_retry_buffer_size, 256 KiB by default),
#   and with grpcio 1.85 a model update that outgrew the buffer while its first attempt was being refused was now
#   and then replayed without its first chunks (the aggregator refused it as truncated) or aborted the process.
# - NextEvent (server streaming) is left out: with grpcio 1.85, a poll that a stopping server answered with
#   UNAVAILABLE and whose retries then ran out never completed (its iterator blocked for good). GrpcTransport polls
#   again once the channel connects, and polling is idempotent until an event is handed out. (A stream that breaks
#   after its first chunk would not be retried by any policy: the call is committed by then.)
# - A deadline set on a call bounds all its attempts together, so DEADLINE_EXCEEDED is retried only when the
#   server (or a proxy) reported it; the executor's own calls set none, since a model may take long to stream.
RETRIED_METHODS = ("Register",)
RETRY_MAX_ATTEMPTS = 5
RETRY_POLICY = {
    "maxAttempts": RETRY_MAX_ATTEMPTS,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE", "DEADLINE_EXCEEDED"],
}

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


def service_config() -> str:
    names = [{"service": SERVICE_NAME, "method": method} for method in RETRIED_METHODS]
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": RETRY_POLICY}]})


def client_options(chunk_bytes: int, reconnect_backoff_max_ms: int) -> list[tuple[str, int | str]]:
    return [
        *_message_limit_options(chunk_bytes),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config()),
        ("grpc.keepalive_time_ms", _CLIENT_KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", _KEEPALIVE_TIMEOUT_MS),
        # an executor started before its aggregator should notice it within about a second of it coming up
        ("grpc.initial_reconnect_backoff_ms", min(100, reconnect_backoff_max_ms)),
        ("grpc.max_reconnect_backoff_ms", reconnect_backoff_max_ms),
    ]
