"""Time-ordered ids: valid UUIDv7 strings, increasing within a process."""

import uuid

from hub.core.ids import ordered_uuid


def test_ordered_ids_are_version_7_uuids_in_canonical_form():
    for _ in range(2000):
        text = ordered_uuid()
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_ordered_ids_increase_even_many_in_one_millisecond():
    ids = [ordered_uuid() for _ in range(10_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
