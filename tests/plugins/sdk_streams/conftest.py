"""Fixtures for the sdk_streams tests: an end-user token signer and flow helpers."""

from __future__ import annotations

from typing import Any

import pytest

from hub_plugins.sdk_streams.testing import Signer, make_signer
from tests.engine.conftest import Flows


@pytest.fixture
async def sdk_signer(hub: Any, hub_env: Any) -> Signer:
    """An ES256 key registered for ``hub_env``; ``sdk_signer.token("u1")`` is u1's bearer token."""
    return await make_signer(hub, hub_env.id)


@pytest.fixture
def flows(hub_client: Any, hub_env: Any, run_jobs: Any, hub: Any) -> Flows:
    """Publish and start flows through the API (see tests/engine/conftest.py)."""
    return Flows(hub_client, hub_env, run_jobs, hub)


def bearer(signer: Signer, user_id: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {signer.token(user_id, **claims)}"}
