"""The short chaos run inside `make test`: 2,000 messages while every part fails once.

The gateway, sender, webhook and recorder are each killed with SIGKILL and restarted by
the Supervisor, PostgreSQL crashes and restarts, and the broker restarts empty, one at a
time under load. Every accepted message must reach Twilio and a final status; the same
message sent twice is allowed only if it was in flight at a fault. `make chaos` runs
the same with 10,000 messages.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.harness import ChaosConfig, run_chaos

pytestmark = pytest.mark.chaos

EXTERNAL = ("TEST_DATABASE_URL", "TEST_KAFKA_BOOTSTRAP_SERVERS")


@pytest.mark.timeout(360)
def test_every_accepted_message_is_sent_and_settles_while_each_part_fails_in_turn(
    tmp_path: Path,
) -> None:
    if any(os.environ.get(name) for name in EXTERNAL):
        pytest.skip("restarts PostgreSQL and the broker: runs only on its own embedded ones")
    result = run_chaos(
        ChaosConfig(messages=2000, rate=40, settle_seconds=120, log_dir=tmp_path / "logs")
    )
    print(result.summary())
    assert result.passed, f"{result.summary()}\n\nlogs: {tmp_path / 'logs'}"
