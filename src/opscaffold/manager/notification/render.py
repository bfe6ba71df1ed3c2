"""What a notification says: one neutral format for every channel (severity, rule, node,
value against threshold, times in RFC 3339 UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opscaffold.manager.kit.clock import rfc3339
from opscaffold.manager.notification.schemas import AlertFacts

OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "==", "ne": "!="}


@dataclass(frozen=True, slots=True)
class Notification:
    """One delivery as it is sent: its id (receivers deduplicate by it), the event and the
    alert as it was queued (none for a channel's test message)."""

    delivery_id: int
    event: str
    alert: AlertFacts | None
    channel_name: str
    sent_at: datetime


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def title(n: Notification) -> str:
    if n.alert is None:
        return f"[TEST] Ops Scaffold test notification ({n.channel_name})"
    a = n.alert
    return f"[{n.event.upper()}] {a.severity}: {a.rule_name} on {a.node_name}"


def lines(n: Notification) -> list[str]:
    if n.alert is None:
        return [
            f"This is a test notification for channel {n.channel_name}.",
            f"Sent at: {rfc3339(n.sent_at)}",
        ]
    a = n.alert
    operator = OPERATORS.get(a.operator, a.operator)
    out = [
        f"Severity: {a.severity}",
        f"Rule: {a.rule_name} (#{a.rule_id})",
        f"Node: {a.node_name} (#{a.node_id})",
        f"Value: {a.metric} = {_number(a.current_value)} ({operator} {_number(a.threshold)})",
        f"Fired at: {rfc3339(a.fired_at)}",
    ]
    if a.resolved_at is not None:
        out.append(f"Resolved at: {rfc3339(a.resolved_at)}")
    out.append(f"Alert: #{a.id}, delivery {n.delivery_id}")
    return out


def text(n: Notification) -> str:
    return "\n".join([title(n), "", *lines(n)])


def markdown(n: Notification) -> str:
    return "\n\n".join([f"### {title(n)}", *(f"- {line}" for line in lines(n))])


def webhook_body(n: Notification) -> dict[str, Any]:
    return {
        "event": n.event,
        "alert": None if n.alert is None else n.alert.model_dump(mode="json"),
        "delivery_id": str(n.delivery_id),
        "sent_at": rfc3339(n.sent_at),
    }
