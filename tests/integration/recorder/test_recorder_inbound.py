"""EventStore with inbound messages: stored once, linked to the latest order, opt-outs applied
newest-only, and the 24-hour window derivable from the rows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from notifier.common.domain.optout import OptChange
from notifier.common.domain.status import MessageStatus as S
from notifier.recorder.store import EventStore
from tests.integration.recorder.message_rows import T0, Messages, event, inbound, new_number

pytestmark = pytest.mark.integration


def test_an_inbound_message_is_stored_once_with_its_fields_and_linked_to_the_latest_order(
    store: EventStore, messages: Messages
) -> None:
    phone = new_number()
    messages.create_to(phone, order_id="ORD-1", customer_id="CUST-1", ago=3600)
    messages.create_to(phone, order_id="ORD-2", customer_id="CUST-1", ago=60)
    # A later session message without an order does not hide the order being discussed.
    messages.create_to(phone, customer_id="CUST-1", ago=10, body="Your driver is close")
    messages.create_to(new_number(), order_id="ORD-OTHER", customer_id="CUST-X")
    reply = inbound(
        phone,
        "Please leave it with the neighbour",
        profile_name="Ada",
        wa_id=phone.lstrip("+"),
        button_payload="leave_with_neighbour",
        button_text="Leave with neighbour",
        num_media=1,
    )

    first = store.apply([reply])
    again = store.apply([reply])  # a redelivery, by Twilio or by Kafka

    [row] = messages.inbound_rows(phone)
    assert {k: row[k] for k in ("twilio_sid", "phone_number", "to_number", "body")} == {
        "twilio_sid": reply.twilio_sid,
        "phone_number": phone,
        "to_number": "+14155238886",
        "body": "Please leave it with the neighbour",
    }
    assert (row["profile_name"], row["wa_id"], row["num_media"]) == ("Ada", phone[1:], 1)
    assert (row["button_payload"], row["button_text"]) == (
        "leave_with_neighbour",
        "Leave with neighbour",
    )
    assert (row["customer_id"], row["order_id"], row["opt_out_type"]) == ("CUST-1", "ORD-2", None)
    assert row["received_at"] == T0
    [outcome] = first.inbound
    assert (outcome.recorded, outcome.order_id, outcome.opt_change) == (True, "ORD-2", None)
    assert [o.recorded for o in again.inbound] == [False]
    assert messages.opt_out(phone) is None


def test_a_message_from_a_number_we_never_wrote_to_is_stored_unlinked(
    store: EventStore, messages: Messages
) -> None:
    phone = new_number()
    message = inbound(phone, "")  # media only: no text
    store.apply([message, message])  # twice in one batch, too
    [row] = messages.inbound_rows(phone)
    assert (row["customer_id"], row["order_id"], row["body"]) == (None, None, "")


def test_stop_opts_the_number_out_and_start_opts_it_back_in(
    store: EventStore, messages: Messages
) -> None:
    phone = new_number()
    stop = store.apply([inbound(phone, "stop", at=1, opt_out_type="STOP")])
    assert messages.opt_out(phone) == (True, "STOP")
    assert [(o.opt_change, o.opt_applied) for o in stop.inbound] == [(OptChange.OPT_OUT, True)]

    store.apply([inbound(phone, "HELP", at=2, opt_out_type="HELP")])  # changes nothing
    assert messages.opt_out(phone) == (True, "STOP")

    store.apply([inbound(phone, "Start", at=3)])  # no OptOutType: the keyword decides
    assert messages.opt_out(phone) == (False, "START")
    assert len(messages.inbound_rows(phone)) == 3


def test_start_then_stop_delivered_out_of_order_ends_in_the_later_one(
    store: EventStore, messages: Messages
) -> None:
    in_order, out_of_order, same_batch = new_number(), new_number(), new_number()
    for phone in (in_order, out_of_order, same_batch):
        store.apply([inbound(phone, "STOP", at=0)])

    # START (received at 20 s) then a STOP received at 30 s: opted out.
    store.apply([inbound(in_order, "START", at=20)])
    store.apply([inbound(in_order, "STOP", at=30)])
    # The same two applied the other way round: STOP is newer, it still wins.
    store.apply([inbound(out_of_order, "STOP", at=30)])
    late_start = store.apply([inbound(out_of_order, "START", at=20)])
    # And both in one batch, the older one last.
    store.apply([inbound(same_batch, "STOP", at=30), inbound(same_batch, "START", at=20)])

    assert messages.opt_out(in_order) == (True, "STOP")
    assert messages.opt_out(out_of_order) == (True, "STOP")
    assert messages.opt_out(same_batch) == (True, "STOP")
    [outcome] = late_start.inbound
    assert (outcome.recorded, outcome.opt_change, outcome.opt_applied) == (
        True,
        OptChange.OPT_IN,
        False,
    )
    # The stored change is the one received last.
    [(changed_at,)] = messages.query(
        "SELECT changed_at FROM opt_outs WHERE phone_number = %s", out_of_order
    )
    assert changed_at == T0 + timedelta(seconds=30)


def test_twilios_opt_out_type_for_a_custom_keyword_opts_out(
    store: EventStore, messages: Messages
) -> None:
    phone = new_number()
    store.apply([inbound(phone, "ARRET", opt_out_type="STOP")])
    assert messages.opt_out(phone) == (True, "STOP")


def test_the_24_hour_window_is_the_latest_inbound_message_plus_a_day(
    store: EventStore, messages: Messages
) -> None:
    phone = new_number()
    hours = 3600.0
    store.apply([inbound(phone, "later", at=5 * hours), inbound(phone, "earlier", at=0)])
    store.apply([inbound(phone, "redelivered late, received earliest", at=-2 * hours)])
    closes_at = T0 + timedelta(hours=5 + 24)
    [(last_inbound, open_just_before, open_at_close)] = messages.query(
        "SELECT max(received_at),"
        " max(received_at) > %s - interval '24 hours',"
        " max(received_at) > %s - interval '24 hours'"
        " FROM inbound_messages WHERE phone_number = %s",
        closes_at - timedelta(milliseconds=1),
        closes_at,
        phone,
    )
    assert last_inbound == T0 + timedelta(hours=5)
    assert (open_just_before, open_at_close) == (True, False)


def test_status_changes_and_inbound_messages_apply_in_one_batch(
    store: EventStore, messages: Messages
) -> None:
    phone = new_number()
    message_id = messages.create_to(phone, order_id="ORD-7")
    result = store.apply([event(message_id, S.DELIVERED), inbound(phone, "STOP")])
    assert messages.row(message_id).status is S.DELIVERED
    assert [o.order_id for o in result.inbound] == ["ORD-7"]
    assert messages.opt_out(phone) == (True, "STOP")
    assert len(result.applied) == 1
