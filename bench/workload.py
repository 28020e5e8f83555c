"""Realistic SendTemplateMessage requests: distinct valid E.164 recipients, the five seeded
templates with the parameters each one declares, order and customer ids.
"""

from __future__ import annotations

from notifier.common.pb import whatsapp_pb2

# Country code + national prefix; the index fills the remaining digits. Every one is a
# number phonenumbers parses to a known region, canonical E.164, 11-13 digits.
_NUMBER_PATTERNS = (
    ("+447700", 6),  # UK mobile (Ofcom drama range)
    ("+1415", 7),  # US
    ("+491512", 7),  # Germany mobile
    ("+336", 8),  # France mobile
    ("+9198", 8),  # India mobile
    ("+55119", 8),  # Brazil, São Paulo mobile
    ("+614", 8),  # Australia mobile
    ("+346", 8),  # Spain mobile
)
_TEMPLATES = (
    "order_confirmation",
    "shipment_dispatched",
    "delivery_eta",
    "delivery_confirmation",
    "delay_notification",
)


def phone_number(index: int) -> str:
    """A distinct canonical E.164 number for every index below 8,000,000."""
    prefix, digits = _NUMBER_PATTERNS[index % len(_NUMBER_PATTERNS)]
    serial = index // len(_NUMBER_PATTERNS)
    if serial >= 10**digits:
        raise ValueError(f"index {index} is beyond the distinct numbers of {prefix}")
    return f"{prefix}{serial:0{digits}d}"


def parameters(template: str, index: int) -> dict[str, str]:
    """The template's declared parameters, all of them, with plausible values."""
    order = f"ORD-{index:08d}"
    day = f"2026-12-{1 + index % 28:02d}"
    if template == "shipment_dispatched":
        return {"order_id": order, "tracking_id": f"TRK{index:010d}", "estimated_delivery": day}
    if template == "delivery_eta":
        return {"order_id": order, "estimated_delivery": day}
    if template == "delay_notification":
        return {
            "order_id": order,
            "reason": "severe weather at the regional hub",
            "new_estimated_delivery": day,
        }
    return {"order_id": order}


def send_request(index: int) -> whatsapp_pb2.SendTemplateMessageRequest:
    """Request number `index`: its recipient is distinct from every other index's."""
    template = _TEMPLATES[index % len(_TEMPLATES)]
    return whatsapp_pb2.SendTemplateMessageRequest(
        phone_number=phone_number(index),
        template_id=template,
        parameters=parameters(template, index),
        order_id=f"ORD-{index:08d}",
        customer_id=f"CUST-{index % 50_000:06d}",
    )
