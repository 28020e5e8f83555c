"""The human-readable summary `make run` prints once everything is up."""

from __future__ import annotations

import sys

from notifier.common.db import redact_dsn
from notifier.devstack.settings import DevstackSettings

_SEND_EXAMPLE = (
    'grpcurl -d \'{"phone_number": "+1234567890", "template_id": "order_confirmation", '
    '"parameters": {"order_id": "ORD-12345"}, "order_id": "ORD-12345", '
    '"customer_id": "CUST-6789"}\' -plaintext localhost:{port} '
    "whatsapp.WhatsAppService/SendTemplateMessage"
)


def print_banner(
    settings: DevstackSettings, database_url: str, bootstrap: str, twilio_env: dict[str, str]
) -> None:
    grpc = f"localhost:{settings.grpc_port}"
    metrics = "  ".join(f"{name} :{port}" for name, port in settings.metrics_ports.items())
    twilio = twilio_env.get("TWILIO_API_URL", "https://api.twilio.com (real Twilio)")
    lines = [
        "",
        "notifier dev stack is starting (logs follow as JSON lines; Ctrl-C stops everything)",
        f"  gRPC gateway      {grpc}  (reflection on: grpcurl -plaintext {grpc} list)",
        f"  webhook           http://127.0.0.1:{settings.webhook_port}/webhook"
        f"  (Twilio calls {settings.public_webhook_url}/webhook/...)",
        f"  metrics           {metrics}  (/metrics, /healthz)",
        f"  PostgreSQL        {redact_dsn(database_url)}",
        f"  Kafka             {bootstrap}",
        f"  Twilio API        {twilio}",
    ]
    if "TWILIO_API_URL" in twilio_env:
        lines += [
            f"  dev credentials   TWILIO_ACCOUNT_SID={twilio_env['TWILIO_ACCOUNT_SID']}",
            f"                    TWILIO_AUTH_TOKEN={twilio_env['TWILIO_AUTH_TOKEN']}",
            f"  emulator record   curl {twilio}/_emulator/messages",
        ]
    lines += [
        "",
        "Send a message:",
        "  " + _SEND_EXAMPLE.replace("{port}", str(settings.grpc_port)),
        "  grpcurl -d '{\"message_id\": 1}' -plaintext localhost:"
        f"{settings.grpc_port} whatsapp.WhatsAppService/GetMessage",
        "",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
