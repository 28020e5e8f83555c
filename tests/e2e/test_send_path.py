"""gRPC request in, Twilio call out, SENDING with the SID on record: through real processes."""

from __future__ import annotations

import grpc

from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from tests.fixtures.stack import WHATSAPP_FROM, Stack
from tests.fixtures.waiting import wait_until


def test_a_template_message_reaches_twilio_and_its_sid_is_recorded(stack: Stack) -> None:
    with grpc.insecure_channel(stack.grpc_target) as channel:
        stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
        reply = stub.SendTemplateMessage(
            whatsapp_pb2.SendTemplateMessageRequest(
                phone_number="+447700900123",
                template_id="shipment_dispatched",
                parameters={
                    "estimated_delivery": "Friday",
                    "order_id": "ORD-9",
                    "tracking_id": "TRK-1",
                },
                order_id="ORD-9",
                customer_id="CUST-9",
            ),
            timeout=5,
        )
        message_id = reply.message_id
        # Twilio's callbacks follow within milliseconds, so the message may already be
        # past SENDING when we look: wait for the SID instead.
        wait_until(lambda: stack.query("SELECT twilio_sid FROM messages WHERE id = %s",
                                       message_id)[0][0], timeout=30,
                   message="no Twilio SID recorded")  # fmt: skip
        got = stub.GetMessage(whatsapp_pb2.GetMessageRequest(message_id=message_id), timeout=5)

    [call] = [m for m in stack.emulator.messages() if m.mid == str(message_id)]
    assert call.to == "whatsapp:+447700900123"
    assert call.from_ == f"whatsapp:{WHATSAPP_FROM}"
    content_sid = stack.query("SELECT content_sid FROM templates WHERE name = %s",
                              "shipment_dispatched")[0][0]  # fmt: skip
    assert call.content_sid == content_sid
    # Positional variables in the template's declared order, not the request's.
    assert call.content_variables == {"1": "ORD-9", "2": "TRK-1", "3": "Friday"}
    assert call.status_callback.endswith(f"/webhook/status?mid={message_id}")

    assert got.message.status != whatsapp_pb2.QUEUED
    assert got.message.twilio_sid == call.sid
    history = stack.query(
        "SELECT status, source FROM message_status_history WHERE message_id = %s "
        "ORDER BY occurred_at",
        message_id,
    )
    assert history[:2] == [("QUEUED", "gateway"), ("SENDING", "sender")]


def test_twilio_callbacks_take_a_message_to_read_through_the_webhook(stack: Stack) -> None:
    with grpc.insecure_channel(stack.grpc_target) as channel:
        stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
        reply = stub.SendTemplateMessage(
            whatsapp_pb2.SendTemplateMessageRequest(
                phone_number="+447700900456",
                template_id="delivery_confirmation",
                parameters={"order_id": "ORD-10"},
                order_id="ORD-10",
            ),
            timeout=5,
        )
    message_id = reply.message_id
    wait_until(lambda: stack.status_of(message_id) == "READ", timeout=30,
               message="message never reached READ")  # fmt: skip
    history = stack.query(
        "SELECT status, source FROM message_status_history WHERE message_id = %s "
        "ORDER BY occurred_at",
        message_id,
    )
    assert [status for status, _ in history] == ["QUEUED", "SENDING", "SENT", "DELIVERED", "READ"]
    assert {source for status, source in history if status in ("SENT", "DELIVERED", "READ")} == {
        "twilio"
    }
