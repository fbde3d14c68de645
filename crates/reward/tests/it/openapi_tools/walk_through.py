"""The README walk-through, through a client generated from /openapi.json by openapi-python-client
(package `reward_client`, on PYTHONPATH). Run by tests/it/openapi_tools.rs.

Arguments: the server's base URL, an API key, the URL of a receiver answering 2xx. Checks every
answer's generated type on the way; prints one JSON line of what it saw for the Rust side.
"""

import datetime
import json
import sys
import time

import httpx
from reward_client import AuthenticatedClient
from reward_client.api.deliveries import get_delivery, list_deliveries, search_deliveries
from reward_client.api.events import list_events
from reward_client.api.trigger_events import record_trigger_event
from reward_client.api.triggers import put_trigger
from reward_client.api.users import get_user
from reward_client.api.webhooks import create_webhook
from reward_client.models import (
    AttemptView,
    BalanceCreditPointsIssuedEvent,
    DeliveryList,
    DeliveryStatusName,
    DeliveryView,
    EventList,
    EventTypeName,
    PerUnitRule,
    TriggerBody,
    TriggerEventBody,
    TriggerEventCreatedEvent,
    TriggerEventView,
    TriggerView,
    UserView,
    WebhookCreateBody,
    WebhookView,
)

USER = "ca9bb5c2-25a6-43e9-972e-862d28241a47"


def expect_type(value, kind):
    if not isinstance(value, kind):
        raise AssertionError(f"expected a {kind.__name__}, got {type(value).__name__}: {value!r}")
    return value


def main():
    base_url, key, receiver_url = sys.argv[1:4]
    # Any answer the document does not describe raises.
    client = AuthenticatedClient(
        base_url=base_url, token=key, raise_on_unexpected_status=True, timeout=httpx.Timeout(10)
    )

    # 3. A webhook subscribed to both event types; its secret comes back once.
    webhook = create_webhook.sync(
        client=client,
        body=WebhookCreateBody(
            name="Orders",
            url=receiver_url,
            events=[EventTypeName.TRIGGER_EVENT_CREATED, EventTypeName.BALANCE_CREDIT_POINTS_ISSUED],
        ),
    )
    expect_type(webhook, WebhookView)
    assert webhook.secret.startswith("whsec_"), webhook.secret

    # 4. A trigger giving 10 points per unit, then a trigger event with an Idempotency-Key,
    #    sent twice: the second is a replay and says so.
    trigger = put_trigger.sync(
        id="successful_payment",
        client=client,
        body=TriggerBody(name="Successful payment", credit_points=PerUnitRule(per_unit=10)),
    )
    expect_type(trigger, TriggerView)
    expect_type(trigger.credit_points, PerUnitRule)
    body = TriggerEventBody(user_id=USER, trigger_id="successful_payment", value=2.99)
    first = record_trigger_event.sync_detailed(client=client, body=body, idempotency_key="order-42")
    assert first.status_code == 201, first
    recorded = expect_type(first.parsed, TriggerEventView)
    assert recorded.credit_points_issued == 29, recorded
    assert "idempotent-replayed" not in first.headers, first.headers
    again = record_trigger_event.sync_detailed(client=client, body=body, idempotency_key="order-42")
    assert expect_type(again.parsed, TriggerEventView).id == recorded.id, again.parsed
    replayed = again.headers.get("idempotent-replayed")
    assert replayed == "true", again.headers

    # 5. The webhook's deliveries, once both succeeded, and one delivery with its attempts.
    deadline = time.monotonic() + 20
    while True:
        page = expect_type(
            list_deliveries.sync(id=webhook.id, client=client, status=DeliveryStatusName.SUCCEEDED),
            DeliveryList,
        )
        if len(page.data) == 2:
            break
        assert time.monotonic() < deadline, f"deliveries not succeeded in time: {page}"
        time.sleep(0.05)
    for delivery in page.data:
        expect_type(delivery, DeliveryView)
        assert delivery.status is DeliveryStatusName.SUCCEEDED, delivery
    # The same two in the account's search, by webhook and time (an offset, not Z, sent as %2B).
    since = datetime.datetime(2000, 1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    found = expect_type(
        search_deliveries.sync(client=client, webhook_id=webhook.id, created_after=since),
        DeliveryList,
    )
    assert [d.id for d in found.data] == [d.id for d in page.data], found
    shown = expect_type(get_delivery.sync(id=page.data[0].id, client=client), DeliveryView)
    attempt = expect_type(shown.attempts[0], AttemptView)
    assert attempt.number == 1 and attempt.status_code == 204, attempt

    # The events themselves, each parsed into its own type's class by its `type`.
    events = expect_type(list_events.sync(client=client), EventList)
    created = [event for event in events.data if isinstance(event, TriggerEventCreatedEvent)]
    issued = [event for event in events.data if isinstance(event, BalanceCreditPointsIssuedEvent)]
    assert len(created) == 1 and len(issued) == 1, events.data
    assert created[0].data.id == recorded.id and created[0].data.value == 2.99, created[0]
    assert created[0].data.trigger.id == "successful_payment", created[0]
    assert issued[0].data.points == 29 and issued[0].data.balance == 29, issued[0]
    user = expect_type(get_user.sync(user_id=USER, client=client), UserView)
    assert user.balance == 29, user

    print(
        json.dumps(
            {
                "secret": webhook.secret,
                "replayed": replayed,
                "delivery_classes": sorted({type(item).__name__ for item in page.data}),
                "delivery_status": shown.status.value,
                "attempt_class": type(attempt).__name__,
                "attempt_status_code": attempt.status_code,
                "event_classes": sorted(type(event).__name__ for event in events.data),
                "event_ids": sorted(event.id for event in events.data),
                "balance": user.balance,
            }
        )
    )


if __name__ == "__main__":
    main()
