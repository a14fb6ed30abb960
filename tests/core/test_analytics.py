"""Analytics events in the core: names, the §2 shape, the checks on custom and SDK events."""

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core import analytics as core
from hub.core.analytics import (
    CSV_COLUMNS,
    PLATFORM_EVENTS,
    SDK_EVENTS,
    build_event,
    check_custom_event,
    check_properties,
    check_sdk_event,
    csv_row,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
CARD = {"cardInstanceId": "c1", "cardInstanceStatus": "active", "cardTemplateId": "t1",
        "cardTemplateName": "Welcome", "cardTemplateVersion": 2, "cardPriority": 5,
        "publishedAt": "2024-05-01T12:00:00Z"}
PLATFORM = {"lifecycleId": "l1", "targetStreamIds": ["default"], "targetPlatforms": ["iOS"],
            "triggerEventSource": "live", "flowConfigId": "welcome", "flowInvocationId": "inv1",
            "flowInstanceId": "i1", "flowVersion": 2, "metadata": {"campaign": "c1"},
            "eventNotificationDetail": {}}


def test_the_event_names_are_those_of_the_protocol():
    assert PLATFORM_EVENTS == {
        "card-published", "card-completed", "card-dismissed", "card-snoozed", "card-unsnoozed",
        "card-expired", "card-cancelled", "card-embargoed", "card-error", "notification-sent",
        "segment-entered", "segment-exited", "action-flow-started", "action-flow-step-completed",
        "action-flow-completed"}
    assert SDK_EVENTS == {
        "card-displayed", "card-subview-displayed", "card-subview-exited", "card-voted-up",
        "card-voted-down", "notification-received", "request-failed", "runtime-vars-updated",
        "snooze-options-displayed", "snooze-options-canceled", "stream-displayed", "user-redirected",
        "sdk-initialized", "video-played", "video-completed"}
    assert not PLATFORM_EVENTS & SDK_EVENTS
    assert all(core.check_event_name(name) == [] for name in PLATFORM_EVENTS | SDK_EVENTS)


def test_a_built_event_has_every_top_level_key_and_every_context_key():
    event = build_event("card-published", user_id="ana", timestamp=NOW, properties={"a": 1},
                        card=CARD, platform=PLATFORM)
    assert tuple(event) == core.TOP_LEVEL_KEYS
    assert set(event) == {"id", "endUserId", "analyticsEvent", "timestamp", "properties", "hostContext",
                          "eventContext", "sdkContext", "streamContext", "cardContext", "platformContext"}
    assert uuid.UUID(event["id"]).version == 7  # time-ordered (hub.core.ids)
    assert event["endUserId"] == "ana" and event["analyticsEvent"] == "card-published"
    assert event["timestamp"] == "2024-05-01T12:00:00.123Z"
    assert event["properties"] == {"a": 1} and event["hostContext"] == {}
    assert event["eventContext"] == {"actionSource": "internal", "ip": None, "userLocalTimestamp": None}
    assert tuple(event["cardContext"]) == core.CARD_CONTEXT_KEYS
    assert event["cardContext"]["cardInstanceId"] == "c1" and event["cardContext"]["cardViewState"] is None
    assert tuple(event["platformContext"]) == core.PLATFORM_CONTEXT_KEYS
    assert event["platformContext"]["flowInvocationId"] == "inv1"
    assert tuple(event["sdkContext"]) == core.SDK_CONTEXT_KEYS
    assert tuple(event["streamContext"]) == core.STREAM_CONTEXT_KEYS
    json.dumps(event)  # JSON all the way down


def test_an_event_without_card_or_flow_still_has_the_whole_shape():
    event = build_event("order-placed", user_id=None, timestamp=NOW,
                        event_context={"actionSource": "customer"}, event_id="e-1")
    assert event["id"] == "e-1" and event["endUserId"] is None
    assert set(event["cardContext"].values()) == {None}
    assert set(event["platformContext"].values()) == {None}
    assert event["eventContext"]["actionSource"] == "customer"


def test_timestamps_are_utc_with_z_from_any_offset():
    plus_two = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert build_event("x", user_id="u", timestamp=plus_two)["timestamp"] == "2024-05-01T12:00:00.000Z"
    with pytest.raises(ValueError, match="naive"):
        build_event("x", user_id="u", timestamp=datetime(2024, 5, 1))


@pytest.mark.parametrize("kwargs", [
    {"card": {"cardInstanceID": "typo"}},
    {"platform": {"flowId": "x"}},
    {"event_context": {"actionSource": "robot"}},
    {"platform": {"triggerEventSource": "staging"}},
])
def test_build_event_refuses_unknown_keys_and_values(kwargs):
    with pytest.raises(ValueError):
        build_event("card-published", user_id="u", timestamp=NOW, **kwargs)


def test_build_event_refuses_a_name_that_is_not_kebab_case():
    with pytest.raises(ValueError):
        build_event("Card_Published", user_id="u", timestamp=NOW)


def test_event_columns_come_from_the_body_ids():
    event = build_event("card-published", user_id="ana", timestamp=NOW, card=CARD, platform=PLATFORM)
    assert core.event_columns(event) == {
        "id": event["id"], "user_id": "ana", "name": "card-published",
        "timestamp": datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC), "flow_id": "welcome",
        "invocation_id": "inv1", "instance_id": "i1", "card_id": "c1"}


