from __future__ import annotations

import re
from pathlib import Path

import pytest
from transport_fakes import CHUNK_BYTES, ScriptedService, write_self_signed_cert

from fedscale_halor.transport.grpc_client import AggregatorUnreachableError, GrpcTransport
from fedscale_halor.transport.grpc_server import GrpcAggregatorServer
from fedscale_halor.transport.messages import ExecutorInfo, Shutdown
from fedscale_halor.transport.tls import (
    ClientTls,
    ServerTls,
    TlsConfigError,
    client_tls_from_settings,
    server_tls_from_settings,
)

INFO = ExecutorInfo(executor_id="executor_0", host="node-1", device="cpu")


def test_an_executor_talks_to_the_aggregator_over_tls(tmp_path: Path) -> None:
    # Prepare: a certificate for "localhost" only, so dialling 127.0.0.1 needs the name override
    cert = write_self_signed_cert(tmp_path / "tls")
    service = ScriptedService(events=[Shutdown("over TLS")])
    with GrpcAggregatorServer(service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                              tls=ServerTls(cert.cert_file, cert.key_file)) as server:
        executor = GrpcTransport(f"127.0.0.1:{server.port}", "job-token", chunk_bytes=CHUNK_BYTES,
                                 tls=ClientTls(cert.cert_file, server_name_override="localhost"))

        # Execute
        reply = executor.register(INFO)
        event = executor.next_event("executor_0")
        executor.close()

    # Assert
    assert reply.accepted
    assert event == Shutdown("over TLS")
    assert service.registered == [INFO]


@pytest.mark.parametrize("client_side", ["plain", "untrusted-ca", "wrong-name"])
def test_an_executor_that_cannot_verify_the_aggregator_never_reaches_it(tmp_path: Path, client_side: str) -> None:
    cert = write_self_signed_cert(tmp_path / "real")
    stranger = write_self_signed_cert(tmp_path / "stranger")
    client_tls = {
        "plain": None,
        "untrusted-ca": ClientTls(stranger.cert_file, server_name_override="localhost"),
        "wrong-name": ClientTls(cert.cert_file),  # the certificate names localhost, not 127.0.0.1
    }[client_side]
    service = ScriptedService()
    with GrpcAggregatorServer(service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES,
                              tls=ServerTls(cert.cert_file, cert.key_file)) as server:
        executor = GrpcTransport(f"127.0.0.1:{server.port}", "job-token", chunk_bytes=CHUNK_BYTES, tls=client_tls,
                                 connect_timeout_s=0.3)
        with pytest.raises(AggregatorUnreachableError, match="no aggregator answered"):
            executor.register(INFO)
        executor.close()

    assert service.registered == []


def test_missing_tls_files_are_named_with_their_config_key(tmp_path: Path) -> None:
    cert = write_self_signed_cert(tmp_path)
    missing = tmp_path / "nowhere.pem"

    with pytest.raises(TlsConfigError, match=re.escape(f"tls_cert_file: no such file: {missing}")):
        ServerTls(missing, cert.key_file)
    with pytest.raises(TlsConfigError, match=re.escape(f"tls_key_file: no such file: {missing}")):
        ServerTls(cert.cert_file, missing)
    with pytest.raises(TlsConfigError, match=re.escape(f"tls_ca_file: no such file: {missing}")):
        ClientTls(missing)


def test_tls_settings_come_from_the_job_configs_keys(tmp_path: Path) -> None:
    cert = write_self_signed_cert(tmp_path)

    assert server_tls_from_settings("", "") is None
    assert server_tls_from_settings(str(cert.cert_file), str(cert.key_file)) == ServerTls(str(cert.cert_file),
                                                                                          str(cert.key_file))
    with pytest.raises(TlsConfigError, match="tls_key_file is empty"):
        server_tls_from_settings(str(cert.cert_file), "")
    assert client_tls_from_settings("", "") is None
    # executors of a self-signed aggregator trust its own certificate when no CA file is given
    assert client_tls_from_settings("", str(cert.cert_file)) == ClientTls(str(cert.cert_file))
    assert client_tls_from_settings(str(cert.cert_file), "", "localhost") == ClientTls(str(cert.cert_file),
                                                                                      "localhost")
    with pytest.raises(TlsConfigError, match=r"tls_cert_file .*: no such file"):
        client_tls_from_settings("", str(tmp_path / "gone.pem"))
