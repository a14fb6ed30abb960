"""Helpers for list upload tests: a published flow with typed variables, uploading a CSV."""

from typing import Any

import pytest

PROMO_FLOW: dict[str, Any] = {
    "name": "Promo",
    "variables": [
        {"name": "amount", "type": "number", "required": True},
        {"name": "merchant", "type": "string", "default": "the shop"},
        {"name": "vip", "type": "boolean"},
    ],
    "cardTemplates": [
        {
            "id": "offer",
            "name": "Offer",
            "elements": [{"type": "headline", "text": "{{variables.amount}} at {{variables.merchant}}"}],
        }
    ],
    "steps": [{"id": "send", "type": "card", "template": "offer"}],
}
MAPPING = {"flowConfigId": "promo", "userColumn": "customer", "variable": ["amount:Amount", "merchant:Shop"]}


async def publish(
    client: Any, env: Any, flow_id: str = "promo", definition: dict[str, Any] = PROMO_FLOW
) -> None:
    headers = env.headers()
    created = await client.post(
        f"/v1/{env.id}/flows", headers=headers, json={"id": flow_id, "definition": definition}
    )
    assert created.status_code == 201, created.text
    published = await client.post(f"/v1/{env.id}/flows/{flow_id}/publish", headers=headers)
    assert published.status_code == 200, published.text


async def upload(
    client: Any,
    env: Any,
    body: str | bytes,
    params: dict[str, Any] | None = None,
    content_type: str = "text/csv",
) -> Any:
    return await client.post(
        f"/v1/{env.id}/uploads",
        params=params or MAPPING,
        content=body,
        headers={**env.headers(), "Content-Type": content_type},
    )


def csv_rows(n: int, start: int = 1) -> str:
    return "customer,Amount,Shop\n" + "".join(f"u-{i},{i}.5,Shop {i}\n" for i in range(start, start + n))


@pytest.fixture
async def promo(hub_client, hub_env):
    await publish(hub_client, hub_env)
    return "promo"
