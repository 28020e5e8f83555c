"""Typed identifiers, so a message id is never passed where a Twilio SID belongs."""

from __future__ import annotations

from typing import NewType

MessageId = NewType("MessageId", int)
TwilioSid = NewType("TwilioSid", str)
