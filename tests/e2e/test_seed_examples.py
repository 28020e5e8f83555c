"""The seed's grpcurl examples and Go client, verbatim, against the real processes.

The commands are read from the seed README itself, so this test breaks if the
API stops matching the contract it was given.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.stack import Stack
from tests.fixtures.waiting import wait_until

# The original service description, kept in the repository so a clone alone can run this.
SEED = Path(__file__).resolve().parents[2] / "docs" / "seed" / "000_ccfc1a0263af64ff.txt"
PROTO = Path(__file__).resolve().parents[2] / "proto" / "whatsapp.proto"
BIN = Path(sys.executable).parent


def _seed_text() -> str:
    if not SEED.exists():
        pytest.fail(f"the seed description is missing at {SEED}")
    return SEED.read_text()


def _grpcurl_examples() -> list[str]:
    commands = re.findall(r"^grpcurl .*$", _seed_text(), re.MULTILINE)
    assert len(commands) == 3, commands
    return commands


def _run(command: str) -> dict[str, object]:
    """Runs a shell command with grpcurl on the PATH; grpcurl prints proto field names."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, f"{command}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return json.loads(done.stdout)


def test_seed_grpcurl_examples_work_verbatim(stack: Stack) -> None:
    send, get, list_ = _grpcurl_examples()

    sent = _run(send)
    assert sent["message_id"] == "1"  # the first message of a fresh database
    assert sent["status"] == "QUEUED"

    wait_until(lambda: stack.status_of(1) not in (None, "QUEUED"), timeout=30,
               message="message 1 never left QUEUED")  # fmt: skip
    got = _run(get)["message"]
    assert isinstance(got, dict)
    assert got["message_id"] == "1"
    assert got["phone_number"] == "+1234567890"
    assert got["template_id"] == "order_confirmation"
    assert got["parameters"] == {"order_id": "ORD-12345"}
    assert got["status"] in {"SENDING", "SENT", "DELIVERED", "READ"}
    calls = [m for m in stack.emulator.messages() if m.mid == "1"]
    assert len(calls) == 1
    assert got["twilio_sid"] == calls[0].sid

    listed = _run(list_)["messages"]
    assert isinstance(listed, list)
    assert [m["message_id"] for m in listed] == ["1"]


def _go_client_source() -> str:
    match = re.search(r"## Creating a gRPC Client.*?```go\n(.*?)```", _seed_text(), re.DOTALL)
    assert match, "the seed README lost its Go client example"
    return match.group(1)


def test_seed_go_client_compiles_unchanged_and_gets_an_id(stack: Stack, tmp_path: Path) -> None:
    tools = ["go", "protoc", "protoc-gen-go", "protoc-gen-go-grpc"]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing or not Path("/usr/share/gocode/src/google.golang.org/grpc").is_dir():
        pytest.skip(f"Go toolchain not installed ({missing or 'grpc-go sources'}); "
                    "`make test-tools` installs it from Debian")  # fmt: skip
    module = tmp_path / "src" / "github.com" / "your-org" / "whatsapp-microservice"
    (module / "proto").mkdir(parents=True)
    (module / "cmd" / "client").mkdir(parents=True)
    subprocess.run(
        ["protoc", f"-I{PROTO.parent}", "-I/usr/include",
         f"--go_out={module / 'proto'}", "--go_opt=paths=source_relative",
         f"--go-grpc_out={module / 'proto'}", "--go-grpc_opt=paths=source_relative",
         str(PROTO)],
        check=True, timeout=60,
    )  # fmt: skip
    (module / "cmd" / "client" / "main.go").write_text(_go_client_source())
    env = {
        **os.environ,
        "GO111MODULE": "off",  # GOPATH mode: Debian's packaged Go sources, no network
        "GOPATH": f"{tmp_path}:/usr/share/gocode",
        "GOCACHE": str(tmp_path / "gocache"),
    }
    binary = tmp_path / "seed-client"
    build = subprocess.run(
        ["go", "build", "-o", str(binary), "."],
        cwd=module / "cmd" / "client", env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr

    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    match = re.search(r"Message sent with ID: (\d+)", run.stderr)
    assert match, run.stderr
    message_id = int(match.group(1))
    rows = stack.query(
        "SELECT phone_number, template_id, order_id, customer_id FROM messages WHERE id = %s",
        message_id,
    )
    assert rows == [("+1234567890", "order_confirmation", "ORD-12345", "CUST-6789")]