@pytest.mark.parametrize("text,expected", [
    ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2024-05-01T12:00:00.5-00:00", datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
])
def test_parse_timestamp_reads_offsets(text, expected):
    assert core.parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["2024-05-01T12:00:00", "2024-05-01", "yesterday", "", "9" * 100,
                                  "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_parse_timestamp_refuses_text_without_offset_or_garbage(text):
    with pytest.raises(ValueError):
        core.parse_timestamp(text)


def test_csv_row_flattens_ids_and_encodes_objects_as_json():
    event = build_event("card-published", user_id="ana", timestamp=NOW, properties={"é": [1]},
                        card=CARD, platform=PLATFORM)
    row = dict(zip(CSV_COLUMNS, csv_row(event), strict=True))
    assert row["id"] == event["id"] and row["timestamp"] == event["timestamp"]
    assert row["flowConfigId"] == "welcome" and row["cardInstanceId"] == "c1"
    assert json.loads(row["properties"]) == {"é": [1]}
    assert json.loads(row["platformContext"]) == event["platformContext"]
    buffer = io.StringIO()
    csv.writer(buffer).writerow(csv_row(event))
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == csv_row(event)


# --- custom events --------------------------------------------------------------------------


def test_a_valid_custom_event_is_cleaned():
    clean, issues = check_custom_event({"userId": "ana", "name": "order-placed",
                                        "properties": {"total": 12.5},
                                        "timestamp": "2024-05-01T10:00:00+00:00"}, NOW)
    assert issues == []
    assert clean == {"userId": "ana", "name": "order-placed", "properties": {"total": 12.5},
                     "timestamp": datetime(2024, 5, 1, 10, tzinfo=UTC)}
    clean, issues = check_custom_event({"userId": "ana", "name": "x"}, NOW)
    assert issues == [] and clean["timestamp"] == NOW and clean["properties"] == {}


@pytest.mark.parametrize("item,field", [
    ({"userId": "ana", "name": "Order_Placed"}, "name"),
    ({"userId": "ana", "name": "order--placed"}, "name"),
    ({"userId": "ana", "name": "-order"}, "name"),
    ({"userId": "ana", "name": "a" * 65}, "name"),
    ({"userId": "ana", "name": ""}, "name"),
    ({"userId": "ana", "name": 7}, "name"),
    ({"userId": "ana", "name": "card-published"}, "name"),
    ({"userId": "ana", "name": "card-displayed"}, "name"),
    ({"name": "order-placed"}, "userId"),
    ({"userId": "a/b", "name": "order-placed"}, "userId"),
    ({"userId": "ana", "name": "order-placed", "properties": []}, "properties"),
    ({"userId": "ana", "name": "order-placed", "properties": {"a": "\x00"}}, "properties"),
    ({"userId": "ana", "name": "order-placed", "properties": {"a": "x" * 20_000}}, "properties"),
    ({"userId": "ana", "name": "order-placed", "timestamp": "2024-05-01T10:00:00"}, "timestamp"),
    ({"userId": "ana", "name": "order-placed", "timestamp": "2024-05-03T10:00:00Z"}, "timestamp"),
    ({"userId": "ana", "name": "order-placed", "timestamp": 12}, "timestamp"),
    ({"userId": "ana", "name": "order-placed", "type": "x"}, "type"),
    ("not an object", ""),
])
def test_invalid_custom_events_name_the_field(item, field):
    _clean, issues = check_custom_event(item, NOW)
    assert field in [i.field for i in issues], issues


def test_the_longest_custom_name_is_64_characters():
    assert check_custom_event({"userId": "u", "name": "a" * 64}, NOW)[1] == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@given(json_values)
def test_check_properties_never_raises(value):
    issues = check_properties(value)
    if not isinstance(value, dict):
        assert issues


def test_deeply_nested_properties_are_refused_without_recursion_errors():
    value: dict = {}
    for _ in range(5000):
        value = {"a": value}
    assert check_properties(value)[0].reason.startswith("must be nested at most")


# --- SDK events -----------------------------------------------------------------------------


def test_a_valid_sdk_event_gives_build_event_arguments():
    event_id = str(uuid.uuid4())
    fields, issues = check_sdk_event({
        "id": event_id, "analyticsEvent": "card-displayed", "timestamp": "2024-05-01T11:59:00Z",
        "cardInstanceId": "c1", "cardViewState": "topview",
        "sdkContext": {"platform": "iOS", "sdkVersion": "1.2.3", "containerId": "default"},
        "streamContext": {"displayMode": "stream", "cardPositionInStream": 1},
    }, NOW)
    assert issues == []
    assert fields["name"] == "card-displayed" and fields["event_id"] == event_id
    assert fields["timestamp"] == datetime(2024, 5, 1, 11, 59, tzinfo=UTC)
    assert fields["card_instance_id"] == "c1" and fields["sdk_context"]["platform"] == "iOS"
    event = build_event(fields["name"], user_id="ana", timestamp=fields["timestamp"],
                        event_id=fields["event_id"], sdk_context=fields["sdk_context"],
                        stream_context=fields["stream_context"],
                        event_context={"actionSource": "user"},
                        card={"cardInstanceId": fields["card_instance_id"],
                              "cardViewState": fields["card_view_state"]})
    assert event["sdkContext"]["sdkVersion"] == "1.2.3"


@pytest.mark.parametrize("raw,field", [
    ({"analyticsEvent": "order-placed"}, "analyticsEvent"),
    ({"analyticsEvent": "card-published", "cardInstanceId": "c1"}, "analyticsEvent"),
    ({"analyticsEvent": ["card-displayed"]}, "analyticsEvent"),
    ({"analyticsEvent": "card-displayed"}, "cardInstanceId"),
    ({"analyticsEvent": "stream-displayed", "sdkContext": {"platform": "Windows"}}, "sdkContext.platform"),
    ({"analyticsEvent": "stream-displayed", "sdkContext": {"platform": ["iOS"]}}, "sdkContext.platform"),
    ({"analyticsEvent": "stream-displayed", "sdkContext": {"os": "x"}}, "sdkContext.os"),
    ({"analyticsEvent": "stream-displayed", "streamContext": {"displayMode": "grid"}},
     "streamContext.displayMode"),
    ({"analyticsEvent": "runtime-vars-updated"}, "properties.resolvedVariables"),
    ({"analyticsEvent": "card-voted-down", "cardInstanceId": "c1", "properties": {"message": 1}},
     "properties.message"),
    ({"analyticsEvent": "sdk-initialized", "id": "not-a-uuid"}, "id"),
    ({"analyticsEvent": "sdk-initialized", "extra": 1}, "extra"),
    ([], ""),
])
def test_invalid_sdk_events_name_the_field(raw, field):
    _fields, issues = check_sdk_event(raw, NOW)
    assert field in [i.field for i in issues], issues


def test_event_ids_made_in_one_instant_sort_in_the_order_they_were_made():
    from datetime import UTC, datetime

    from hub.core.analytics import build_event

    stamp = datetime.now(UTC)
    ids = [build_event("action-flow-started", user_id="u", timestamp=stamp)["id"] for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
