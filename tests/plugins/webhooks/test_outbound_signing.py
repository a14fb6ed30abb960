"""Signing secrets and signatures of outbound webhooks, and how retry delays are computed."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import msgspec
import pytest

from hub_plugins.webhooks import outbound_delivery, outbound_signing
from hub_plugins.webhooks.settings import WebhooksSettings
from tests.fakes.webhook_receiver import verify_standard


def test_signature_matches_the_standard_webhooks_reference_vector():
    # The example of the Standard Webhooks specification's own test suite.
    signature = outbound_signing.sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                      "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_new_secrets_are_whsec_base64_of_32_random_bytes():
    first, second = outbound_signing.new_secret(), outbound_signing.new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(outbound_signing.secret_key(first)) == 32


def test_every_secret_signs_and_a_receiver_accepts_any_of_them():
    old, new = outbound_signing.new_secret(), outbound_signing.new_secret()
    header = outbound_signing.signature_header([new, old], "msg_1", 1700000000, b"{}")
    assert len(header.split()) == 2
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000", "webhook-signature": header}
    assert verify_standard(old, headers, b"{}", tolerance=10**10)
    assert verify_standard(new, headers, b"{}", tolerance=10**10)
    assert not verify_standard(new, headers, b"{ }", tolerance=10**10)


def test_sealed_secrets_open_only_with_the_same_hub_key():
    secret = outbound_signing.new_secret()
    sealed = outbound_signing.SecretBox("key-one").seal(secret)
    assert secret not in sealed
    assert outbound_signing.SecretBox("key-one").open(sealed) == secret
    with pytest.raises(ValueError, match="HUB_SECRET_KEY"):
        outbound_signing.SecretBox("key-two").open(sealed)


def test_retry_after_reads_seconds_and_http_dates():
    assert outbound_delivery.retry_after_seconds("120") == 120
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 80 <= outbound_delivery.retry_after_seconds(later) <= 91
    assert outbound_delivery.retry_after_seconds("soon") is None
    assert outbound_delivery.retry_after_seconds(None) is None


def test_backoff_doubles_with_jitter_and_is_capped():
    hub = SimpleNamespace(plugin_settings={"webhooks": msgspec.structs.replace(
        WebhooksSettings(), outbound_backoff_base_seconds=1.0, outbound_max_backoff_seconds=60)})
    for failures, low, high in ((1, 0.5, 1), (2, 1, 2), (3, 2, 4), (10, 30, 60), (40, 30, 60)):
        delay = outbound_delivery.backoff(hub, failures, None)
        assert low <= delay <= high, (failures, delay)
    assert outbound_delivery.backoff(hub, 1, 30) == 30  # Retry-After wins
    assert outbound_delivery.backoff(hub, 1, 3600) == 60  # ... up to the cap
