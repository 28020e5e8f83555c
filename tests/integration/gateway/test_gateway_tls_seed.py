"""The seed's grpcurl examples against a real gateway (PostgreSQL, broker) serving TLS: with
`-cacert` in place of `-plaintext` they work; with `-plaintext` they are refused, and the
refused send writes nothing."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_support import gateway_settings, row_counts
from tls_certs import Pki, make_pki

from notifier.gateway.main import RunningGateway, start_gateway
from notifier.gateway.tls import TlsFiles
from tests.fuzz.grpcurl_cases import grpcurl_executable

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[3] / "docs" / "seed" / "000_ccfc1a0263af64ff.txt"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_gateway(
    gateway_database_url: str, kafka_bootstrap: str, outbound_topic: str, pki: Pki
) -> Iterator[RunningGateway]:
    tls = TlsFiles(str(pki.server.cert), str(pki.server.key))
    settings = gateway_settings(gateway_database_url, kafka_bootstrap, outbound_topic, tls=tls)
    running = start_gateway(settings, serve_metrics=False)
    yield running
    running.stop(grace=1.0)


def seed_examples(port: int, *transport: str) -> list[list[str]]:
    """The seed README's three grpcurl commands, on `port` and with `transport` options in
    place of `-plaintext`."""
    commands = re.findall(r"^grpcurl .*$", SEED.read_text(), re.MULTILINE)
    assert len(commands) == 3, commands
    grpcurl = str(grpcurl_executable())
    argvs = []
    for command in commands:
        argv = shlex.split(command.replace("localhost:9090", f"localhost:{port}"))
        plaintext = argv.index("-plaintext")
        argvs.append([grpcurl, *argv[1:plaintext], *transport, *argv[plaintext + 1 :]])
    return argvs


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_plaintext_grpcurl_is_refused_and_writes_nothing(
    tls_gateway: RunningGateway, gateway_database_url: str
) -> None:
    before = row_counts(gateway_database_url)
    for argv in seed_examples(tls_gateway.port, "-plaintext", "-max-time", "10"):
        done = run(argv)
        assert done.returncode != 0, done.stdout
        assert "Failed to dial" in done.stderr or "connection" in done.stderr, done.stderr
    assert row_counts(gateway_database_url) == before


def test_the_seed_examples_work_with_cacert(tls_gateway: RunningGateway, pki: Pki) -> None:
    send, get, list_ = (
        run(argv) for argv in seed_examples(tls_gateway.port, "-cacert", str(pki.ca.cert))
    )
    for done in (send, get, list_):
        assert done.returncode == 0, done.stderr
    sent = json.loads(send.stdout)
    assert sent["status"] == "QUEUED"
    got = json.loads(get.stdout)["message"]
    assert got["message_id"] == sent["message_id"] == "1"  # the module's database is fresh
    assert got["phone_number"] == "+1234567890"
    listed = json.loads(list_.stdout)["messages"]
    assert [m["message_id"] for m in listed] == ["1"]
