"""TLS settings of the gRPC transport, built from the job config's PEM file paths.

A missing file is reported with the config key that named it, so a user knows which line of the job config to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc


class TlsConfigError(ValueError):
    """A TLS file that is missing, unreadable, or a half-configured certificate / key pair."""


def _require_file(path: str | Path, config_key: str) -> None:
    if not Path(path).is_file():
        raise TlsConfigError(f"{config_key}: no such file: {path}")


def _read_pem(path: str | Path, config_key: str) -> bytes:
    _require_file(path, config_key)
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise TlsConfigError(f"{config_key}: cannot read {path}: {error}") from error


@dataclass(frozen=True)
class ServerTls:
    """The aggregator's certificate chain and private key (PEM)."""

    cert_file: str | Path
    key_file: str | Path

    def __post_init__(self) -> None:
        _require_file(self.cert_file, "tls_cert_file")
        _require_file(self.key_file, "tls_key_file")

    def credentials(self) -> grpc.ServerCredentials:
        certificate = _read_pem(self.cert_file, "tls_cert_file")
        private_key = _read_pem(self.key_file, "tls_key_file")
        return grpc.ssl_server_credentials([(private_key, certificate)])


@dataclass(frozen=True)
class ClientTls:
    """The certificate an executor trusts for the aggregator, and the host name that certificate is checked against
    when it differs from the address dialled (e.g. a certificate for "aggregator.lab" reached by IP address)."""

    ca_file: str | Path
    server_name_override: str | None = None

    def __post_init__(self) -> None:
        _require_file(self.ca_file, "tls_ca_file")

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=_read_pem(self.ca_file, "tls_ca_file"))

    def channel_options(self) -> list[tuple[str, str]]:
        if not self.server_name_override:
            return []
        return [("grpc.ssl_target_name_override", self.server_name_override)]


def server_tls_from_settings(tls_cert_file: str, tls_key_file: str) -> ServerTls | None:
    """The aggregator's TLS from the job config's keys; None (plain TCP) when neither is set."""
    if not tls_cert_file and not tls_key_file:
        return None
    if not tls_cert_file or not tls_key_file:
        missing = "tls_cert_file" if not tls_cert_file else "tls_key_file"
        raise TlsConfigError(f"{missing} is empty: TLS needs both tls_cert_file and tls_key_file")
    return ServerTls(tls_cert_file, tls_key_file)


def client_tls_from_settings(tls_ca_file: str, tls_cert_file: str,
                             server_name_override: str | None = None) -> ClientTls | None:
    """An executor's TLS from the job config's keys: it trusts tls_ca_file, or else the aggregator's own certificate
    (self-signed deployments); None (plain TCP) when neither is set."""
    if tls_ca_file:
        return ClientTls(tls_ca_file, server_name_override)
    if tls_cert_file:
        if not Path(tls_cert_file).is_file():
            raise TlsConfigError(f"tls_cert_file (trusted by executors since tls_ca_file is empty): no such file: "
                                 f"{tls_cert_file}")
        return ClientTls(tls_cert_file, server_name_override)
    return None
