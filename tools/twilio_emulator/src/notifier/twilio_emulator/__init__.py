"""Twilio Messages API emulator for development, tests and benchmarks; never deployed.

Start one in-process with `EmulatorServer`, or run the `twilio-emulator` CLI.
"""

from notifier.twilio_emulator.app import CallOutcome
from notifier.twilio_emulator.callback_log import CallbackRecord, CallbackStats, Outcome
from notifier.twilio_emulator.callback_plan import (
    CallbackMode,
    CallbackRule,
    CallbackSettings,
    Shuffle,
)
from notifier.twilio_emulator.config import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, EmulatorConfig
from notifier.twilio_emulator.faults import FaultRule
from notifier.twilio_emulator.inbound import InboundResult, post_inbound
from notifier.twilio_emulator.ledger import LedgerStats, RecordedMessage, SenderStats
from notifier.twilio_emulator.server import EmulatorServer

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "CallOutcome",
    "CallbackMode",
    "CallbackRecord",
    "CallbackRule",
    "CallbackSettings",
    "CallbackStats",
    "EmulatorConfig",
    "EmulatorServer",
    "FaultRule",
    "InboundResult",
    "LedgerStats",
    "Outcome",
    "RecordedMessage",
    "SenderStats",
    "Shuffle",
    "post_inbound",
]
