"""Shared by the gateway unit tests: a fake template catalog and the seed's request."""

from __future__ import annotations

import dataclasses

from notifier.common.domain.templates import Template, TemplateParameter
from notifier.common.errors import FailedPrecondition, NotFound
from notifier.gateway.model import SendRequest

ORDER_CONFIRMATION = Template(
    name="order_confirmation",
    content_sid="HX" + "a" * 32,
    body="Your order {{order_id}} is confirmed.",
    parameters=(TemplateParameter("order_id", max_length=64),),
)
DELAY = Template(
    name="delay_notification",
    content_sid="HX" + "b" * 32,
    body="{{order_id}} delayed: {{reason}}. New ETA {{new_estimated_delivery}}.",
    parameters=(
        TemplateParameter("order_id", max_length=64),
        TemplateParameter("reason", max_length=200),
        TemplateParameter("new_estimated_delivery", max_length=64),
    ),
)
RETIRED = dataclasses.replace(ORDER_CONFIRMATION, name="retired", enabled=False)


class FakeCatalog:
    def __init__(self, *templates: Template) -> None:
        self._templates = {t.name: t for t in templates}

    def get(self, name: str) -> Template:
        template = self._templates.get(name)
        if template is None:
            raise NotFound(f"template_id: no template named {name!r}")
        if not template.enabled:
            raise FailedPrecondition(f"template_id: template {name!r} is disabled")
        return template


CATALOG = FakeCatalog(ORDER_CONFIRMATION, DELAY, RETIRED)
# The original service's grpcurl example, verbatim.
SEED = SendRequest(
    phone_number="+1234567890",
    template_id="order_confirmation",
    parameters={"order_id": "ORD-12345"},
    order_id="ORD-12345",
    customer_id="CUST-6789",
)
