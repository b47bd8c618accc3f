"""Hand-written stand-ins for the gRPC transport's tests: an aggregator service that follows a script, and a
throwaway self-signed certificate."""

from __future__ import annotations

import datetime
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fedscale_halor.transport.base import AggregatorService, AuthenticationError
from fedscale_halor.transport.messages import Completion, Event, ExecutorInfo, Idle, RegisterReply

# small enough that modest test models already travel in several chunks
CHUNK_BYTES = 64 * 1024


class ScriptedService(AggregatorService):
    """Answers polls from a queue of events (Idle when it runs dry) and records every call it receives."""

    def __init__(self, token: str = "job-token", events: list[Event] | None = None,
                 fail_with: Callable[[], Exception] | None = None) -> None:
        self.token = token
        self.events: deque[Event] = deque(events or [])
        self.fail_with = fail_with
        self.registered: list[ExecutorInfo] = []
        self.polled_by: list[str] = []
        self.submitted: list[tuple[str, Completion]] = []
        self.attended_by: list[str] = []
        self.hung_up_by: list[str] = []
        self.hang_up = threading.Event()
        self._lock = threading.Lock()

    def _check(self, token: str) -> None:
        if token != self.token:
            raise AuthenticationError("executor presented a wrong job token")
        if self.fail_with is not None:
            raise self.fail_with()

    def register(self, token: str, info: ExecutorInfo) -> RegisterReply:
        self._check(token)
        with self._lock:
            self.registered.append(info)
        return RegisterReply(accepted=True, reason=f"welcome {info.executor_id}")

    def next_event(self, token: str, executor_id: str) -> Event:
        self._check(token)
        with self._lock:
            self.polled_by.append(executor_id)
            return self.events.popleft() if self.events else Idle(wait_s=0.0)

    def submit(self, token: str, executor_id: str, completion: Completion) -> None:
        self._check(token)
        with self._lock:
            self.submitted.append((executor_id, completion))

    def attend(self, token: str, executor_id: str) -> None:
        self._check(token)
        with self._lock:
            self.attended_by.append(executor_id)

    def hung_up(self, executor_id: str) -> None:
        with self._lock:
            self.hung_up_by.append(executor_id)
        self.hang_up.set()


@dataclass(frozen=True)
class SelfSignedCert:
    cert_file: Path
    key_file: Path


def write_self_signed_cert(folder: Path, host_name: str = "localhost") -> SelfSignedCert:
    """A certificate for ``host_name`` only (an executor dialling 127.0.0.1 must override the name it checks) that is
    its own CA, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "aggregator.crt", folder / "aggregator.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return SelfSignedCert(cert_file, key_file)
