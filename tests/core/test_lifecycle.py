"""The card lifecycle (hub/core/lifecycle.py): a unit test per rule, then a stateful test that
drives random action sequences with a moving clock against an oracle written out here."""

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from hub.core import lifecycle
from hub.core.lifecycle import (
    ACTIONS,
    ALL_STATES,
    CLOSED_STATES,
    OPEN_STATES,
    Change,
    InvalidTransition,
    allowed,
    apply,
    create,
    due_action,
    is_open,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

# The oracle: the rules of ARCHITECTURE.md and the brief, written out independently of the module.
EXPECTED_ALLOWED = {
    "embargoed": {"publish", "expire", "cancel"},
    "active": {"snooze", "expire", "complete", "dismiss", "cancel"},
    "snoozed": {"snooze", "unsnooze", "expire", "complete", "dismiss", "cancel"},
    "completed": set(), "dismissed": set(), "cancelled": set(), "expired": set(),
}
EXPECTED = {  # action -> (new status, event)
    "publish": ("active", "card-published"),
    "snooze": ("snoozed", "card-snoozed"),
    "unsnooze": ("active", "card-unsnoozed"),
    "expire": ("expired", "card-expired"),
    "complete": ("completed", "card-completed"),
    "dismiss": ("dismissed", "card-dismissed"),
    "cancel": ("cancelled", "card-cancelled"),
}
PLATFORM_CARD_EVENTS = {"card-published", "card-completed", "card-dismissed", "card-snoozed",
                        "card-unsnoozed", "card-expired", "card-cancelled", "card-embargoed"}


# --- the interface ----------------------------------------------------------------------------


def test_states_and_actions():
    assert OPEN_STATES == {"active", "embargoed", "snoozed"}
    assert CLOSED_STATES == {"completed", "dismissed", "cancelled", "expired"}
    assert ALL_STATES == OPEN_STATES | CLOSED_STATES and not OPEN_STATES & CLOSED_STATES
    assert ACTIONS == ("publish", "snooze", "unsnooze", "expire", "complete", "dismiss", "cancel")
    assert issubclass(InvalidTransition, ValueError)


def test_change_is_frozen_and_snoozed_until_defaults_to_none():
    change = Change(previous=None, status="active", event="card-published")
    assert change.snoozed_until is None and not change.closed
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.status = "expired"  # type: ignore[misc]


@pytest.mark.parametrize("status", sorted(ALL_STATES))
def test_allowed_matches_the_rules(status):
    assert allowed(status) == EXPECTED_ALLOWED[status]
    assert is_open(status) == (status in OPEN_STATES)


def test_every_event_is_a_platform_card_event():
    assert {event for _, event in EXPECTED.values()} | {"card-embargoed"} <= PLATFORM_CARD_EVENTS
    assert dict(lifecycle.EVENTS) == {a: e for a, (_, e) in EXPECTED.items()}
    assert dict(lifecycle.TARGETS) == {a: s for a, (s, _) in EXPECTED.items()}


# --- a new card -------------------------------------------------------------------------------


def test_a_new_card_without_embargo_is_published():
    assert create(embargo_until=None, now=T0) == Change(None, "active", "card-published")


def test_a_new_card_with_a_future_embargo_is_embargoed():
    assert create(embargo_until=T0 + MINUTE, now=T0) == Change(None, "embargoed", "card-embargoed")


@pytest.mark.parametrize("embargo", [T0, T0 - MINUTE])
def test_an_embargo_that_has_ended_is_no_embargo(embargo):
    assert create(embargo_until=embargo, now=T0) == Change(None, "active", "card-published")


def test_embargo_in_another_timezone_compares_as_an_instant():
    tokyo = timezone(timedelta(hours=9))
    assert create(embargo_until=(T0 + MINUTE).astimezone(tokyo), now=T0).status == "embargoed"
    assert create(embargo_until=(T0 - MINUTE).astimezone(tokyo), now=T0).status == "active"


# --- each transition --------------------------------------------------------------------------


def test_embargo_end_publishes():
    assert apply("embargoed", "publish", now=T0) == Change("embargoed", "active", "card-published")


def test_snooze_from_active_carries_the_until():
    change = apply("active", "snooze", now=T0, until=T0 + MINUTE)
    assert change == Change("active", "snoozed", "card-snoozed", snoozed_until=T0 + MINUTE)


def test_snoozing_a_snoozed_card_moves_its_until():
    later = T0 + 10 * MINUTE
    moved = apply("snoozed", "snooze", now=T0, until=later)
    assert moved == Change("snoozed", "snoozed", "card-snoozed", later)
    assert apply("snoozed", "snooze", now=T0, until=T0 + MINUTE).snoozed_until == T0 + MINUTE


@pytest.mark.parametrize("until", [None, T0, T0 - MINUTE])
def test_snooze_needs_an_until_in_the_future(until):
    with pytest.raises(InvalidTransition, match="snooze"):
        apply("active", "snooze", now=T0, until=until)


def test_a_naive_until_is_an_invalid_snooze():
    with pytest.raises(InvalidTransition, match="timezone"):
        apply("active", "snooze", now=T0, until=datetime(2030, 1, 1))


def test_snooze_end_unsnoozes_and_clears_the_until():
    assert apply("snoozed", "unsnooze", now=T0) == Change("snoozed", "active", "card-unsnoozed", None)


@pytest.mark.parametrize("status", ["active", "snoozed"])
@pytest.mark.parametrize("action", ["complete", "dismiss"])
def test_customer_may_complete_or_dismiss_a_card_it_sees(status, action):
    target, event = EXPECTED[action]
    assert apply(status, action, now=T0) == Change(status, target, event)


@pytest.mark.parametrize("action", ["complete", "dismiss", "snooze", "unsnooze"])
def test_customer_cannot_act_on_an_embargoed_card(action):
    with pytest.raises(InvalidTransition, match=f"cannot {action} a card that is embargoed"):
        apply("embargoed", action, now=T0, until=T0 + MINUTE)


@pytest.mark.parametrize("action", ["publish", "unsnooze"])
def test_timer_actions_need_the_matching_state(action):
    with pytest.raises(InvalidTransition):
        apply("active", action, now=T0)


@pytest.mark.parametrize("status", sorted(OPEN_STATES))
def test_cancel_from_any_open_state(status):
    assert apply(status, "cancel", now=T0) == Change(status, "cancelled", "card-cancelled")


@pytest.mark.parametrize("status", sorted(OPEN_STATES))
def test_expire_from_any_open_state(status):
    assert apply(status, "expire", now=T0) == Change(status, "expired", "card-expired")


@pytest.mark.parametrize("status", sorted(CLOSED_STATES))
@pytest.mark.parametrize("action", ACTIONS)
def test_closed_cards_never_reopen(status, action):
    assert allowed(status) == frozenset()
    with pytest.raises(InvalidTransition) as raised:
        apply(status, action, now=T0, until=T0 + MINUTE)
    assert status in str(raised.value) and action in str(raised.value)
    assert (raised.value.status, raised.value.action) == (status, action)


def test_unknown_status_and_action_are_refused():
    with pytest.raises(InvalidTransition, match="unknown card action 'open'"):
        apply("active", "open", now=T0)
    with pytest.raises(InvalidTransition, match="unknown card status 'archived'"):
        apply("archived", "cancel", now=T0)
    with pytest.raises(InvalidTransition):
        allowed("archived")
    with pytest.raises(InvalidTransition):
        is_open("archived")


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        apply("active", "cancel", now=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        create(embargo_until=None, now=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        due_action("active", now=T0, embargo_until=None, snoozed_until=None, expires_at=datetime(2024, 1, 1))


# --- expiry wins --------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["complete", "dismiss", "snooze", "unsnooze"])
def test_with_expiry_due_only_expire_or_cancel_is_accepted(action):
    with pytest.raises(InvalidTransition, match="expired at"):
        apply("snoozed", action, now=T0, until=T0 + MINUTE, expires_at=T0)
    assert apply("snoozed", action, now=T0, until=T0 + MINUTE, expires_at=T0 + MINUTE).previous == "snoozed"
    assert apply("snoozed", "expire", now=T0, expires_at=T0).status == "expired"
    assert apply("snoozed", "cancel", now=T0, expires_at=T0).status == "cancelled"


def due(status, now=T0, embargo=None, snooze=None, expires=None):
    return due_action(status, now=now, embargo_until=embargo, snoozed_until=snooze, expires_at=expires)


def test_due_action_for_each_timer():
    assert due("embargoed", embargo=T0) == "publish"
    assert due("embargoed", embargo=T0 + MINUTE) is None
    assert due("snoozed", snooze=T0 - MINUTE) == "unsnooze"
    assert due("snoozed", snooze=T0 + MINUTE) is None
    assert due("active", expires=T0) == "expire"
    assert due("active", expires=T0 + MINUTE) is None
    assert due("active") is None


def test_due_action_puts_expiry_first():
    assert due("embargoed", embargo=T0 - MINUTE, expires=T0 - MINUTE) == "expire"
    assert due("snoozed", snooze=T0 - 2 * MINUTE, expires=T0 - MINUTE) == "expire"


def test_due_action_ignores_times_that_do_not_apply_to_the_status():
    assert due("active", embargo=T0 - MINUTE, snooze=T0 - MINUTE) is None
    assert due("embargoed", snooze=T0 - MINUTE, embargo=T0 + MINUTE) is None
    assert due("snoozed", embargo=T0 - MINUTE, snooze=T0 + MINUTE) is None


def test_an_open_state_without_its_time_is_due_at_once():
    assert due("embargoed") == "publish"
    assert due("snoozed") == "unsnooze"


@pytest.mark.parametrize("status", sorted(CLOSED_STATES))
def test_nothing_is_due_for_a_closed_card(status):
    assert due(status, embargo=T0 - MINUTE, snooze=T0 - MINUTE, expires=T0 - MINUTE) is None


def test_a_moved_snooze_leaves_a_stale_timer_that_due_action_ignores():
    first = apply("active", "snooze", now=T0, until=T0 + MINUTE)
    second = apply(first.status, "snooze", now=T0, until=T0 + 10 * MINUTE)
    # the timer for the first until wakes up: nothing is due yet
    assert due(second.status, now=T0 + MINUTE, snooze=second.snoozed_until) is None
    assert due(second.status, now=T0 + 10 * MINUTE, snooze=second.snoozed_until) == "unsnooze"


# --- the stateful test --------------------------------------------------------------------------

offsets = st.integers(min_value=-3600, max_value=4 * 3600).map(lambda s: timedelta(seconds=s))
future = st.integers(min_value=1, max_value=4 * 3600).map(lambda s: timedelta(seconds=s))


class LifecycleMachine(RuleBasedStateMachine):
    """One card, a clock that only moves forward, random actions and timers; an oracle model."""

    @initialize(start=st.integers(0, 10**6), embargo=st.none() | offsets | future,
                expires=st.none() | offsets | future.map(lambda d: d * 12) | future.map(lambda d: d * 6))
    def new_card(self, start, embargo, expires):
        self.now = T0 + timedelta(seconds=start)
        self.embargo_until = None if embargo is None else self.now + embargo
        self.expires_at = None if expires is None else self.now + expires
        change = create(embargo_until=self.embargo_until, now=self.now)
        embargoed = self.embargo_until is not None and self.embargo_until > self.now
        expected = ("embargoed", "card-embargoed") if embargoed else ("active", "card-published")
        assert (change.previous, change.status, change.event) == (None, *expected)
        assert change.snoozed_until is None
        self.status = change.status
        self.snoozed_until: datetime | None = None
        self.history = [change]
        self.closed_as: str | None = None

    def expect_ok(self, action, until, check_expiry):
        if action not in EXPECTED_ALLOWED[self.status]:
            return False
        if action == "snooze" and (until is None or until <= self.now):
            return False
        expiry_due = self.expires_at is not None and self.now >= self.expires_at
        return not (check_expiry and expiry_due and action not in ("expire", "cancel"))

    def record(self, action, change, until):
        target, event = EXPECTED[action]
        assert (change.previous, change.status, change.event) == (self.status, target, event)
        assert change.snoozed_until == (until if action == "snooze" else None)
        self.status, self.snoozed_until = change.status, change.snoozed_until
        self.history.append(change)

    @rule(seconds=st.integers(min_value=0, max_value=2 * 3600))
    def tick(self, seconds):
        self.now += timedelta(seconds=seconds)

    @rule(extra=st.integers(min_value=0, max_value=60))
    def outage(self, extra):
        """The workers were down: every pending time is due at once when they come back."""
        pending = [t for t in (self.embargo_until, self.snoozed_until, self.expires_at) if t is not None]
        self.now = max([self.now, *pending]) + timedelta(seconds=extra)
        self.run_all_due_timers()

    # every action, valid or not, but more often the ones that keep a card open
    @rule(action=st.sampled_from(ACTIONS) | st.sampled_from(("publish", "snooze", "unsnooze")),
          until=st.none() | offsets | future, check_expiry=st.booleans())
    def act(self, action, until, check_expiry):
        until_at = None if until is None else self.now + until
        kwargs = {"expires_at": self.expires_at} if check_expiry else {}
        before = (self.status, self.snoozed_until, len(self.history))
        if self.expect_ok(action, until_at, check_expiry):
            self.record(action, apply(self.status, action, now=self.now, until=until_at, **kwargs), until_at)
        else:
            with pytest.raises(InvalidTransition) as raised:
                apply(self.status, action, now=self.now, until=until_at, **kwargs)
            assert self.status in str(raised.value) and action in str(raised.value)
            assert (self.status, self.snoozed_until, len(self.history)) == before
            assert allowed(self.status) == EXPECTED_ALLOWED[self.status]

    @rule(until=future)
    def customer_snoozes(self, until):
        """Snooze is the one action that keeps a card open: try it often, with a valid until."""
        self.act("snooze", until, check_expiry=True)

    @rule()
    def fire_due_timer(self):
        action = due_action(self.status, now=self.now, embargo_until=self.embargo_until,
                            snoozed_until=self.snoozed_until, expires_at=self.expires_at)
        if self.status in CLOSED_STATES:
            expected = None
        elif self.expires_at is not None and self.now >= self.expires_at:
            expected = "expire"  # expiry wins over everything else once due
        elif self.status == "embargoed" and self.now >= self.embargo_until:
            expected = "publish"
        elif self.status == "snoozed" and self.now >= self.snoozed_until:
            expected = "unsnooze"
        else:
            expected = None
        assert action == expected
        if action is not None:
            assert action in allowed(self.status)
            change = apply(self.status, action, now=self.now, expires_at=self.expires_at)
            self.record(action, change, None)

    @rule()
    def run_all_due_timers(self):
        for _ in range(3):
            self.fire_due_timer()

    @invariant()
    def status_is_known(self):
        assert self.status in ALL_STATES

    @invariant()
    def closed_cards_never_reopen(self):
        if self.closed_as is not None:
            assert self.status == self.closed_as
        elif self.status in CLOSED_STATES:
            self.closed_as = self.status
        closed = [i for i, c in enumerate(self.history) if c.status in CLOSED_STATES]
        assert closed in ([], [len(self.history) - 1])

    @invariant()
    def one_event_per_transition_and_a_consistent_history(self):
        assert self.history[0].previous is None
        for before, after in zip(self.history, self.history[1:], strict=False):
            assert after.previous == before.status
            matching = [a for a, (s, e) in EXPECTED.items() if (s, e) == (after.status, after.event)]
            assert len(matching) == 1 and after.previous in EXPECTED_ALLOWED and \
                matching[0] in EXPECTED_ALLOWED[after.previous]
        assert all(c.event in PLATFORM_CARD_EVENTS for c in self.history)

    @invariant()
    def snoozed_always_has_an_until(self):
        assert (self.status == "snoozed") == (self.snoozed_until is not None)

    @invariant()
    def expire_is_possible_from_every_open_state(self):
        if is_open(self.status):
            assert "expire" in allowed(self.status)
            change = apply(self.status, "expire", now=self.now, expires_at=self.expires_at)
            assert (change.previous, change.status, change.event) == (self.status, "expired", "card-expired")
        else:
            assert allowed(self.status) == frozenset()


LifecycleMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestLifecycle = LifecycleMachine.TestCase
