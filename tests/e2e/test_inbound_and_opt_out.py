"""Customers' replies through real processes: signed webhook in, inbound row and opt-out out;
the reply in its order's timeline, and the session message it allows reaching Twilio."""

from __future__ import annotations

import secrets

import grpc

from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.twilio_emulator import post_inbound
from tests.fixtures.stack import WHATSAPP_FROM, Stack
from tests.fixtures.waiting import wait_until

SESSION_TEXT = "Yes, we can deliver between 6 and 8pm."


def new_number() -> str:
    return "+4477" + "".join(secrets.choice("0123456789") for _ in range(9))


def reply(stack: Stack, phone: str, body: str) -> None:
    """The customer writes to us: the emulator posts it, signed, as Twilio would."""
    result = post_inbound(
        phone,
        body,
        to=WHATSAPP_FROM,
        webhook_url=stack.webhook_url + "/webhook/inbound",
        auth_token=stack.emulator.config.auth_token,
        account_sid=stack.emulator.config.account_sid,
    )
    assert result.ok, (result.status, result.body)


def opt_out_state(stack: Stack, phone: str) -> tuple[object, ...] | None:
    rows = stack.query("SELECT opted_out, keyword FROM opt_outs WHERE phone_number = %s", phone)
    return rows[0] if rows else None


def describe(entry: whatsapp_pb2.TimelineEntry) -> tuple[object, ...]:
    kind = entry.WhichOneof("entry")
    if kind == "message_accepted":
        return ("message", entry.message_accepted.message_id)
    if kind == "status_changed":
        change = entry.status_changed
        return ("status", change.message_id, whatsapp_pb2.MessageStatus.Name(change.change.status))
    return ("reply", entry.reply_received.body)


def test_a_reply_to_an_order_message_is_stored_linked_to_that_order(stack: Stack) -> None:
    phone = new_number()
    with grpc.insecure_channel(stack.grpc_target) as channel:
        stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
        sent = stub.SendTemplateMessage(
            whatsapp_pb2.SendTemplateMessageRequest(
                phone_number=phone,
                template_id="order_confirmation",
                parameters={"order_id": "ORD-E2E-1"},
                order_id="ORD-E2E-1",
                customer_id="CUST-E2E-1",
            ),
            timeout=5,
        )
    wait_until(lambda: stack.status_of(sent.message_id) not in (None, "QUEUED"), timeout=30,
               message="the order message sent")  # fmt: skip

    reply(stack, phone, "Can you deliver after 6pm?")

    def stored() -> list[tuple[object, ...]]:
        return stack.query(
            "SELECT body, order_id, customer_id, to_number, profile_name, twilio_sid"
            " FROM inbound_messages WHERE phone_number = %s",
            phone,
        )

    [row] = wait_until(stored, timeout=30, message="the reply in inbound_messages")
    body, order_id, customer_id, to_number, profile_name, sid = row
    assert (body, order_id, customer_id) == (
        "Can you deliver after 6pm?",
        "ORD-E2E-1",
        "CUST-E2E-1",
    )
    assert (to_number, profile_name) == (WHATSAPP_FROM, "Emulated Customer")
    assert str(sid).startswith("SM")
    assert opt_out_state(stack, phone) is None

    # The reply opened the customer's 24-hour window: free-form text may answer it.
    with grpc.insecure_channel(stack.grpc_target) as channel:
        stub = whatsapp_pb2_grpc.WhatsAppServiceStub(channel)
        answer = stub.SendSessionMessage(
            whatsapp_pb2.SendSessionMessageRequest(
                phone_number=phone, body=SESSION_TEXT, order_id="ORD-E2E-1"
            ),
            timeout=5,
        )

        def reached_sending() -> bool:
            request = whatsapp_pb2.GetMessageRequest(message_id=answer.message_id)
            history = stub.GetMessage(request, timeout=5).message.history
            return whatsapp_pb2.SENDING in [h.status for h in history]

        wait_until(reached_sending, timeout=30, message="the session message SENDING")
        timeline = stub.GetOrderTimeline(
            whatsapp_pb2.GetOrderTimelineRequest(order_id="ORD-E2E-1"), timeout=5
        )

    [given] = [m for m in stack.emulator.messages() if m.mid == str(answer.message_id)]
    assert (given.body, given.content_sid) == (SESSION_TEXT, None)
    # The order's story in time order: the confirmation, its sending, the customer's
    # question, our answer (later callbacks may add statuses in between).
    story = [describe(e) for e in timeline.entries]
    milestones = [
        ("message", sent.message_id),
        ("status", sent.message_id, "SENDING"),
        ("reply", "Can you deliver after 6pm?"),
        ("message", answer.message_id),
    ]
    assert [e for e in story if e in milestones] == milestones, story
    times = [e.at.ToNanoseconds() for e in timeline.entries]
    assert times == sorted(times)


def test_stop_opts_the_customer_out_and_start_opts_them_back_in(stack: Stack) -> None:
    phone = new_number()
    reply(stack, phone, "STOP")
    wait_until(lambda: opt_out_state(stack, phone) == (True, "STOP"), timeout=30,
               message="the opt-out recorded")  # fmt: skip

    reply(stack, phone, "start")
    wait_until(lambda: opt_out_state(stack, phone) == (False, "START"), timeout=30,
               message="the opt-in recorded")  # fmt: skip
    [(count,)] = stack.query("SELECT count(*) FROM inbound_messages WHERE phone_number = %s", phone)
    assert count == 2
