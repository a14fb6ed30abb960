"""When a customer may be notified, payload limits and retry delays (hub.core.push)."""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.customers import WEEKDAYS
from hub.core.push import next_window, payload_error, payload_size, priority_for, retry_delay

MONDAY_NOON_UTC = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def hours(start: str, end: str) -> list[dict[str, str]]:
    return [{"from": start, "to": end}]


def test_no_windows_means_any_time():
    assert next_window({}, MONDAY_NOON_UTC) == MONDAY_NOON_UTC
    assert next_window({"timezone": "Asia/Tokyo"}, MONDAY_NOON_UTC) == MONDAY_NOON_UTC


def test_notifications_off_means_never():
    assert next_window({"notificationsEnabled": False}, MONDAY_NOON_UTC) is None


def test_every_weekday_empty_means_never():
    assert next_window({"notificationWindows": {d: [] for d in WEEKDAYS}}, MONDAY_NOON_UTC) is None


def test_inside_a_window_is_now_outside_is_the_next_start_in_the_customers_timezone():
    prefs = {"timezone": "Europe/Paris", "notificationWindows": {"monday": [{"from": "09:00", "to": "12:00"},
                                                                           {"from": "14:00", "to": "18:00"}]}}
    # 12:00 UTC is 13:00 in Paris: between the two windows.
    assert next_window(prefs, MONDAY_NOON_UTC) == datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    assert next_window(prefs, utc(2026, 12, 7, 9, 0)) == utc(2026, 12, 7, 9, 0)


def test_after_the_last_window_of_the_day_a_missing_weekday_allows_from_its_midnight():
    prefs = {"timezone": "America/New_York", "notificationWindows": {"monday": hours("08:00", "09:00")}}
    # 12:00 UTC is 07:00 in New York: the Monday window is ahead.
    assert next_window(prefs, MONDAY_NOON_UTC) == datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    # 15:00 UTC is 10:00: Monday's window has passed; Tuesday has no list, so any time from midnight.
    assert next_window(prefs, utc(2026, 12, 7, 15, 0)) == utc(2026, 12, 8, 5, 0)


def test_a_window_to_midnight_and_weekend_off():
    prefs = {"notificationWindows": {"friday": hours("22:00", "24:00"), "saturday": [], "sunday": []}}
    friday_late = datetime(2026, 12, 11, 23, 30, tzinfo=UTC)
    assert next_window(prefs, friday_late) == friday_late
    assert next_window(prefs, utc(2026, 12, 12, 10, 0)) == utc(2026, 12, 14, 0, 0)


def test_a_window_starting_in_the_hour_clocks_skip_starts_when_it_exists():
    # Europe/London skips 01:00-02:00 on 2027-03-28 (a Sunday).
    prefs = {"timezone": "Europe/London", "notificationWindows": {"sunday": hours("01:30", "03:00")}}
    start = next_window(prefs, datetime(2027, 3, 28, 0, 0, tzinfo=UTC))
    assert start is not None and start.astimezone(ZoneInfo("Europe/London")).hour in (1, 2)
    assert start >= datetime(2027, 3, 28, 0, 0, tzinfo=UTC)


def _hhmm(half_hours: int) -> str:
    return f"{half_hours // 2:02d}:{half_hours % 2 * 30:02d}"


windows = st.lists(
    st.tuples(st.integers(0, 47), st.integers(1, 48)).filter(lambda p: p[0] < p[1])
    .map(lambda p: {"from": _hhmm(p[0]), "to": _hhmm(p[1])}),
    max_size=3)


def _min(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def allowed(prefs, moment: datetime) -> bool:
    local = moment.astimezone(ZoneInfo(prefs.get("timezone") or "UTC"))
    day = prefs["notificationWindows"].get(WEEKDAYS[local.weekday()])
    if day is None:
        return True
    minutes = local.hour * 60 + local.minute
    return any(_min(w["from"]) <= minutes < _min(w["to"]) for w in day)


@settings(max_examples=300, deadline=None)
@given(days=st.dictionaries(st.sampled_from(WEEKDAYS), windows, max_size=7),
       zone=st.sampled_from(["UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]),
       minutes=st.integers(0, 60 * 24 * 14))
def test_the_next_window_is_never_early_and_always_inside_a_window(days, zone, minutes):
    prefs = {"timezone": zone, "notificationWindows": days}
    at = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    found = next_window(prefs, at)
    if found is None:
        assert all(days.get(d) == [] for d in WEEKDAYS)
        return
    assert found >= at
    assert found - at <= timedelta(days=8)
    assert allowed(prefs, found)
    if found > at:
        assert not allowed(prefs, at)


def test_payload_size_and_the_error_for_too_large():
    assert payload_size("Hi", "There", {"a": "b"}) == len(
        b'{"notification":{"title":"Hi","body":"There"},"data":{"a":"b"}}')
    assert payload_error("Hi", "There", {}) is None
    error = payload_error("Hi", "x" * 4000, {})
    assert error is not None and "the push payload is 4" in error and "3840" in error


def test_priority_follows_the_card():
    assert [priority_for(p) for p in (None, 1, 6, 7, 10)] == ["normal", "normal", "normal", "high", "high"]


def test_retry_delay_grows_with_jitter_and_honours_retry_after():
    rng = random.Random(7)
    delays = [retry_delay(n, None, base=10, cap=3600, rng=rng) for n in range(1, 12)]
    assert 5 <= delays[0] <= 10 and 40 <= delays[3] <= 80
    assert all(d <= 3600 for d in delays) and delays[-1] >= 1800
    assert retry_delay(1, 120, base=10, cap=3600, rng=rng) >= 120
    assert retry_delay(1, 7200, base=10, cap=3600, rng=rng) == 7200  # the provider's word wins
