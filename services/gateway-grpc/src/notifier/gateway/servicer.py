"""The WhatsAppService RPCs: protobuf in, typed values to the service, protobuf out.

No rules live here. Errors are raised as NotifierError and turned into gRPC
status codes by the interceptor.
"""

from __future__ import annotations

from typing import Any

from notifier.common.domain.status import MessageStatus
from notifier.common.errors import InvalidRequest
from notifier.common.payloads import PayloadError, status_from_pb, status_to_pb, timestamp_to_pb
from notifier.common.pb import whatsapp_pb2, whatsapp_pb2_grpc
from notifier.gateway.model import (
    HistoryEntry,
    InboundReply,
    MessageStatusChange,
    OrderTimeline,
    SendRequest,
    SessionRequest,
    StoredMessage,
    TimelineEntry,
)
from notifier.gateway.service import MessageService


class WhatsAppServicer(whatsapp_pb2_grpc.WhatsAppServiceServicer):
    def __init__(self, service: MessageService) -> None:
        self._service = service

    def SendTemplateMessage(
        self, request: whatsapp_pb2.SendTemplateMessageRequest, context: Any
    ) -> whatsapp_pb2.SendTemplateMessageResponse:
        accepted = self._service.send(
            SendRequest(
                phone_number=request.phone_number,
                template_id=request.template_id,
                parameters=dict(request.parameters),
                order_id=request.order_id,
                customer_id=request.customer_id,
                idempotency_key=request.idempotency_key,
            )
        )
        return whatsapp_pb2.SendTemplateMessageResponse(
            message_id=accepted.message_id,
            status=whatsapp_pb2.QUEUED,
            duplicate=accepted.duplicate,
        )

    def SendSessionMessage(
        self, request: whatsapp_pb2.SendSessionMessageRequest, context: Any
    ) -> whatsapp_pb2.SendSessionMessageResponse:
        accepted = self._service.send_session(
            SessionRequest(
                phone_number=request.phone_number,
                body=request.body,
                order_id=request.order_id,
                customer_id=request.customer_id,
                idempotency_key=request.idempotency_key,
            )
        )
        return whatsapp_pb2.SendSessionMessageResponse(
            message_id=accepted.message_id,
            status=whatsapp_pb2.QUEUED,
            duplicate=accepted.duplicate,
        )

    def GetMessage(
        self, request: whatsapp_pb2.GetMessageRequest, context: Any
    ) -> whatsapp_pb2.GetMessageResponse:
        message = self._service.get(request.message_id)
        return whatsapp_pb2.GetMessageResponse(message=message_to_pb(message))

    def GetOrderTimeline(
        self, request: whatsapp_pb2.GetOrderTimelineRequest, context: Any
    ) -> whatsapp_pb2.GetOrderTimelineResponse:
        return timeline_to_pb(self._service.timeline(request.order_id))

    def ListMessages(
        self, request: whatsapp_pb2.ListMessagesRequest, context: Any
    ) -> whatsapp_pb2.ListMessagesResponse:
        messages = self._service.list(
            order_id=request.order_id,
            customer_id=request.customer_id,
            status=status_filter(request.status),
            limit=request.limit,
            offset=request.offset,
        )
        return whatsapp_pb2.ListMessagesResponse(messages=[message_to_pb(m) for m in messages])


def status_filter(value: int) -> MessageStatus | None:
    """MESSAGE_STATUS_UNSPECIFIED means any status; an unknown number is an error."""
    if value == whatsapp_pb2.MESSAGE_STATUS_UNSPECIFIED:
        return None
    try:
        return status_from_pb(value)
    except PayloadError as exc:
        raise InvalidRequest("status", f"is not a known message status ({value})") from exc


def message_to_pb(message: StoredMessage) -> whatsapp_pb2.Message:
    pb = whatsapp_pb2.Message(
        message_id=message.message_id,
        phone_number=message.phone_number,
        template_id=message.template_id or "",
        parameters=dict(message.parameters),
        order_id=message.order_id or "",
        customer_id=message.customer_id or "",
        status=status_to_pb(message.status),
        twilio_sid=message.twilio_sid or "",
        error_code=message.error_code or 0,
        error_message=message.error_message or "",
        body=message.body or "",
        history=[status_change_to_pb(entry) for entry in message.history],
    )
    pb.created_at.CopyFrom(timestamp_to_pb(message.created_at))
    pb.updated_at.CopyFrom(timestamp_to_pb(message.updated_at))
    return pb


def status_change_to_pb(entry: HistoryEntry) -> whatsapp_pb2.StatusChange:
    pb = whatsapp_pb2.StatusChange(
        status=status_to_pb(entry.status),
        error_code=entry.error_code or 0,
        error_message=entry.error_message or "",
        source=entry.source,
    )
    pb.occurred_at.CopyFrom(timestamp_to_pb(entry.occurred_at))
    return pb


def timeline_to_pb(timeline: OrderTimeline) -> whatsapp_pb2.GetOrderTimelineResponse:
    return whatsapp_pb2.GetOrderTimelineResponse(
        order_id=timeline.order_id,
        entries=[timeline_entry_to_pb(entry) for entry in timeline.entries],
    )


def timeline_entry_to_pb(entry: TimelineEntry) -> whatsapp_pb2.TimelineEntry:
    pb = whatsapp_pb2.TimelineEntry()
    pb.at.CopyFrom(timestamp_to_pb(entry.at))
    item = entry.item
    if isinstance(item, StoredMessage):
        pb.message_accepted.CopyFrom(message_to_pb(item))
    elif isinstance(item, MessageStatusChange):
        pb.status_changed.message_id = item.message_id
        pb.status_changed.change.CopyFrom(status_change_to_pb(item.change))
    else:
        pb.reply_received.CopyFrom(reply_to_pb(item))
    return pb


def reply_to_pb(reply: InboundReply) -> whatsapp_pb2.InboundReply:
    return whatsapp_pb2.InboundReply(
        inbound_id=reply.inbound_id,
        phone_number=reply.phone_number,
        body=reply.body,
        profile_name=reply.profile_name or "",
        button_payload=reply.button_payload or "",
        num_media=reply.num_media,
        twilio_sid=reply.twilio_sid,
    )
