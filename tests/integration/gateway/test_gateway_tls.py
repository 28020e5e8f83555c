"""TLS and mTLS on the gRPC port of a real grpcio server built by `build_server`.

A client that does not complete the handshake (plaintext, an unknown CA, no or a foreign
client certificate) never reaches the service; one that does is served. Renewed files are
used from the next connection on, Kubernetes probes get a plaintext health-only port, and
bad files stop the gateway at start with the variable named.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from gateway_support import gateway_settings
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tls_certs import Pair, Pki, make_pki

from notifier.common.config import ConfigError, Env
from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.gateway.server import build_server, set_serving
from notifier.gateway.tls import TlsFiles
from tests.fuzz.grpcurl_cases import grpcurl_executable

pytestmark = pytest.mark.integration

# A channel of its own per test client: grpc would otherwise share one connection (and its
# handshake) between channels to the same address.
LOCAL = (("grpc.use_local_subchannel_pool", 1),)


class RecordingServicer(whatsapp_pb2_grpc.WhatsAppServiceServicer):
    """Answers GetMessage with the id it was asked for, and remembers every call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def GetMessage(self, request: Any, context: Any) -> Any:
        self.calls.append(request.message_id)
        return whatsapp_pb2.GetMessageResponse(
            message=whatsapp_pb2.Message(message_id=request.message_id)
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@contextmanager
def serving(tls: TlsFiles | None, **overrides: Any) -> Iterator[tuple[int, RecordingServicer, Any]]:
    settings = gateway_settings(
        "postgresql://unused", "unused:9092", "unused", tls=tls, **overrides
    )
    servicer = RecordingServicer()
    health_servicer = health.HealthServicer()
    server, port = build_server(settings, servicer, health_servicer)
    server.start()
    set_serving(health_servicer, serving=True)
    try:
        yield port, servicer, server
    finally:
        server.stop(0).wait()


def secure(port: int, ca: Path, client: Pair | None = None) -> grpc.Channel:
    key, chain = client.read() if client is not None else (None, None)
    credentials = grpc.ssl_channel_credentials(ca.read_bytes(), key, chain)
    return grpc.secure_channel(f"localhost:{port}", credentials, options=LOCAL)


def plaintext(port: int) -> grpc.Channel:
    return grpc.insecure_channel(f"localhost:{port}", options=LOCAL)


def get_message(channel: grpc.Channel, message_id: int = 7) -> grpc.StatusCode:
    stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
    with channel:
        try:
            reply = stub.GetMessage(
                whatsapp_pb2.GetMessageRequest(message_id=message_id), timeout=5
            )
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    assert reply.message.message_id == message_id
    return grpc.StatusCode.OK


def test_with_tls_a_plaintext_client_is_refused_and_a_client_trusting_the_ca_is_served(
    pki: Pki,
) -> None:
    with serving(TlsFiles(str(pki.server.cert), str(pki.server.key))) as (port, servicer, _):
        assert get_message(plaintext(port)) == grpc.StatusCode.UNAVAILABLE
        assert get_message(secure(port, pki.stranger.cert)) == grpc.StatusCode.UNAVAILABLE
        assert servicer.calls == []  # neither call reached the service
        assert get_message(secure(port, pki.ca.cert), 11) == grpc.StatusCode.OK
        assert servicer.calls == [11]


def test_with_mtls_only_a_client_with_a_certificate_of_the_ca_is_served(pki: Pki) -> None:
    files = TlsFiles(str(pki.server.cert), str(pki.server.key), str(pki.ca.cert))
    with serving(files) as (port, servicer, _):
        assert get_message(plaintext(port)) == grpc.StatusCode.UNAVAILABLE
        assert get_message(secure(port, pki.ca.cert)) == grpc.StatusCode.UNAVAILABLE
        assert get_message(secure(port, pki.ca.cert, pki.stranger)) == grpc.StatusCode.UNAVAILABLE
        assert servicer.calls == []
        assert get_message(secure(port, pki.ca.cert, pki.client), 12) == grpc.StatusCode.OK
        assert servicer.calls == [12]


def test_grpcurl_works_with_cacert_and_with_a_client_certificate(pki: Pki) -> None:
    grpcurl = str(grpcurl_executable())
    files = TlsFiles(str(pki.server.cert), str(pki.server.key), str(pki.ca.cert))
    with serving(files) as (port, servicer, _):
        call = ["-max-time", "10", "-d", '{"message_id": 5}', f"localhost:{port}",
                "whatsapp.WhatsAppService/GetMessage"]  # fmt: skip
        trusted = ["-cacert", str(pki.ca.cert)]
        client = ["-cert", str(pki.client.cert), "-key", str(pki.client.key)]
        answered = run([grpcurl, *trusted, *client, *call])
        assert answered.returncode == 0, answered.stderr
        assert '"message_id": "5"' in answered.stdout
        without_cert = run([grpcurl, *trusted, *call])
        assert without_cert.returncode != 0
        assert run([grpcurl, "-plaintext", *call]).returncode != 0
        assert servicer.calls == [5]
    with serving(TlsFiles(str(pki.server.cert), str(pki.server.key))) as (port, servicer, _):
        listed = run([grpcurl, "-cacert", str(pki.ca.cert), f"localhost:{port}", "list"])
        assert listed.returncode == 0, listed.stderr
        assert "whatsapp.WhatsAppService" in listed.stdout.split()


def test_a_renewed_certificate_is_used_from_the_next_connection_on(
    pki: Pki, tmp_path: Path
) -> None:
    # The files as a Secret volume holds them; the renewal comes from another CA, so which
    # certificate a handshake got shows in which CA a client must trust.
    renewed = make_pki(tmp_path / "renewed", "renewed")
    live = Pair(tmp_path / "tls.crt", tmp_path / "tls.key")
    shutil.copy(pki.server.cert, live.cert)
    shutil.copy(pki.server.key, live.key)
    with serving(TlsFiles(str(live.cert), str(live.key))) as (port, _, _):
        assert get_message(secure(port, pki.ca.cert)) == grpc.StatusCode.OK
        replace(live, renewed.server)
        assert get_message(secure(port, renewed.ca.cert)) == grpc.StatusCode.OK
        assert get_message(secure(port, pki.ca.cert)) == grpc.StatusCode.UNAVAILABLE
        # A broken update is not taken: the renewed certificate stays in use.
        live.key.write_bytes(b"not a key")
        assert get_message(secure(port, renewed.ca.cert)) == grpc.StatusCode.OK


def replace(live: Pair, new: Pair) -> None:
    """Swaps the files in at once, as the kubelet does with a Secret volume's symlink."""
    for source, target in ((new.cert, live.cert), (new.key, live.key)):
        staged = target.with_suffix(".new")
        shutil.copy(source, staged)
        os.replace(staged, target)


def test_kubernetes_probes_get_a_plaintext_port_serving_health_alone(pki: Pki) -> None:
    files = TlsFiles(str(pki.server.cert), str(pki.server.key), str(pki.ca.cert))
    with serving(files, health_port=0) as (port, servicer, server):
        assert server.health_port not in (None, 0, port)
        with plaintext(server.health_port) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert get_message(plaintext(server.health_port)) == grpc.StatusCode.UNIMPLEMENTED
        assert servicer.calls == []


def test_unusable_files_are_reported_naming_their_variable(pki: Pki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    cases = {
        # a key that belongs to another certificate
        ("GRPC_TLS_KEY_FILE", "is not the key of the certificate"): {
            "GRPC_TLS_CERT_FILE": pki.server.cert, "GRPC_TLS_KEY_FILE": pki.client.key,
        },
        # a certificate where the key should be
        ("GRPC_TLS_KEY_FILE", "no unencrypted PEM private key"): {
            "GRPC_TLS_CERT_FILE": pki.server.cert, "GRPC_TLS_KEY_FILE": pki.server.cert,
        },
        ("GRPC_TLS_CERT_FILE", "holds no valid PEM certificate"): {
            "GRPC_TLS_CERT_FILE": garbage, "GRPC_TLS_KEY_FILE": pki.server.key,
        },
        ("GRPC_TLS_CLIENT_CA_FILE", "holds no valid PEM certificate"): {
            "GRPC_TLS_CERT_FILE": pki.server.cert, "GRPC_TLS_KEY_FILE": pki.server.key,
            "GRPC_TLS_CLIENT_CA_FILE": pki.ca.key,
        },
        ("GRPC_TLS_CERT_FILE", "cannot be read"): {
            "GRPC_TLS_CERT_FILE": tmp_path / "missing.crt", "GRPC_TLS_KEY_FILE": pki.server.key,
        },
    }  # fmt: skip
    for (variable, complaint), environ in cases.items():
        env = Env({name: str(path) for name, path in environ.items()})
        TlsFiles.from_env(env)
        with pytest.raises(ConfigError) as caught:
            env.check()
        [problem] = caught.value.problems
        assert problem.startswith(f"{variable}=") and complaint in problem, problem
    good = Env(
        {"GRPC_TLS_CERT_FILE": str(pki.server.cert), "GRPC_TLS_KEY_FILE": str(pki.server.key)}
    )
    assert TlsFiles.from_env(good) == TlsFiles(str(pki.server.cert), str(pki.server.key))
    assert good.problems == []


def test_the_gateway_process_refuses_to_start_with_half_a_tls_configuration(pki: Pki) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://unused/none",
        "KAFKA_BOOTSTRAP_SERVERS": "unused:9092",
        "GRPC_TLS_CERT_FILE": str(pki.server.cert),
    }
    env.pop("GRPC_TLS_KEY_FILE", None)
    done = subprocess.run(
        [sys.executable, "-m", "notifier.gateway.main"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "GRPC_TLS_KEY_FILE is required when GRPC_TLS_CERT_FILE is set" in done.stderr


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
