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
from notifier.gateway.model import SendRequest, StoredMessage
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

    def GetMessage(
        self, request: whatsapp_pb2.GetMessageRequest, context: Any
    ) -> whatsapp_pb2.GetMessageResponse:
        message = self._service.get(request.message_id)
        return whatsapp_pb2.GetMessageResponse(message=message_to_pb(message))

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
        template_id=message.template_id,
        parameters=dict(message.parameters),
        order_id=message.order_id or "",
        customer_id=message.customer_id or "",
        status=status_to_pb(message.status),
        twilio_sid=message.twilio_sid or "",
        error_code=message.error_code or 0,
        error_message=message.error_message or "",
    )
    pb.created_at.CopyFrom(timestamp_to_pb(message.created_at))
    pb.updated_at.CopyFrom(timestamp_to_pb(message.updated_at))
    return pb
